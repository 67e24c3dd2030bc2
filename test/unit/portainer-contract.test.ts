// `phoenix sync` against a fake Portainer on 127.0.0.1 (HTTPS, a throw-away CA) that checks
// every request against test/contract/portainer-shapes.json: the flow (create, nothing, update
// by PUT with the same Id), check mode, errors, TLS and secrets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secret, redact, run, play, playbook, role, task, type ActionContext, type ActionResult } from '../../runner/index.ts';
import { PortainerClient } from '../../roles/portainer/client.ts';
import { notReady, syncStack, withEnv, type SyncStackOptions } from '../../roles/portainer/sync.ts';
import { FakePortainer, SHAPES, testPki } from '../contract/fake-portainer.ts';

const fake = await new FakePortainer().start();
const PASSWORD = secret(fake.password, 'portainer admin');
const SECRET_VALUE = secret('qdrant-api-key-value-0123456789', 'qdrant api key');
const FILE_V1 = 'version: "3.8"\nservices:\n  app:\n    image: phoenix/app:1\n';
const FILE_V2 = 'version: "3.8"\nservices:\n  app:\n    image: phoenix/app:2\n';

const health: string[] = [];
function ctx(o: { check?: boolean; diff?: boolean } = {}): ActionContext {
  const c: ActionContext = {
    host: { name: 'vm1001' } as ActionContext['host'],
    conn: {} as ActionContext['conn'],
    check: o.check ?? false,
    diff: o.diff ?? false,
    pendingChanges: false,
    roleDir: undefined,
    // The health probe runs on the manager; here it only records the URL and answers "healthy".
    run: async (cmd: string) => {
      health.push(cmd);
      return { code: 0, stdout: '', stderr: '', stdoutBuffer: Buffer.alloc(0) };
    },
    probe: (cmd: string) => c.run(cmd),
    change: async (plan, apply) => (c.check ? plan : ((await apply()) ?? plan)),
    request: () => Promise.reject(new Error('no HTTP in this test')),
  };
  return c;
}

let api = { url: fake.url, username: 'admin', password: PASSWORD, ca: fake.pki.ca };
function opts(over: Partial<SyncStackOptions['stack']> = {}, apiOver: Partial<SyncStackOptions['api']> = {}): SyncStackOptions {
  return {
    api: { ...api, ...apiOver },
    stack: { name: 'app_service', content: FILE_V1, env: { LOG_LEVEL: 'INFO' }, secrets: { key: { name: 'app_service_key_abc123', value: SECRET_VALUE } }, health: [{ what: 'app /readyz', url: 'http://10.9.9.9:6333/readyz' }], ...over },
    readinessTimeout: 5,
    pollInterval: 10,
  };
}
const runSync = (o: SyncStackOptions, c = ctx()): Promise<ActionResult> => syncStack(o).run(c);
const mark = () => fake.received.length;
const since = (n: number) => fake.received.slice(n);
const ids = (n: number) => since(n).map((r) => r.id);

test('the contract file covers the create, file, update and auth requests of the notes', () => {
  const got = SHAPES.requests.map((r) => `${r.method} ${r.path}`);
  for (const want of ['POST ^/api/auth$', 'GET ^/api/endpoints$', 'GET ^/api/endpoints/[0-9]+/docker/swarm$', 'GET ^/api/stacks$', 'GET ^/api/stacks/[0-9]+/file$', 'POST ^/api/stacks/create/swarm/string$', 'PUT ^/api/stacks/[0-9]+$'])
    assert.ok(got.includes(want), want);
});

