// Check mode is enforced by the engine (docs/check-mode.md): every module, and every task of every
// role, runs in check mode against a recording connection that answers like a fresh host, and
// nothing that is not marked read-only may reach it. A module that sends a command without
// `ctx.probe` / `readOnly` outside `ctx.change` is refused by the engine (the task says which
// command), and this test names the module or task.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Engine, type HostRecord, type PlayRunner, type TaskRecord } from '../../runner/engine.ts';
import type { Connection, ExecOptions, ExecResult } from '../../runner/connection/types.ts';
import type { HttpRequest, HttpResponse } from '../../runner/types.ts';
import { play, playbook, resolveInventory, resolvePlan, role, secret, task, type Action, type Inventory, type Playbook } from '../../runner/index.ts';
import * as modules from '../../runner/modules/index.ts';
import { dockerStack } from '../../stacks/docker.ts';

process.env.PHOENIX_PORTAINER_ADMIN_PASSWORD ??= 'env-admin-password-for-the-test';
process.env.PHOENIX_QDRANT_API_KEY ??= 'env-qdrant-key-for-the-test';

interface Sent {
  host: string;
  /** The task running on that host when the command arrived. */
  task: string;
  cmd: string;
  readOnly: boolean;
}

const ok = (stdout = '', code = 0): ExecResult => ({ code, stdout, stderr: '', stdoutBuffer: Buffer.from(stdout) });

/**
 * Plausible answers of a fresh Debian host with nothing of phoenix on it: files absent (their
 * directories present), no packages, units present but stopped, docker not in a swarm, endpoints
 * that answer. So modules get past their probes to the point where they decide on a change.
 */
const EXISTING: Record<string, string> = { '/etc/hosts': '127.0.0.1\tlocalhost\n' };
/** Release archives the checksums files list (the inventory's download URLs add theirs). */
const ARCHIVES = new Set(['x.tar.gz']);

function freshHost(cmd: string): ExecResult {
  const path = /^(?:if \[ -L |p=)'([^']+)'/.exec(cmd)?.[1];
  const have = path === undefined ? undefined : EXISTING[path];
  if (have !== undefined) {
    const stat = `regular file|644|root|root|${have.length}|0|0`;
    const sha = `sha:${createHash('sha256').update(have).digest('hex')}`;
    return ok(cmd.startsWith('p=') ? `st:${stat}\n${sha}\nparent\n` : `${stat}\n${sha}\nparent\n`);
  }
  const cat = /^cat -- '([^']+)'$/.exec(cmd)?.[1];
  if (cat !== undefined && EXISTING[cat] !== undefined) return ok(EXISTING[cat]);
  if (cmd.startsWith('set -e; t=$(mktemp);') && cmd.endsWith('cat "$t"')) return ok([...ARCHIVES].map((a) => `${'b'.repeat(64)}  ${a}\n`).join(''));
  if (cmd.includes('echo absent')) return ok('absent\nparent\n'); // fileState, pathState, certState
  if (cmd.startsWith('dpkg-query')) return ok('');
  if (cmd.startsWith('apt-cache policy')) return ok('');
  if (cmd.startsWith('systemctl show')) return ok('LoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\n');
  if (cmd.startsWith('systemctl is-active')) return ok('inactive\n', 3);
  if (cmd.startsWith("docker info --format '{{json .Swarm}}'")) return ok('{"LocalNodeState":"inactive","NodeID":"","NodeAddr":"","ControlAvailable":false,"Error":"","RemoteManagers":null}\n--phoenix-swarm-cert--\n', 0);
  if (cmd.startsWith('docker info --format')) return ok('active true\n');
  if (/^(id -u|test -f) /.test(cmd)) return ok('', 1);
  if (cmd.startsWith('command -v')) return ok('/usr/bin/x\n');
  if (cmd.startsWith('cat ') && cmd.includes('2>/dev/null; true')) return ok('');
  if (cmd.startsWith('cat -- ')) return ok('', 1);
  if (cmd.includes("-w '%{http_code}'") || cmd.includes("-w '\\n%{http_code}'")) return ok('{}\n404');
  return ok('');
}

