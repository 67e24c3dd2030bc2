/**
 * Test harness: start REAL OpenSSH sshd servers on 127.0.0.1, one per
 * simulated host, each with its own ed25519 host key, all accepting one
 * ed25519 client key for a non-root test user with passwordless sudo.
 *
 * Needs: root, /usr/sbin/sshd (Debian package openssh-server), sudo, and the
 * shadow tools (useradd/usermod) plus visudo and ssh-keygen. See README.md.
 *
 * Layout of one lab (under LAB_BASE, not /tmp: sshd's StrictModes rejects an
 * AuthorizedKeysFile below a world-writable directory such as /tmp, sticky
 * bit or not):
 *
 *   <dir>/                    0755 root   (the "temp dir", removed by stop())
 *     owner.pid               pid of the node process that made the lab
 *     authorized_keys         0644 root   (root-owned is fine for any user)
 *     client/id_ed25519[.pub] 0600 root   (the client key; ssh2 reads it)
 *     known_hosts             all hosts' '[127.0.0.1]:PORT ssh-ed25519 ...'
 *     host-N/                 0755 <user> per-host scratch dir ("root")
 *     sshd-N/                 0755 root   config, host key, pid file
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export interface SshdHost {
  name: string;
  address: '127.0.0.1';
  port: number;
  user: string;
  /** client private key path */
  key: string;
  /** a per-host scratch dir owned by the test user; tests can inspect it */
  root: string;
  /** known_hosts line '[127.0.0.1]:PORT ssh-ed25519 AAAA...' */
  hostKeyLine: string;
  /** the host key's public blob, base64 (the third field of hostKeyLine) */
  hostKeyBase64: string;
  /** pid of this host's listening sshd */
  pid: number;
  /** path of this host's sshd_config */
  config: string;
  /** what this sshd wrote to stderr so far (-e logging; last 256 KiB) */
  logs(): string;
}

export interface SshdLab {
  hosts: SshdHost[];
  /** path to a known_hosts file containing all hosts' keys */
  knownHosts: string;
  /** the lab's temp dir; removed by stop() */
  dir: string;
  /** client private key path (same as every host's `key`) */
  clientKey: string;
  /** the non-root test user (passwordless sudo). root may log in with the same key too. */
  user: string;
  stop(): Promise<void>;
}

export const SSHD_BIN = '/usr/sbin/sshd';
export const DEFAULT_USER = 'phxtest';
/** Where labs live. Every directory on the path must be root-owned and not group/world-writable. */
export const LAB_BASE = process.env.PHX_SSHD_BASE ?? '/var/lib/phx-sshd';

const READY_TIMEOUT_MS = 5000;
const LOG_LIMIT = 256 * 1024;
const TOOLS: Array<[string, string]> = [
  ['ssh-keygen', 'openssh-client'],
  ['useradd', 'passwd'],
  ['usermod', 'passwd'],
  ['visudo', 'sudo'],
];