test('absent stack: created with the SwarmID from the swarm inspect, after its docker secret; then ready', async () => {
  const n = mark();
  health.length = 0;
  const r = await runSync(opts());
  assert.equal(fake.violations, []);
  assert.is(r.changed, true);
  assert.match(r.msg!, /created stack app_service \(Id 1\)/);
  assert.match(r.msg!, /secret key created/);
  // The stacks, the secrets and the services are read at once (their order among themselves is not the point); then the secret is created, then the stack.
  const calls = ids(n).slice(0, 8);
  assert.equal(calls.slice(0, 3), ['auth', 'endpoints', 'swarm']);
  assert.equal(calls.slice(3, 6).sort(), ['dockerSecrets', 'dockerServices', 'stacks']);
  assert.equal(calls.slice(6), ['dockerSecretCreate', 'createSwarmStack']);
  const create = since(n).find((x) => x.id === 'createSwarmStack')!;
  assert.equal(create.query, { endpointId: '1' });
  assert.equal(create.body, { Name: 'app_service', SwarmID: fake.swarmId, StackFileContent: FILE_V1, Env: [{ name: 'LOG_LEVEL', value: 'INFO' }], FromAppTemplate: false });
  // The stacks lookup is filtered by this swarm and environment, as the notes show.
  assert.equal(JSON.parse(since(n).find((x) => x.id === 'stacks')!.query.filters!), { SwarmID: fake.swarmId, EndpointID: 1 });
  // The secret's value went base64 in the body of the secret create only.
  assert.is(fake.secrets[0]!.data, SECRET_VALUE.reveal());
  assert.ok(ids(n).includes('dockerTasks'), 'readiness looked at the tasks');
  assert.is(health.length, 1);
  assert.match(health[0]!, /http:\/\/10\.9\.9\.9:6333\/readyz/);
});

test('second sync: nothing sent but reads (and the login); changed false', async () => {
  const n = mark();
  const r = await runSync(opts());
  assert.equal(fake.violations, []);
  assert.is(r.changed, false);
  assert.match(r.msg!, /up to date/);
  const writes = since(n).filter((x) => x.method !== 'GET');
  assert.equal(writes.map((x) => x.id), [], 'one client per run: no second login, no writes');
  assert.ok(ids(n).includes('stackFile'), 'the stack file was compared');
});

test("a stack Portainer knows whose services were removed outside it (docker stack rm): check mode says so; the run deploys it again by PUT, same Id", async () => {
  fake.removed.push('app_service');
  try {
    const n = mark();
    const c = await runSync(opts(), ctx({ check: true }));
    assert.is(c.changed, true);
    assert.match(c.msg!, /app_service \(Id 1\) would be updated: live services \(app_service_app: not running\) differ/);
    assert.equal(since(n).filter((x) => x.method !== 'GET').map((x) => x.id), [], 'check mode wrote nothing');
    const m = mark();
    const r = await runSync(opts());
    assert.equal(fake.violations, []);
    assert.match(r.msg!, /updated stack app_service \(Id 1\): live services \(app_service_app: not running\)/);
    assert.equal(since(m).find((x) => x.id === 'updateStack')?.body, { StackFileContent: FILE_V1, Env: [{ name: 'LOG_LEVEL', value: 'INFO' }], Prune: true, RepullImageAndRedeploy: false });
    assert.equal(fake.removed, [], 'the PUT deployed it again');
  } finally {
    fake.removed.length = 0;
  }
  const again = await runSync(opts());
  assert.is(again.changed, false, 'deployed again: up to date');
});

test('edited stack file: updated by PUT with the same Id, Prune, not recreated', async () => {
  const n = mark();
  const r = await runSync(opts({ content: FILE_V2 }), ctx({ diff: true }));
  assert.equal(fake.violations, []);
  assert.is(r.changed, true);
  assert.match(r.msg!, /updated stack app_service \(Id 1\): stack file/);
  const put = since(n).find((x) => x.id === 'updateStack')!;
  assert.is(put.path, '/api/stacks/1');
  assert.equal(put.query, { endpointId: '1' });
  assert.equal(put.body, { StackFileContent: FILE_V2, Env: [{ name: 'LOG_LEVEL', value: 'INFO' }], Prune: true, RepullImageAndRedeploy: false });
  assert.not.ok(ids(n).includes('createSwarmStack'));
  assert.is(fake.stacks.length, 1);
  assert.is(fake.stacks[0]!.Id, 1);
  assert.is(r.diff?.[0]?.path, 'portainer:app_service/docker-compose.yml');
  assert.match(r.diff![0]!.text, /-    image: phoenix\/app:1\n\+    image: phoenix\/app:2/);
});