/** A connection that records every command it is sent and answers as `answer` says. */
class RecordingConnection implements Connection {
  readonly hostName: string;
  private readonly log: Sent[];
  private readonly current: Map<string, string>;
  private readonly answer: (cmd: string) => ExecResult;
  constructor(
    hostName: string,
    log: Sent[],
    current: Map<string, string>,
    answer: (cmd: string) => ExecResult,
  ) {
    this.hostName = hostName;
    this.log = log;
    this.current = current;
    this.answer = answer;
  }
  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.log.push({ host: this.hostName, task: this.current.get(this.hostName) ?? '?', cmd, readOnly: opts.readOnly === true });
    return this.answer(cmd);
  }
  async abort() {
    return false;
  }
  async close() {}
}

interface CheckRun {
  records: (TaskRecord & { host: string })[];
  sent: Sent[];
  requests: HttpRequest[];
  planned: number;
}

/** Runs a playbook in check mode through the real engine, every host on a recording connection. */
async function checkRun<V extends object>(pb: Playbook<any>, inv: Inventory<V>, answer = freshHost): Promise<CheckRun> {
  const resolved = resolveInventory(inv);
  const sent: Sent[] = [];
  const requests: HttpRequest[] = [];
  const current = new Map<string, string>();
  const engine = new Engine({
    check: true,
    diff: true,
    forks: 1,
    knownHosts: '/dev/null',
    acceptNewHostKeys: false,
    hosts: resolved.hosts,
    open: async (h) => new RecordingConnection(h.name, sent, current, answer),
    send: async (req): Promise<HttpResponse> => {
      requests.push(req);
      return { status: 200, data: {} };
    },
  });
  // Every task runs, whatever the one before it did: a failure in this make-believe world must
  // not hide a later task's commands.
  const plan = resolvePlan(pb, resolved, {}).map((pp) => ({ ...pp, tasks: pp.tasks.map((t) => ({ ...t, task: { ...t.task, ignoreErrors: true } })) }));
  const records: CheckRun['records'] = [];
  let planned = 0;
  const runner: PlayRunner = {
    async runPlay(_pp, hosts, runHost) {
      const out: HostRecord[] = [];
      for (const h of hosts) out.push(await runHost(h, { taskStart: (t) => current.set(h.name, t), taskEnd: () => undefined }));
      return out;
    },
  };
  try {
    for (const pp of plan) {
      planned += pp.tasks.length * pp.hosts.length;
      const rec = await engine.runPlay(pp, runner);
      for (const [host, hr] of Object.entries(rec.hosts)) for (const t of hr.tasks) if (!t.handler) records.push({ ...t, host });
    }
  } finally {
    await engine.close();
  }
  return { records, sent, requests, planned };
}

/** The modules (above the runner) that hold their own mutations back: `checkMode: 'self'` (docs/check-mode.md). */
const SELF_CHECKED = new Set(['docker_stack', 'portainer_stack', 'portainer_bootstrap', 'proxmox_guests']);

/** What the engine let through that is not read-only, and what it had to refuse. */
function violations(r: CheckRun): string[] {
  const out: string[] = [];
  for (const t of r.records) if (t.refused) out.push(`${t.host} / ${t.task} (${t.module}): sent "${t.refused}" without marking it read-only`);
  const exempt = new Set(r.records.filter((t) => t.module && SELF_CHECKED.has(t.module)).map((t) => `${t.host}/${t.task}`));
  for (const s of r.sent) {
    if (s.readOnly) continue;
    // The documented exceptions (docs/check-mode.md) hold their mutations back themselves:
    // what they send must at least not look like one.
    if (exempt.has(`${s.host}/${s.task}`) && !/docker (stack deploy|secret (create|rm)|service (update|rm))|-X (POST|PUT|DELETE)|--data-binary|\b(rm|mv|install) |cat >/.test(s.cmd)) continue;
    out.push(`${s.host} / ${s.task}: the connection received "${s.cmd.split('\n')[0]}" not marked read-only`);
  }
  for (const q of r.requests) {
    const m = (q.method ?? 'GET').toUpperCase();
    if (!['GET', 'HEAD', 'OPTIONS'].includes(m) && !q.readOnly) out.push(`${m} ${q.url} was sent`);
  }
  return out;
}