function which(cmd: string): string | null {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin']);
  for (const d of dirs) {
    if (d && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

function unavailableReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'the sshd harness must run as root (it creates a user, sudoers entry and starts sshd)';
  }
  if (!existsSync(SSHD_BIN)) return `${SSHD_BIN} is missing (apt-get install -y openssh-server)`;
  if (!which('sudo')) return 'sudo is missing (apt-get install -y sudo)';
  for (const [tool, pkg] of TOOLS) {
    if (!which(tool)) return `${tool} is missing (package ${pkg})`;
  }
  return null;
}

/**
 * null if real sshd servers can be started here, else the reason why not.
 * Under CI (process.env.CI set) an unavailable sshd is an error, not a
 * reason to skip: this throws instead of returning the reason.
 */
export function sshdAvailable(): string | null {
  const why = unavailableReason();
  if (why && process.env.CI) {
    throw new Error(`sshd harness unavailable under CI, refusing to skip: ${why}`);
  }
  return why;
}

// ---------------------------------------------------------------- helpers

function run(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: 60_000 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

interface Passwd {
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

function getPasswd(user: string): Passwd | null {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 7) {
      return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
    }
  }
  return null;
}

function shadowField(user: string): string | null {
  for (const line of readFileSync('/etc/shadow', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === user) return f[1] ?? '';
  }
  return null;
}

/** Create (idempotently, race-tolerantly) the test user with home, bash and passwordless sudo. */
function ensureUser(user: string): Passwd {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new Error(`bad user name ${JSON.stringify(user)}`);
  if (user === 'root') throw new Error('the sshd harness test user must not be root');
  let pw = getPasswd(user);
  if (!pw) {
    // '*' = no password but NOT locked. useradd's default '!' locks the
    // account, and with UsePAM no sshd then refuses even key logins.
    const r = run('useradd', ['--system', '--create-home', '--home-dir', `/home/${user}`, '--shell', '/bin/bash',
      '--user-group', '--password', '*', user], { allowFail: true });
    pw = getPasswd(user);
    // exit 9 = already exists (a concurrent test process won the race)
    if (!pw) throw new Error(`useradd ${user} failed (${r.status}): ${r.stderr.trim()}`);
  }
  if (pw.shell !== '/bin/bash') run('usermod', ['--shell', '/bin/bash', user]);
  const pass = shadowField(user);
  if (pass === null || pass.startsWith('!') || pass === '*LK*') run('usermod', ['--password', '*', user]);
  if (!existsSync(pw.home)) {
    mkdirSync(pw.home, { recursive: true, mode: 0o755 });
    chownSync(pw.home, pw.uid, pw.gid);
  }

  const sudoers = `/etc/sudoers.d/${user.replace(/[^a-z0-9_-]/g, '_')}`;
  const want = `# written by test/harness/sshd.ts\n${user} ALL=(ALL:ALL) NOPASSWD: ALL\n`;
  let have: string | null = null;
  try { have = readFileSync(sudoers, 'utf8'); } catch { /* absent */ }
  if (have !== want) {
    const tmp = `${sudoers}.tmp-${process.pid}`; // files with '.' are ignored by sudo's includedir
    writeFileSync(tmp, want, { mode: 0o440 });
    chmodSync(tmp, 0o440);
    const v = run('visudo', ['-cf', tmp], { allowFail: true });
    if (v.status !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`visudo rejected the sudoers entry: ${(v.stderr || v.stdout).trim()}`);
    }
    renameSync(tmp, sudoers);
  }
  return getPasswd(user)!;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Connect and read the server's identification line; resolves with it. */
function readBanner(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(line!);
    };
    const timer = setTimeout(() => done(new Error(`no banner within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        if (line.startsWith('SSH-2.0-')) done(null, line);
        else done(new Error(`unexpected banner ${JSON.stringify(line)}`));
      }
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error('connection closed before banner')));
  });
}

let sshVersion: [number, number] | null = null;
function opensshVersion(): [number, number] {
  if (!sshVersion) {
    // sshd has no -V; the ssh client comes with openssh-server and shares its version.
    const r = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
    const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`);
    sshVersion = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  }
  return sshVersion;
}

function sshdConfig(o: { port: number; hostKey: string; pidFile: string; authorizedKeys: string }): string {
  const lines = [
    '# written by test/harness/sshd.ts',
    'ListenAddress 127.0.0.1',
    `Port ${o.port}`,
    `HostKey ${o.hostKey}`,
    `PidFile ${o.pidFile}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'StrictModes yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    'AllowAgentForwarding no',
    'X11Forwarding no',
    'MaxSessions 50',
    'MaxStartups 200',
    'MaxAuthTries 10',
    'LoginGraceTime 30',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp internal-sftp',
  ];
  const [maj, min] = opensshVersion();
  // OpenSSH >= 9.8 penalises sources that fail auth / drop early; every test
  // connects from 127.0.0.1, so one rejected-host-key test would lock out the rest.
  if (maj > 9 || (maj === 9 && min >= 8)) lines.push('PerSourcePenalties no');
  return lines.join('\n') + '\n';
}

// ------------------------------------------------------ process bookkeeping

/** Every live lab in this process, for the exit/signal handlers. */
const live = new Set<{ dir: string; pids: () => number[] }>();
let handlersInstalled = false;

/** pid -> ppid for every process, from /proc. */
function processTable(): Map<number, number> {
  const t = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces/parens
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      t.set(Number(e), Number(rest[1]));
    } catch { /* exited meanwhile */ }
  }
  return t;
}

/** The given pids plus all their descendants (sshd's per-connection children setsid(), so process groups don't cover them). */
function withDescendants(roots: number[]): number[] {
  const t = processTable();
  const out = new Set(roots.filter((p) => t.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of t) {
      if (!out.has(pid) && out.has(ppid)) { out.add(pid); grew = true; }
    }
  }
  return [...out];
}

/**
 * The processes serving a host's connections (sshd's per-connection children and whatever
 * they run), not the listener: `kill -STOP` them to make the host "freeze" mid-run.
 */
export function sessionPids(host: Pick<SshdHost, 'pid'>): number[] {
  return withDescendants([host.pid]).filter((p) => p !== host.pid);
}

function killAll(pids: number[], sig: NodeJS.Signals) {
  for (const p of pids) {
    try { process.kill(p, sig); } catch { /* gone */ }
  }
}

/** Running (a zombie counts as dead: in a container nothing may ever reap re-parented ones). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function cleanupSync(lab: { dir: string; pids: () => number[] }) {
  killAll(withDescendants(lab.pids()), 'SIGKILL');
  try { rmSync(lab.dir, { recursive: true, force: true }); } catch { /* best effort */ }
  live.delete(lab);
}

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => { for (const l of [...live]) cleanupSync(l); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const h = () => {
      for (const l of [...live]) cleanupSync(l);
      process.removeListener(sig, h);
      // re-raise so the default action (or other listeners) still happen
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, h);
  }
}

/** Remove labs left behind by processes that died without cleaning up (e.g. SIGKILL). */
function sweepStaleLabs() {
  if (!existsSync(LAB_BASE)) return;
  for (const e of readdirSync(LAB_BASE)) {
    if (!e.startsWith('lab-')) continue;
    const dir = join(LAB_BASE, e);
    let owner = 0;
    try { owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim()); } catch { /* being created, or broken */ }
    if (!owner) continue; // can't tell; leave it
    if (owner === process.pid || alive(owner)) continue;
    // Kill sshds whose command line names this lab's configs (pid files can be stale/reused).
    const sshds: number[] = [];
    for (const pid of processTable().keys()) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmd.includes(`${dir}/`)) sshds.push(pid);
      } catch { /* gone */ }
    }
    killAll(withDescendants(sshds), 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------- startSshd

interface Started {
  child: ChildProcess;
  port: number;
  logs: () => string;
}

async function spawnOne(cfgDir: string, hostKey: string, authorizedKeys: string): Promise<Started> {
  const config = join(cfgDir, 'sshd_config');
  let lastErr = '';
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await freePort();
    writeFileSync(config, sshdConfig({ port, hostKey, pidFile: join(cfgDir, 'sshd.pid'), authorizedKeys }), { mode: 0o644 });
    const t = run(SSHD_BIN, ['-t', '-f', config], { allowFail: true });
    if (t.status !== 0) throw new Error(`sshd -t rejected ${config}: ${(t.stderr || t.stdout).trim()}`);

    const child = spawn(SSHD_BIN, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      log += d;
      if (log.length > LOG_LIMIT) log = log.slice(-LOG_LIMIT);
    });
    let exited: string | null = null;
    child.on('exit', (code, sig) => { exited = `exited ${code ?? sig}`; });
    child.on('error', (e) => { exited = `failed to spawn: ${e.message}`; });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    let probeErr = '';
    while (Date.now() < deadline && exited === null) {
      try {
        await readBanner(port, Math.max(100, deadline - Date.now()));
        ready = true;
        break;
      } catch (e) {
        probeErr = (e as Error).message;
        await sleep(50);
      }
    }
    if (ready && exited === null) return { child, port, logs: () => log };

    if (exited === null) child.kill('SIGKILL');
    else await sleep(20); // let the stderr pipe drain
    lastErr = `sshd on port ${port} ${exited ?? `not ready within ${READY_TIMEOUT_MS} ms (${probeErr})`}; stderr:\n${log.trim()}`;
    // Someone grabbed the port between our probe and sshd's bind: try another.
    if (/Address already in use|Cannot bind any address/.test(log)) continue;
    // Something else answered on our port (not sshd): also retry.
    if (exited === null && /unexpected banner/.test(probeErr)) continue;
    break;
  }
  throw new Error(`could not start ${SSHD_BIN}: ${lastErr}`);
}

export async function startSshd(opts: { count: number; user?: string }): Promise<SshdLab> {
  const why = unavailableReason();
  if (why) throw new Error(`sshd harness unavailable: ${why}`);
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`startSshd: count must be >= 1, got ${opts.count}`);
  const user = opts.user ?? DEFAULT_USER;
  const pw = ensureUser(user);

  // privilege separation dir
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  chmodSync('/run/sshd', 0o755);

  mkdirSync(LAB_BASE, { recursive: true, mode: 0o755 });
  chmodSync(LAB_BASE, 0o755);
  sweepStaleLabs();
  const dir = mkdtempSync(join(LAB_BASE, 'lab-'));
  chmodSync(dir, 0o755); // the user must traverse it to reach authorized_keys and host-N/
  writeFileSync(join(dir, 'owner.pid'), `${process.pid}\n`);

  const children: ChildProcess[] = [];
  const labRef = { dir, pids: () => children.map((c) => c.pid).filter((p): p is number => typeof p === 'number') };
  installHandlers();
  live.add(labRef);

  try {
    const clientDir = join(dir, 'client');
    mkdirSync(clientDir, { mode: 0o700 });
    const clientKey = join(clientDir, 'id_ed25519');
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${user}@phx-sshd-lab`, '-f', clientKey]);
    chmodSync(clientKey, 0o600);
    const authorizedKeys = join(dir, 'authorized_keys');
    // Root-owned 0644 passes StrictModes for every user, so root can log in with the same key.
    writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`, 'utf8'), { mode: 0o644 });
    chmodSync(authorizedKeys, 0o644);

    const hosts: SshdHost[] = [];
    for (let i = 0; i < opts.count; i++) {
      const name = `host-${i}`;
      const root = join(dir, name);
      mkdirSync(root, { mode: 0o755 });
      chownSync(root, pw.uid, pw.gid);

      const cfgDir = join(dir, `sshd-${i}`);
      mkdirSync(cfgDir, { mode: 0o755 });
      const hostKey = join(cfgDir, 'ssh_host_ed25519_key');
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', hostKey]);
      chmodSync(hostKey, 0o600);
      const [type, blob] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
      if (type !== 'ssh-ed25519' || !blob) throw new Error(`unexpected host public key in ${hostKey}.pub`);

      const s = await spawnOne(cfgDir, hostKey, authorizedKeys);
      children.push(s.child);
      hosts.push({
        name,
        address: '127.0.0.1',
        port: s.port,
        user,
        key: clientKey,
        root,
        hostKeyLine: `[127.0.0.1]:${s.port} ${type} ${blob}`,
        hostKeyBase64: blob,
        pid: s.child.pid!,
        config: join(cfgDir, 'sshd_config'),
        logs: s.logs,
      });
    }

    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, hosts.map((h) => h.hostKeyLine).join('\n') + '\n', { mode: 0o644 });

    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      const pids = withDescendants(labRef.pids());
      killAll(pids, 'SIGTERM');
      const until = Date.now() + 2000;
      while (Date.now() < until && pids.some(alive)) await sleep(25);
      killAll(pids.filter(alive), 'SIGKILL');
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => { c.once('exit', () => r()); setTimeout(r, 1000); }))));
      rmSync(dir, { recursive: true, force: true });
      live.delete(labRef);
    };

    return { hosts, knownHosts, dir, clientKey, user, stop };
  } catch (e) {
    cleanupSync(labRef);
    throw e;
  }
}