test('Env differs (order does not count): update; same Env in another order: nothing', async () => {
  let r = await runSync(opts({ content: FILE_V2, env: { LOG_LEVEL: 'DEBUG' } }), ctx({ diff: true }));
  assert.is(r.changed, true);
  assert.match(r.msg!, /updated stack app_service \(Id 1\): Env/);
  assert.is(r.diff?.[0]?.path, 'portainer:app_service/Env');
  r = await runSync(opts({ content: FILE_V2, env: { LOG_LEVEL: 'DEBUG' } }));
  assert.is(r.changed, false);
  fake.stacks[0]!.Env = [{ name: 'B', value: '2' }, { name: 'A', value: '1' }];
  r = await runSync(opts({ content: FILE_V2, env: { A: '1', B: '2' } }));
  assert.is(r.changed, false);
  assert.equal(fake.violations, []);
});

test("a rotated secret: the new one made through the proxy with the one labelling scheme; after readiness the stack's old one is removed on the manager; steady after", async () => {
  health.length = 0;
  const first = fake.secrets.find((x) => x.Spec.Name === 'app_service_key_abc123')!;
  assert.equal(first.Spec.Labels, { 'phoenix.stack': 'app_service', 'phoenix.key': 'key' }, 'the labels of stacks/plan.ts, as docker_stack sets them');
  const now = fake.stacks[0]!;
  const rotated = opts({ content: now.file, env: Object.fromEntries((now.Env ?? []).map((e) => [e.name, e.value])), secrets: { key: { name: 'app_service_key_def456', value: secret('a-new-key-value-9876543210', 'new key') } } });
  const r = await runSync(rotated);
  assert.equal(fake.violations, []);
  assert.is(r.changed, true);
  assert.match(r.msg!, /secret key created; ready; old secret removed: app_service_key_abc123$/);
  assert.ok(fake.secrets.some((x) => x.Spec.Name === 'app_service_key_def456'));
  assert.equal(health.filter((c) => c.startsWith('docker secret rm')), ["docker secret rm 'app_service_key_abc123'"]);
  // (the manager's docker removed it; the fake's list is the manager's here)
  fake.secrets.splice(fake.secrets.indexOf(first), 1);
  health.length = 0;
  const again = await runSync(rotated);
  assert.is(again.changed, false, again.msg);
  assert.not.ok(health.some((c) => c.startsWith('docker secret rm')));
  // Back to the first value for the tests below.
  fake.secrets.push({ ...first });
  fake.secrets.splice(fake.secrets.findIndex((x) => x.Spec.Name === 'app_service_key_def456'), 1);
});

test('check mode: reports what would change with the compose diff, sends no write, changes nothing', async () => {
  const before = JSON.stringify(fake.stacks);
  const n = mark();
  const r = await runSync(opts({ content: FILE_V1, env: { A: '1', B: '2' } }), ctx({ check: true, diff: true }));
  assert.is(r.changed, true);
  assert.match(r.msg!, /would be updated: stack file differ/);
  assert.match(r.diff![0]!.text, /\+    image: phoenix\/app:1/);
  assert.equal(since(n).filter((x) => x.method !== 'GET'), []);
  assert.is(JSON.stringify(fake.stacks), before);
  const m = mark();
  const r2 = await runSync(opts({ name: 'new_service', secrets: { k: { name: 'new_service_k_1', value: SECRET_VALUE } } }), ctx({ check: true }));
  assert.is(r2.changed, true);
  assert.match(r2.msg!, /new_service would be created in swarm swarmid0fake0portainer0abc/);
  assert.match(r2.msg!, /secret k would be created/);
  assert.equal(since(m).filter((x) => x.method !== 'GET'), []);
  assert.not.ok(fake.stacks.some((s) => s.Name === 'new_service'));
  assert.not.ok(fake.secrets.some((s) => s.Spec.Name === 'new_service_k_1'));
});