const testInventory: Inventory<{ root: string }> = {
  knownHosts: '/dev/null',
  hosts: { a: { address: '127.0.0.1', vars: { root: '/srv/x' } }, b: { address: '127.0.0.2', vars: { root: '/srv/y' } } },
};

// Representative arguments for every module factory runner/modules/index.ts exports. A new
// module without an entry here fails the test below (it must be run in check mode too).
const tmp = mkdtempSync(join(tmpdir(), 'phx-check-'));
const localBin = join(tmp, 'tool');
writeFileSync(localBin, '#!/bin/sh\necho tool\n');
const localSha = createHash('sha256').update('#!/bin/sh\necho tool\n').digest('hex');
writeFileSync(join(tmp, 'page.hbs'), '<h1>{{title}}</h1>\n');
const SHA = 'a'.repeat(64);
const qdrantStack = async () => {
  const { qdrantStack: make } = await import('../../stacks/qdrant.ts');
  const { swarmDefaults } = await import('../../roles/swarm/vars.ts');
  const { qdrantDefaults } = await import('../../roles/qdrant/vars.ts');
  const v = { domain: 'example.test', ...swarmDefaults({ swarmManager: { address: '10.0.0.111' }, swarmWorker: { address: '10.0.0.102' } }, 'example.test'), ...qdrantDefaults() };
  v.qdrant.apiKey = secret('module-test-api-key-0123456789');
  return make(v);
};

const MODULE_CASES: Record<string, (() => Action | Promise<Action>)[]> = {
  shell: [() => modules.shell('touch /srv/x/flag'), () => modules.shell('systemctl restart x', { unless: 'test -f /srv/x/flag', changedWhen: () => true }), () => modules.shell('cat /etc/os-release', { readOnly: true })],
  command: [() => modules.command('rm -rf /srv/x/old', { removes: '/srv/x/old' })],
  copy: [() => modules.copy({ dest: '/etc/x.conf', content: 'a = 1\n', mode: '0644', owner: 'root' }), () => modules.copy({ dest: '/etc/x.key', content: secret('s3cret-value'), validate: 'test -s %s' })],
  template: [() => modules.template({ src: join(tmp, 'page.hbs'), dest: '/var/www/index.html', vars: { title: 'hi' } })],
  file: [
    () => modules.file({ path: '/srv/x/dir', state: 'directory', mode: '0750' }),
    () => modules.file({ path: '/srv/x/old', state: 'absent' }),
    () => modules.file({ path: '/srv/x/t', state: 'touch' }),
    () => modules.file({ path: '/srv/x/l', state: 'link', src: '/srv/x/t' }),
  ],
  apt: [() => modules.apt({ name: ['nginx', 'curl'] }), () => modules.apt({ name: 'nginx', state: 'latest' }), () => modules.apt({ name: 'nginx', state: 'absent' })],
  systemd: [() => modules.systemd({ name: 'nginx', state: 'started', enabled: true, daemonReload: true }), () => modules.systemd({ name: 'nginx', state: 'restarted' })],
  getUrl: [() => modules.getUrl({ url: 'https://example.test/x.tar.gz', dest: '/opt/x.tar.gz', sha256: SHA }), () => modules.getUrl({ url: 'https://example.test/x.tar.gz', dest: '/opt/y.tar.gz', checksumUrl: 'https://example.test/SHA256SUMS' })],
  waitFor: [() => modules.waitFor({ port: 443 }), () => modules.waitFor({ url: 'https://example.test/health', from: 'control' })],
  http: [() => modules.http({ url: 'https://example.test/api', method: 'POST', body: { a: 1 } }), () => modules.http({ url: 'https://example.test/api' })],
  installBinary: [
    () => modules.installBinary({ dest: '/usr/local/bin/x', source: { url: 'https://example.test/x.tar.gz', sha256: SHA, binaryInArchive: 'x' } }),
    () => modules.installBinary({ dest: '/usr/local/bin/tool', source: { localPath: localBin, sha256: localSha } }),
  ],
  fetchFile: [() => modules.fetchFile({ src: '/etc/ssl/root.crt', dest: join(tmp, 'fetched.crt') })],
  blockInFile: [() => modules.blockInFile({ path: '/etc/hosts', block: '10.0.0.1 a', create: true })],
  acmeCert: [() => modules.acmeCert({ certName: 'web', names: ['web.example.test'], directory: 'https://ca.example.test/acme/acme/directory', challenge: { webroot: '/var/www' } })],
};
/** Modules above the runner (stacks/): run with the runner's own, not enumerated from its index. */
const PRODUCT_CASES: Record<string, (() => Action | Promise<Action>)[]> = {
  dockerStack: [async () => dockerStack({ stack: await qdrantStack() })],
};

