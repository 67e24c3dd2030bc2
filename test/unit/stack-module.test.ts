// docker_stack against a scripted manager (no host): what it decides and which commands it sends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { dockerStack } from '../../stacks/docker.ts';
import { secret, Secret, TaskError, type ActionContext } from '../../runner/index.ts';
import { qdrantStack } from '../../stacks/qdrant.ts';
import { swarmDefaults } from '../../roles/swarm/vars.ts';
import { qdrantDefaults } from '../../roles/qdrant/vars.ts';

const KEY = 'module-test-api-key-0123456789';
function stack() {
  const v = { domain: 'example.test', ...swarmDefaults({ swarmManager: { address: '10.0.0.111' }, swarmWorker: { address: '10.0.0.102' } }, 'example.test'), ...qdrantDefaults() };
  v.qdrant.apiKey = secret(KEY);
  return qdrantStack(v);
}

interface Sent {
  cmd: string;
  stdin?: string;
  readOnly?: boolean;
}

/** A manager that knows files, whether the stack runs, and its secrets. */
function manager(opts: {
  files?: Record<string, string>;
  deployed?: boolean;
  secrets?: (string | { name: string; labels: Record<string, string> })[];
  check?: boolean;
  curl?: boolean;
  /** The Engine API: the node's swarm state, a socket nobody answers (curl's stderr), a status for the services list or for a secret's creation. */
  api?: { swarm?: { LocalNodeState: string; ControlAvailable: boolean }; down?: string; services?: number; create?: number };
}) {
  const files = { ...(opts.files ?? {}) };
  let deployed = opts.deployed ?? false;
  // name -> labels
  const secrets = new Map((opts.secrets ?? []).map((x) => (typeof x === 'string' ? [x, { 'phoenix.stack': 'qdrant_service' }] : [x.name, x.labels])));
  const service = { ID: 's1', Spec: { Name: 'qdrant_service_qdrant', Mode: { Replicated: { Replicas: 1 } } } };
  const sent: Sent[] = [];
  const ok = (stdout = '') => ({ code: 0, stdout, stderr: '', stdoutBuffer: Buffer.from(stdout) });
  const run = async (cmd: string, o: { stdin?: string | Buffer | Secret } = {}, readOnly = false) => {
    const stdin = o.stdin instanceof Secret ? o.stdin.reveal() : o.stdin?.toString();
    sent.push({ cmd, stdin, ...(readOnly ? { readOnly } : {}) });
    let m: RegExpExecArray | null;
    if ((m = /^if \[ -L '([^']+)'/.exec(cmd))) {
      const c = files[m[1]!];
      return ok(c === undefined ? 'absent\nparent\n' : `regular file|600|root|root|${c.length}\nsha:${createHash('sha256').update(c).digest('hex')}\nparent\n`);
    }
    if ((m = /^cat -- '([^']+)'$/.exec(cmd))) return ok(files[m[1]!]);
    // Docker's Engine API on the socket, through curl: GETs batched in one curl, each answer followed by its mark and status.
    if ((m = /^command -v curl >\/dev\/null 2>&1 \|\| \{ echo (phx-api-[0-9a-f]+)-no-curl; [^\n]*?; exit; \}; curl -sS --unix-socket \/var\/run\/docker\.sock -w '\\n\1 %\{http_code\}\\n' (.*)$/.exec(cmd))) {
      if (opts.curl === false) {
        assert.ok(cmd.includes(`echo ${m[1]}-no-curl; docker info --format "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"; exit; }`), cmd);
        return ok(`${m[1]}-no-curl\nactive true\n`);
      }
      const urls = [...m[2]!.matchAll(/'(http:\/\/localhost[^']*)'/g)].map(([, u]) => u!);
      if (opts.api?.down) return { ...ok(urls.map(() => `\n${m![1]} 000\n`).join('')), code: 7, stderr: urls.map(() => `${opts.api!.down}\n`).join('') };
      const answers = urls.map((u): [number, string] => {
        const url = new URL(u);
        const f = JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[]; name?: string[] };
        if (url.pathname === '/info') return [200, JSON.stringify({ Swarm: opts.api?.swarm ?? { LocalNodeState: 'active', ControlAvailable: true } })];
        if (url.pathname === '/services' && opts.api?.services) return [opts.api.services, '{"message":"rpc error: code = Unknown"}'];
        if (url.pathname === '/services') return [200, JSON.stringify(deployed && f.label?.[0] === 'com.docker.stack.namespace=qdrant_service' ? [service] : [])];
        if (url.pathname === '/tasks') return [200, JSON.stringify(deployed ? [{ ServiceID: 's1', DesiredState: 'running', Status: { State: 'running' } }] : [])];
        if (url.pathname === '/secrets') return [200, JSON.stringify([...secrets].filter(([n]) => n.includes(f.name![0]!)).map(([Name, Labels], i) => ({ ID: `x${i}`, Spec: { Name, Labels } })))];
        throw new Error(`unexpected ${u}`);
      });
      return ok(answers.map(([c, a]) => `${a}\n\n${m![1]} ${c}\n`).join(''));
    }
    if (cmd.includes("-X POST -H 'Content-Type: application/json' --data-binary @- 'http://localhost/secrets/create'")) {
      const req = JSON.parse(stdin!) as { Name: string; Labels: Record<string, string>; Data: string };
      if (opts.api?.create) return { ...ok(String(opts.api.create)), stderr: '{"message":"rpc error: code = AlreadyExists desc = secret exists"}' };
      secrets.set(req.Name, req.Labels);
      return ok('201');
    }
    if ((m = /-X DELETE 'http:\/\/localhost\/secrets\/([^']+)'$/.exec(cmd))) {
      secrets.delete(decodeURIComponent(m[1]!));
      return ok('204');
    }
    if (cmd.startsWith('docker info --format')) return ok('active true\n');
    if (cmd.startsWith('ids=$(docker service ls -q') && cmd.includes('docker service inspect')) return ok(deployed ? JSON.stringify([service]) : '');
    if (cmd.startsWith('ids=$(docker service ls -q') && cmd.includes('docker inspect --type task'))
      return ok(deployed ? JSON.stringify([{ ServiceID: 's1', DesiredState: 'running', Status: { State: 'running' } }]) : '');
    if (cmd.startsWith("ids=$(docker secret ls -q --filter 'name=qdrant_service_')"))
      return ok(secrets.size ? JSON.stringify([...secrets].map(([Name, Labels], i) => ({ ID: `x${i}`, Spec: { Name, Labels } }))) : '');
    if ((m = /^docker secret create ((?:--label '[^']+' )*)'([^']+)' -$/.exec(cmd))) {
      secrets.set(m[2]!, Object.fromEntries([...m[1]!.matchAll(/--label '([^=]+)=([^']*)'/g)].map((x) => [x[1]!, x[2]!])));
      return ok();
    }
    if ((m = /^docker secret rm '([^']+)'$/.exec(cmd))) {
      secrets.delete(m[1]!);
      return ok();
    }
    if ((m = /^umask 077 && cat > '([^']+)'$/.exec(cmd))) {
      files[m[1]!] = stdin!;
      return ok();
    }
    if (cmd.startsWith('docker stack deploy')) {
      deployed = true;
      return ok();
    }
    if ((m = /^mv -f '([^']+)' '([^']+)'$/.exec(cmd))) {
      files[m[2]!] = files[m[1]!]!;
      delete files[m[1]!];
      return ok();
    }
    if (cmd.startsWith('curl ')) return ok('200');
    return ok();
  };
  const check = opts.check ?? false;
  const change = async (plan: unknown, apply: () => Promise<unknown>) => (check ? plan : ((await apply()) ?? plan));
  // probe: what the engine lets through in check mode (read-only), recorded as such.
  const probe = (cmd: string, o: { stdin?: string | Buffer | Secret } = {}) => run(cmd, o, true);
  const ctx = { host: { name: 'vm1001' }, check, diff: true, pendingChanges: false, run, probe, change } as unknown as ActionContext;
  return { ctx, sent, files, secrets };
}

const PATH = '/etc/phoenix/stacks/qdrant_service.yml';

test('an invalid compose file fails naming the field, before any command reaches the host', async () => {
  const d = stack();
  (d.compose.services.qdrant as unknown as { ports: unknown[] }).ports = [{ target: 6333, mode: 7 }];
  const m = manager({});
  try {
    await dockerStack({ stack: d }).run(m.ctx);
    assert.unreachable('no error');
  } catch (e) {
    assert.instance(e, TaskError);
    assert.match((e as Error).message, /stack qdrant_service: invalid compose file[\s\S]*services\.qdrant\.ports\[0\]\.mode: must be string/);
  }
  assert.equal(m.sent, []);
});

test('check mode on a manager without the stack: would deploy, shows the compose diff, changes nothing', async () => {
  const m = manager({ check: true });
  const r = await dockerStack({ stack: stack() }).run(m.ctx);
  assert.is(r.changed, true);
  assert.match(r.msg!, /secret\(s\) to create: qdrant_service_api_key_[0-9a-f]{10}; not deployed/);
  assert.is(r.diff?.[0]?.path, PATH);
  assert.match(r.diff![0]!.text, /^\+\s+image: qdrant\/qdrant:/m);
  assert.not.ok(m.sent.some((s) => /secret create|-X (POST|PUT|DELETE)|--data-binary|stack deploy|mv -f|cat >|install -d/.test(s.cmd)), m.sent.map((s) => s.cmd).join('\n'));
});

const isCreate = (c: string) => c.startsWith('docker secret create') || c.includes("'http://localhost/secrets/create'");
const isRemove = (c: string) => c.startsWith('docker secret rm') || /-X DELETE 'http:\/\/localhost\/secrets\//.test(c);

for (const curl of [true, false]) {
  const via = curl ? "Engine API (curl on the manager's socket)" : 'docker CLI (no curl on the host)';

  test(`${via}: a deploy: the secret from stdin (never in a command), deploy --resolve-image never --prune, then the record; a second run does nothing`, async () => {
    const m = manager({ curl });
    const r = await dockerStack({ stack: stack() }).run(m.ctx);
    assert.is(r.changed, true);
    const cmds = m.sent.map((s) => s.cmd);
    const b64 = Buffer.from(KEY).toString('base64');
    assert.not.ok(cmds.some((c) => c.includes(KEY) || c.includes(b64)), 'the key in a command');
    const create = m.sent.find((s) => isCreate(s.cmd))!;
    // CLI: the value itself on stdin; API: SecretCreate's JSON body, the value base64-encoded.
    if (curl) assert.is(JSON.parse(create.stdin!).Data, b64);
    else assert.is(create.stdin, KEY);
    // The one labelling scheme (stacks/plan.ts), whichever transport makes the secret.
    assert.equal(m.secrets.get(stack().secrets!.api_key!.name), { 'phoenix.stack': 'qdrant_service', 'phoenix.key': 'api_key' });
    const deploy = cmds.findIndex((c) => c === `docker stack deploy --resolve-image never --prune -c '${PATH}.new' 'qdrant_service'`);
    const record = cmds.findIndex((c) => c === `mv -f '${PATH}.new' '${PATH}'`);
    assert.ok(deploy > 0 && record > deploy, cmds.join('\n'));
    assert.not.ok(m.files[PATH]!.includes(KEY));
    assert.match(r.msg!, /1 service\(s\) running; qdrant \/readyz ok/);
    // Through the API, the state, the services and the secrets were read in one round trip, before the deploy.
    if (curl) {
      const first = cmds.findIndex((c) => c.includes("'http://localhost/info'"));
      assert.ok(first >= 0 && cmds[first]!.includes("'http://localhost/services?filters=") && cmds[first]!.includes("'http://localhost/secrets?filters="), cmds[first]);
      assert.not.ok(cmds.some((c) => c.startsWith('docker info') || c.includes('docker service') || c.includes('docker secret')), cmds.join('\n'));
      // Every Engine API GET went through probe (read-only: it passes check mode); writes did not.
      for (const x of m.sent.filter((y) => y.cmd.includes('--unix-socket'))) assert.is(!!x.readOnly, !/-X (POST|DELETE)/.test(x.cmd), x.cmd);
    }
    // The same stack again: the record matches and the secret exists (live services: see stack-drift.test.ts).
    const again = manager({ files: m.files, secrets: [stack().secrets!.api_key!.name], curl });
    // (no live services in this fake: the record alone says "deployed"; drift is the e2e's part)
    const r2 = await dockerStack({ stack: stack() }).run(again.ctx);
    assert.is(r2.changed, true, 'the fake reports no live services, which is drift');
    assert.match(r2.msg!, /live services differ: qdrant_service_qdrant: not running/);
    // What it read before deciding: the record (its state, its text), then the swarm: one round trip through the API.
    const reads = again.sent.slice(0, again.sent.findIndex((x) => x.cmd.startsWith('install -d'))).map((x) => x.cmd);
    assert.is(reads.length, curl ? 3 : 5, reads.join('\n'));
  });

  test(`${via}: a rotated key: the new secret is made, the stack deployed, then the stack's old secrets go (both label schemes); others' secrets stay`, async () => {
    const old = 'qdrant_service_api_key_0123456789';
    const legacy = { name: 'qdrant_service_api_key_abcdefabcd', labels: { 'com.docker.stack.namespace': 'qdrant_service', 'phoenix.managed': 'true' } };
    const foreign = { name: 'qdrant_service_backup_token', labels: { owner: 'someone else' } };
    const m = manager({ secrets: [old, legacy, foreign], curl });
    const r = await dockerStack({ stack: stack() }).run(m.ctx);
    assert.is(r.changed, true);
    assert.match(r.msg!, /old secrets removed: qdrant_service_api_key_0123456789, qdrant_service_api_key_abcdefabcd/);
    assert.equal([...m.secrets.keys()].sort(), [foreign.name, stack().secrets!.api_key!.name].sort());
    const rm = m.sent.map((s) => s.cmd).filter(isRemove);
    const deploy = m.sent.findIndex((s) => s.cmd.startsWith('docker stack deploy'));
    assert.ok(m.sent.findIndex((s) => isRemove(s.cmd)) > deploy, 'removed after the deploy');
    assert.is(rm.length, 2);
  });
}

test("Engine API: a node that is not a manager, a socket nobody answers, a failed read or create: each says so, naming the host; check mode would deploy", async () => {
  const run = async (o: Parameters<typeof manager>[0]) => {
    const m = manager(o);
    try {
      return { r: await dockerStack({ stack: stack() }).run(m.ctx), m };
    } catch (e) {
      return { e: e as TaskError, m };
    }
  };
  const worker = await run({ api: { swarm: { LocalNodeState: 'active', ControlAvailable: false } } });
  assert.match(worker.e!.message, /^vm1001: stack qdrant_service: not a swarm manager \(active false\)$/);
  const down = "curl: (7) Failed to connect to localhost port 80 after 0 ms: Couldn't connect to server";
  const gone = await run({ api: { down } });
  assert.match(gone.e!.message, /vm1001: stack qdrant_service: not a swarm manager \(no answer on \/var\/run\/docker\.sock: curl: \(7\) Failed to connect[^;]*\)$/);
  // Check mode: the swarm may only be missing because earlier plays were not applied.
  const checked = await run({ api: { down }, check: true });
  assert.is(checked.r!.changed, true);
  assert.match(checked.r!.msg!, /would deploy qdrant_service \(this host is not a swarm manager yet\)/);
  const failedRead = await run({ api: { services: 500 } });
  assert.match(failedRead.e!.message, /vm1001: cannot inspect the services of stack qdrant_service: docker's Engine API answered 500: \{"message":"rpc error/);
  const failedCreate = await run({ api: { create: 409 } });
  assert.match(failedCreate.e!.message, /vm1001: cannot create docker secret qdrant_service_api_key_[0-9a-f]{10} \(HTTP 409\)/);
  const text = JSON.stringify({ msg: failedCreate.e!.message, detail: failedCreate.e!.detail });
  assert.not.ok(text.includes(KEY) || text.includes(Buffer.from(KEY).toString('base64')), 'the key in the error');
  assert.not.ok(failedCreate.m.sent.some((x) => x.cmd.startsWith('docker stack deploy')), 'deployed without its secret');
});

test.run();