test('a stack deployed outside Portainer: an error that says so and names the setting; nothing written, not even its new secret', async () => {
  fake.external.push('outside_service');
  const n = mark();
  const e = await runSync(opts({ name: 'outside_service', secrets: { key: { name: 'outside_service_key_new', value: SECRET_VALUE } } })).catch((x: Error) => x);
  assert.instance(e, Error);
  assert.match((e as Error).message, /stack outside_service runs in swarm swarmid0fake0portainer0abc .* Portainer .* does not manage it/);
  assert.match((e as Error).message, /swarm\.deployStacksWith: 'docker'.*swarm\.migrateDockerStacks: true/);
  assert.equal(since(n).filter((x) => x.method !== 'GET' && x.id !== 'auth').map((x) => x.id), [], 'nothing but reads');
  assert.not.ok(fake.secrets.some((x) => x.Spec.Name === 'outside_service_key_new'));
});

test('no Portainer answering: check mode says unknown (an earlier play may start it); a real run fails naming the request', async () => {
  const closed = { url: 'https://127.0.0.1:9' }; // discard port: nothing listens
  const c = await runSync(opts({}, closed), ctx({ check: true }));
  assert.is(c.changed, 'unknown');
  assert.match(c.msg!, /stack app_service: the Portainer API does not answer \(Portainer API POST https:\/\/127\.0\.0\.1:9\/api\/auth: no response/);
  const e = (await runSync(opts({}, closed)).catch((x: Error) => x)) as Error;
  assert.instance(e, Error);
  assert.match(e.message, /Portainer API POST https:\/\/127\.0\.0\.1:9\/api\/auth: no response/);
});

test("drift compares the file as Portainer deploys it: the stack's Env put into ${VAR} and $VAR, $$ kept", () => {
  assert.equal(withEnv({ a: ['x=${LEVEL}', 'y=$LEVEL', 'z=$$LEVEL', 'u=${UNSET}'], n: 3 }, { LEVEL: 'a$b' }), { a: ['x=a$$b', 'y=a$$b', 'z=$$LEVEL', 'u='], n: 3 });
});

test("Portainer's errors name the request, the HTTP status and Portainer's message", async () => {
  fake.override.createSwarmStack = [409, { message: "A stack with the normalized name 'x_service' already exists" }];
  try {
    const e = (await runSync(opts({ name: 'x_service', secrets: {} })).catch((x: Error) => x)) as Error;
    assert.is(e.message, `Portainer API POST ${fake.url}/api/stacks/create/swarm/string?endpointId=1: HTTP 409: A stack with the normalized name 'x_service' already exists`);
  } finally {
    delete fake.override.createSwarmStack;
  }
  fake.override.swarm = [503, { message: 'This node is not a swarm manager.', details: 'docker' }];
  try {
    const e = (await runSync(opts()).catch((x: Error) => x)) as Error;
    assert.match(e.message, /GET https:\/\/127\.0\.0\.1:\d+\/api\/endpoints\/1\/docker\/swarm: HTTP 503: This node is not a swarm manager\. \(docker\)/);
  } finally {
    delete fake.override.swarm;
  }
});

test("Portainer's admin-init timeout (303 + redirect-reason) is named", async () => {
  fake.override.endpoints = [303, undefined];
  fake.headers = { 'redirect-reason': 'AdminInitTimeout' };
  try {
    const c = new PortainerClient({ url: fake.url, username: 'admin', password: PASSWORD, ca: fake.pki.ca });
    const e = (await c.endpoints().catch((x: Error) => x)) as Error;
    assert.match(e.message, /GET https:\/\/127\.0\.0\.1:\d+\/api\/endpoints: HTTP 303: redirect-reason: AdminInitTimeout \(restart Portainer\)/);
  } finally {
    delete fake.override.endpoints;
    fake.headers = {};
  }
});

test('a token the Portainer now answering does not know (a restart, the hand-over from the one-off): one new login, the request repeated', async () => {
  const c = new PortainerClient(api);
  await c.endpoints();
  fake.tokens.clear(); // as a new Portainer process would: every earlier JWT is invalid
  const n = mark();
  assert.ok(Array.isArray(await c.endpoints()));
  assert.equal(ids(n), ['endpoints', 'auth', 'endpoints']);
  fake.tokens.clear();
  const wrong = new PortainerClient({ ...api, password: secret('not-the-password', 'wrong') });
  const e = (await wrong.endpoints().catch((x: Error) => x)) as Error;
  assert.match(e.message, /HTTP 422/, 'a real refusal is still an error (no loop)');
});

test('wrong password: HTTP 422 with the message, and the password is in no message', async () => {
  const wrong = secret('not-the-admin-password-42', 'pw');
  const c = new PortainerClient({ url: fake.url, username: 'admin', password: wrong, ca: fake.pki.ca });
  const e = (await c.endpoints().catch((x: Error) => x)) as Error;
  assert.match(e.message, /POST https:\/\/127\.0\.0\.1:\d+\/api\/auth: HTTP 422: Invalid credentials/);
  assert.not.match(e.message, /not-the-admin-password/);
  // What the client records of its requests masks the password.
  assert.is((c.sent[0]!.body as { Password: string }).Password, '********');
  const sentAuth = fake.received.filter((r) => r.id === 'auth').at(-1)!;
  assert.is(sentAuth.body.Password, wrong.reveal(), 'the value itself went in the body');
});

test('TLS is verified: another CA is refused, plain http is refused before anything is sent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phoenix-other-ca-'));
  try {
    const other = testPki(dir, 'some other CA');
    const c = new PortainerClient({ url: fake.url, username: 'admin', password: PASSWORD, ca: other.ca });
    const e = (await c.endpoints().catch((x: Error) => x)) as Error;
    assert.match(e.message, /POST https:\/\/127\.0\.0\.1:\d+\/api\/auth: no response: .*(certificate|self.signed|UNABLE_TO_VERIFY)/i);
    // No CA given: the system store, which does not know the test CA either.
    const sys = new PortainerClient({ url: fake.url, username: 'admin', password: PASSWORD });
    assert.match(((await sys.endpoints().catch((x: Error) => x)) as Error).message, /no response/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => new PortainerClient({ url: `http://127.0.0.1:${fake.port}`, username: 'admin', password: PASSWORD }), /expected https:\/\//);
});