/** Exports of runner/modules/index.ts that are helpers, not module factories. */
const NOT_MODULES = new Set(['renderTemplate', 'TemplateError', 'checksumFor', 'certState', 'needsIssue', 'parseCertProbe', 'liveDir', 'withBlock', 'liveServices', 'splitCommand']);

test('every module factory of runner/modules/index.ts has check-mode cases here', () => {
  const factories = Object.entries(modules)
    .filter(([n, v]) => typeof v === 'function' && !NOT_MODULES.has(n))
    .map(([n]) => n)
    .sort();
  assert.equal(factories, Object.keys(MODULE_CASES).sort(), 'a module was added or removed: give it representative arguments in MODULE_CASES');
});

test('every module, in check mode on a fresh host: only read-only commands reach it, no GET-less request is sent', async () => {
  const tasks = [];
  for (const [name, cases] of Object.entries({ ...MODULE_CASES, ...PRODUCT_CASES })) for (const [i, c] of cases.entries()) tasks.push(task({ name: `${name} #${i}`, do: await c() }));
  const pb = playbook('modules', [play({ hosts: 'a', roles: [role({ name: 'modules', tasks })] })]);
  const r = await checkRun(pb, testInventory);
  assert.equal(violations(r), []);
  assert.is(r.records.length, tasks.length);
  // The fresh host drives them to their decision: what would change is reported, not failed.
  const failed = r.records.filter((t) => t.status === 'failed').map((t) => `${t.task}: ${t.error?.message}`);
  assert.equal(failed, []);
  // Each module (but waitFor, which only reads) got as far as a change it would make.
  const reached = new Set(r.records.filter((t) => t.changed !== false).map((t) => t.task.split(' #')[0]));
  assert.equal(Object.keys({ ...MODULE_CASES, ...PRODUCT_CASES }).filter((m) => m !== 'waitFor' && !reached.has(m)), [], 'modules that never reached a change');
  assert.ok(r.sent.length > 20, "the probes reached the host");
});