test('the name a certificate carries is verified; resolve maps it to an address without DNS', async () => {
  const c = new PortainerClient({ url: `https://portainer.test:${fake.port}`, username: 'admin', password: PASSWORD, ca: fake.pki.ca, resolve: { 'portainer.test': '127.0.0.1' } });
  assert.is((await c.systemStatus()).InstanceID, 'fake');
  const wrongName = new PortainerClient({ url: `https://wrong.test:${fake.port}`, username: 'admin', password: PASSWORD, ca: fake.pki.ca, resolve: { 'wrong.test': '127.0.0.1' } });
  assert.match(((await wrongName.systemStatus().catch((x: Error) => x)) as Error).message, /altnames|Hostname\/IP does not match/i);
});

test('readiness: waits until the tasks run; past the deadline an error names the service and the task error', async () => {
  fake.pollsUntilRunning = 3;
  let r = await runSync(opts({ content: 'version: "3.8"\nservices:\n  app:\n    image: phoenix/app:3\n' }));
  assert.match(r.msg!, /ready$/);
  fake.pollsUntilRunning = 1_000_000;
  fake.taskErr = 'no suitable node (scheduling constraints not satisfied on 2 nodes)';
  try {
    const o = opts({ content: 'version: "3.8"\nservices:\n  app:\n    image: phoenix/app:4\n' });
    o.readinessTimeout = 0.2;
    const e = (await runSync(o).catch((x: Error) => x)) as Error;
    assert.match(e.message, /stack app_service not ready after 0\.2s: app_service_app: 0\/1 running \(no suitable node/);
  } finally {
    fake.pollsUntilRunning = 0;
    fake.taskErr = undefined;
    fake.settle();
  }
  r = await runSync(opts({ content: 'version: "3.8"\nservices:\n  app:\n    image: phoenix/app:4\n' }));
  assert.is(r.changed, false);
  assert.equal(fake.violations, []);
});

test('notReady: replicas, global services on every node they have a task for, updates in flight, a failed update', () => {
  const svc = (ID: string, mode: object, upd?: object) => ({ ID, Spec: { Name: ID, Mode: mode }, ...(upd ? { UpdateStatus: upd } : {}) });
  const t = (ServiceID: string, state: string, desired = 'running') => ({ ServiceID, DesiredState: desired, Status: { State: state } });
  assert.is(notReady([], []), 'no services yet');
  assert.is(notReady([svc('a', { Replicated: { Replicas: 2 } })], [t('a', 'running'), t('a', 'running')]), '');
  assert.is(notReady([svc('a', { Replicated: { Replicas: 2 } })], [t('a', 'running'), t('a', 'shutdown', 'shutdown')]), 'a: 1/2 running');
  assert.is(notReady([svc('g', { Global: {} })], [t('g', 'running'), t('g', 'pending')]), 'g: 1/2 running');
  assert.is(notReady([svc('g', { Global: {} })], [t('g', 'running'), t('g', 'running')]), '');
  assert.is(notReady([svc('g', { Global: {} })], []), 'g: 0/1 running');
  assert.is(notReady([svc('a', { Replicated: { Replicas: 1 } }, { State: 'updating' })], [t('a', 'running')]), 'a: update updating');
  assert.throws(() => notReady([svc('a', { Replicated: { Replicas: 1 } }, { State: 'rollback_completed', Message: 'update rolled back' })], []), /service a: update rollback_completed: update rolled back/);
  // Right after an update: the old task still runs, on the previous spec, until it is replaced.
  const tpl = (Image: string) => ({ ContainerSpec: { Image, Env: ['A=1'] }, ForceUpdate: 0 });
  const s2 = { ID: 'q', Spec: { Name: 'q', Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: tpl('img:2') } };
  const tk = (Image: string, State = 'running') => ({ ServiceID: 'q', DesiredState: 'running', Status: { State }, Spec: tpl(Image) });
  assert.is(notReady([s2], [tk('img:1')]), 'q: 1 task still on the previous spec');
  assert.is(notReady([s2], [tk('img:2', 'starting')]), 'q: 0/1 running');
  assert.is(notReady([s2], [tk('img:2')]), '');
  // The new task runs, the old one was told to stop but still runs (and still gets connections).
  assert.is(notReady([s2], [tk('img:2'), { ...tk('img:1'), DesiredState: 'shutdown' }]), 'q: 1 old task still stopping');
  assert.is(notReady([s2], [tk('img:2'), { ...tk('img:1', 'shutdown'), DesiredState: 'shutdown' }]), '');
});

test('through the runner: --json and the output carry no password, token or secret value', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phoenix-sync-json-'));
  try {
    const lines: string[] = [];
    const pb = playbook('sync test', [
      play({
        hosts: 'manager',
        roles: [role({ name: 'app', tasks: [task({ name: 'app stack', do: () => syncStack(opts({ name: 'json_service', secrets: { k: { name: 'json_service_k_1', value: SECRET_VALUE } }, health: [] })) })] })],
      }),
    ]);
    const res = await run(pb, {
      inventory: { hosts: { manager: { connection: 'local', address: '127.0.0.1' } } },
      json: join(dir, 'run.json'),
      diff: true,
      out: { write: (s) => void lines.push(s) },
    });
    assert.is(res.exitCode, 0, lines.join(''));
    const text = lines.join('') + readFileSync(join(dir, 'run.json'), 'utf8');
    assert.match(text, /created stack json_service/);
    assert.match(text, /\+services:/, 'the diff is there');
    for (const s of [fake.password, SECRET_VALUE.reveal(), Buffer.from(SECRET_VALUE.reveal()).toString('base64'), ...fake.tokens]) assert.not.ok(text.includes(s), `leaked: ${s.slice(0, 6)}…`);
    assert.is(redact([...fake.tokens][0]!), '********', 'the JWT is a known secret');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every request the tests made was one of the contract, with its shapes', () => {
  assert.equal(fake.violations, []);
  const seen = new Set(fake.received.map((r) => r.id));
  for (const id of ['auth', 'endpoints', 'swarm', 'stacks', 'stackFile', 'createSwarmStack', 'updateStack', 'dockerSecrets', 'dockerSecretCreate', 'dockerServices', 'dockerTasks']) assert.ok(seen.has(id), id);
  assert.not.ok(seen.has('?'));
});

test.after(async () => {
  await fake.stop();
});

test.run();