test('every role of site and sync, with the production inventory, in check mode: nothing but read-only commands', async () => {
  const { site } = await import('../../playbooks/site.ts');
  const { syncPlaybook } = await import('../../playbooks/sync.ts');
  const { phoenix } = await import('../../inventory.ts');
  for (const m of JSON.stringify(phoenix.vars).matchAll(/\/([^/"]+\.tar\.gz)"/g)) ARCHIVES.add(m[1]!);
  // The Portainer client (roles/portainer, its own HTTP) must reach nothing but loopback here.
  const portainerApi = { url: 'https://127.0.0.1:1', resolve: {} };
  const prod = { ...phoenix, vars: { ...phoenix.vars!, portainerApi } } as Inventory<any>;
  const viaPortainer = { ...phoenix, vars: { ...phoenix.vars!, portainerApi, swarm: { ...phoenix.vars!.swarm!, deployStacksWith: 'portainer' } } } as Inventory<any>;
  for (const [pb, inv] of [
    [site, prod],
    [site, viaPortainer],
    [syncPlaybook('all'), prod],
  ] as [Playbook<any>, Inventory<any>][]) {
    const r = await checkRun(pb, inv);
    assert.equal(violations(r), [], pb.name);
    assert.is(r.records.length, r.planned, `${pb.name}: every planned task ran`);
    const roles = new Set(r.records.map((t) => t.role));
    for (const p of pb.plays) for (const ro of p.roles) assert.ok(roles.has(ro.name), `${pb.name}: role ${ro.name} ran`);
  }
});

test('a module that sends a change without declaring it is refused: unknown, naming the command (secrets masked), nothing sent', async () => {
  const key = secret('hunter2-very-secret', 'test key');
  const sneaky: Action = {
    module: 'sneaky',
    summary: 'forgets check mode',
    async run(ctx) {
      const st = await ctx.probe('test -f /srv/x/flag');
      if (st.code === 0) return { changed: false };
      await ctx.run(`echo ${key.reveal()} > /srv/x/flag`);
      return { changed: true };
    },
  };
  const swallow: Action = {
    module: 'swallow',
    summary: 'catches the refusal',
    async run(ctx) {
      await ctx.run('rm -f /srv/x/flag').catch(() => undefined);
      return { changed: false };
    },
  };
  const post: Action = { module: 'post', summary: 'raw POST', run: async (ctx) => ({ changed: (await ctx.request({ url: 'https://example.test/x', method: 'DELETE' })).status === 200 }) };
  const delegated: Action = {
    module: 'delegated',
    summary: 'changes another host',
    async run(ctx) {
      const onB = await ctx.delegate!('b');
      await onB('touch /srv/y/flag');
      return { changed: true };
    },
  };
  const pb = playbook('sneaky', [play({ hosts: 'a', roles: [role({ name: 'r', tasks: [sneaky, swallow, post, delegated].map((a) => task({ name: a.module, do: a })) })] })]);
  const r = await checkRun(pb, testInventory, (cmd) => (cmd.startsWith('test -f') ? ok('', 1) : ok()));
  assert.equal(
    r.records.map((t) => [t.task, t.status, t.refused]),
    [
      ['sneaky', 'unknown', 'echo ******** > /srv/x/flag'],
      ['swallow', 'unknown', 'rm -f /srv/x/flag'],
      ['post', 'unknown', 'DELETE https://example.test/x'],
      ['delegated', 'unknown', 'touch /srv/y/flag'],
    ],
  );
  assert.match(r.records[0]!.msg!, /check mode: not run on a, not marked read-only: echo \*+ > \/srv\/x\/flag/);
  assert.not.match(JSON.stringify(r.records), /hunter2/);
  assert.equal(r.sent.map((s) => s.cmd), ['test -f /srv/x/flag'], 'only the probe reached a host');
  assert.equal(r.requests, []);
  // ...and the test above would name it.
  assert.is(violations(r).length, 4);
});

test('NotYetError: what an unapplied earlier change may make is unknown in check mode, a failure otherwise', async () => {
  const notFound = (cmd: string) => (cmd.startsWith('systemctl show') ? ok('LoadState=not-found\nActiveState=inactive\nUnitFileState=\n') : freshHost(cmd));
  const svc = task({ name: 'service', do: modules.systemd({ name: 'app', state: 'started' }) });
  const install = task({ name: 'install', do: modules.shell('apt-get install -y app') });
  const book = (tasks: ReturnType<typeof task>[]) => playbook('p', [play({ hosts: 'a', roles: [role({ name: 'r', tasks })] })]);
  const after = await checkRun(book([install, svc]), testInventory, notFound);
  assert.equal(after.records.map((t) => [t.task, t.status]), [['install', 'changed'], ['service', 'unknown']]);
  assert.is(after.records[1]!.msg, 'service app: unit not found (an earlier change was not applied in check mode)');
  const alone = await checkRun(book([svc]), testInventory, notFound);
  assert.equal(alone.records.map((t) => [t.task, t.status, t.error?.message]), [['service', 'failed', 'service app: unit not found']]);
});

test('the modules exempt from the engine rule are exactly the documented ones', async () => {
  const { readFileSync, readdirSync } = await import('node:fs');
  const self = new Set<string>();
  for (const dir of ['runner', 'runner/modules', 'runner/connection', 'stacks', ...readdirSync('roles', { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `roles/${d.name}`)])
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = readFileSync(`${dir}/${f}`, 'utf8');
      for (const m of src.matchAll(/module: '(\w+)',\n[^\n]*\n\s*checkMode: 'self'/g)) self.add(m[1]!);
    }
  assert.equal([...self].sort(), [...SELF_CHECKED].sort());
  assert.not.ok([...self].some((m) => readFileSync('runner/modules/index.ts', 'utf8').includes(`'${m}'`)), "the runner's own modules never exempt themselves");
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test.run();
