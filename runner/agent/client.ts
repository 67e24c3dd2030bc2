// The run's side of the warm-connection agent (daemon.ts): finds or starts the agent, and leases
// each SSH host's connection from it. A leased connection is a Connection like SshConnection:
// the engine cannot tell them apart, except that the recap says which hosts were reused.
// When the agent cannot be had (it cannot start, its directory is unsafe), the run connects
// directly and says why; when it goes away mid-run, a host with no command running at that
// moment connects directly from its next command on.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Host } from '../inventory.ts';
import { ConnectionError, type Connection, type ExecOptions, type ExecResult } from '../connection/types.ts';
import { agentDir, AgentDirError, checkDir, checkSocket, DEFAULT_IDLE_MS, logPath, socketPath } from './paths.mjs';
import { decodeError, decodeResult, encodeOptions, onMessages, send, type LeaseRequest } from './protocol.ts';

export interface AgentOptions {
  /** Default: agentDir() ($PHOENIX_AGENT_DIR, $XDG_RUNTIME_DIR/phoenix-agent, /tmp/phoenix-agent-$UID). */
  dir?: string;
  /** How long a connection is held after its last run (default 10 min). */
  idleMs?: number;
  /** Start the agent when none answers (default true). */
  spawn?: boolean;
  /** Notices for -v (the agent was started, a host fell back to a direct connection). */
  log?: (s: string) => void;
  /** Notices printed whatever the verbosity (an agent that accepts connections but never answers). */
  warn?: (s: string) => void;
}

function connectSocket(path: string, timeoutMs = 2000): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect(path);
    const t = setTimeout(() => (s.destroy(), rej(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }))), timeoutMs);
    s.once('connect', () => (clearTimeout(t), s.removeAllListeners('error'), res(s)));
    s.once('error', (e) => (clearTimeout(t), rej(e)));
  });
}

/** One request, one answer, on its own socket (status, stop). */
export async function request(path: string, m: unknown, timeoutMs = 5000): Promise<any> {
  checkSocket(path);
  const s = await connectSocket(path);
  return new Promise((res, rej) => {
    const t = setTimeout(() => (s.destroy(), rej(new Error(`the agent at ${path} did not answer`))), timeoutMs);
    onMessages(s, (a) => (clearTimeout(t), s.end(), res(a)));
    s.once('close', () => (clearTimeout(t), rej(new Error(`the agent at ${path} closed the connection`))));
    s.on('error', () => undefined);
    send(s, m);
  });
}

/**
 * The daemon as one prebuilt ESM file (node_modules/.cache/phoenix/agent-daemon.mjs), rebuilt when
 * one of its sources changed: through tsx, Node 20 takes seconds to start it on a loaded machine.
 * Undefined when it cannot be built (the daemon then starts through tsx).
 */
function bundledDaemon(src: string): string | undefined {
  if (process.env.PHOENIX_BUNDLE === '0') return undefined;
  try {
    const root = resolve(dirname(src), '..', '..');
    const cache = join(root, 'node_modules', '.cache', 'phoenix');
    const out = join(cache, 'agent-daemon.mjs');
    const manifest = `${out}.json`;
    try {
      const inputs = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, [number, number]>;
      if (existsSync(out) && Object.entries(inputs).every(([f, [size, mtime]]) => {
        const st = statSync(join(root, f));
        return st.size === size && st.mtimeMs === mtime;
      }))
        return out;
    } catch {
      /* no bundle yet, or a stale one */
    }
    const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
    mkdirSync(cache, { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    const r = esbuild.buildSync({ entryPoints: [src], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: tmp, metafile: true, logLevel: 'silent', absWorkingDir: root });
    const inputs: Record<string, [number, number]> = {};
    for (const f of Object.keys(r.metafile!.inputs)) {
      const st = statSync(join(root, f));
      inputs[f] = [st.size, st.mtimeMs];
    }
    renameSync(tmp, out);
    writeFileSync(`${manifest}.tmp-${process.pid}`, JSON.stringify(inputs));
    renameSync(`${manifest}.tmp-${process.pid}`, manifest);
    return out;
  } catch {
    return undefined;
  }
}

/** Starts the daemon, detached, its output in DIR/agent.log (0600); the run does not wait for it to end. */
function spawnDaemon(dir: string, idleMs: number): void {
  const src = fileURLToPath(new URL('./daemon.ts', import.meta.url));
  const bundled = bundledDaemon(src);
  const entry = bundled ? [bundled] : ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, src];
  const fd = openSync(logPath(dir), 'a', 0o600);
  // Only what it needs from the run's environment: never the run's secrets.
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'SSH_AUTH_SOCK', 'XDG_RUNTIME_DIR']) if (process.env[k] !== undefined) env[k] = process.env[k];
  try {
    const child = spawn(process.execPath, [...entry, '--dir', dir, '--idle', String(idleMs)], { detached: true, stdio: ['ignore', fd, fd], env, cwd: dir });
    child.unref();
  } finally {
    closeSync(fd);
  }
}

export class AgentClient {
  /** Hosts whose connection came warm from the agent. */
  readonly reused = new Set<string>();
  /** Hosts that went direct after the agent went away mid-run. */
  readonly fellBack = new Set<string>();
  readonly socket: string;
  readonly idleMs: number;
  readonly started: boolean;
  private readonly log: (s: string) => void;
  /** Set by the owner (start() passes AgentOptions.warn). */
  warn: (s: string) => void = () => undefined;
  /** A lease timed out: the agent accepts connections but does not answer; the rest go direct at once. */
  #stuck = false;
  /** The connection made while finding the agent, until a lease uses it; it does not keep the process alive. */
  #spare?: Socket;
  constructor(socket: string, idleMs: number, started: boolean, log: (s: string) => void, spare?: Socket) {
    this.socket = socket;
    this.idleMs = idleMs;
    this.started = started;
    this.log = log;
    if (spare) {
      spare.on('error', () => undefined);
      spare.unref();
      this.#spare = spare;
    }
  }

  /**
   * The agent for this run: the one whose socket accepts a connection, else a new one (spawned,
   * waited for up to 15 s). That first connection is kept for the first host's lease, so finding
   * the agent costs no round trip of its own. Throws (an AgentDirError for an unsafe directory or
   * socket) when there is none to have; the caller then connects directly.
   */
  static async start(o: AgentOptions = {}): Promise<AgentClient> {
    const dir = o.dir ?? agentDir();
    const idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
    const log = o.log ?? (() => undefined);
    checkDir(dir);
    const path = socketPath(dir);
    const attach = async (): Promise<Socket | undefined> => {
      try {
        checkSocket(path);
      } catch (e) {
        if (e instanceof AgentDirError) throw e;
        return undefined; // no socket: no agent
      }
      // A socket nobody listens on (a killed agent's) refuses the connection.
      return connectSocket(path, 3000).catch(() => undefined);
    };
    let sock = await attach();
    const made = (started: boolean, s: Socket) => {
      const c = new AgentClient(path, idleMs, started, log, s);
      if (o.warn) c.warn = o.warn;
      return c;
    };
    if (sock) return made(false, sock);
    if (o.spawn === false) throw new Error(`no agent answers on ${path}`);
    spawnDaemon(dir, idleMs);
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      sock = await attach();
      if (sock) {
        log(`agent: started (socket ${path}, idle expiry ${Math.round(idleMs / 1000)}s)`);
        return made(true, sock);
      }
    }
    throw new Error(`the agent did not start within 15s (see ${logPath(dir)})`);
  }

  /** A connection to the agent for the next lease, or a new one. */
  #socket(): Promise<Socket> {
    const s = this.#spare;
    this.#spare = undefined;
    if (s && !s.destroyed) {
      s.removeAllListeners('error');
      s.ref();
      return Promise.resolve(s);
    }
    return connectSocket(this.socket);
  }

  /** The run is over: a connection to the agent that no lease used is closed. */
  close(): void {
    this.#spare?.destroy();
    this.#spare = undefined;
  }

  /** Hosts the agent can hold: SSH without a jump host (those connect directly). */
  handles(host: Host): boolean {
    return host.connection !== 'local' && !host.jump;
  }

  /**
   * The host's connection through the agent. An SSH failure is the host's (the same
   * ConnectionError a direct connection gives); an agent that cannot be reached makes the host
   * connect directly through `direct`.
   */
  async open(host: Host, o: { knownHosts: string; acceptNewHostKeys: boolean }, direct: () => Promise<Connection>): Promise<Connection> {
    if (this.#stuck) {
      this.fellBack.add(host.name);
      return direct();
    }
    let sock: Socket;
    try {
      sock = await this.#socket();
    } catch (e) {
      this.log(`agent: not reachable at ${this.socket} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): ${host.name} connects directly`);
      this.fellBack.add(host.name);
      return direct();
    }
    const req: LeaseRequest = {
      op: 'lease',
      host: {
        name: host.name,
        address: host.address,
        port: host.port,
        user: host.user,
        key: host.key,
        become: host.become,
        ...(host.becomePassword ? { becomePassword: host.becomePassword.reveal() } : {}),
        connectTimeout: host.connectTimeout,
        keepaliveInterval: host.keepaliveInterval,
        keepaliveCountMax: host.keepaliveCountMax,
      },
      knownHosts: o.knownHosts,
      acceptNewHostKeys: o.acceptNewHostKeys,
      idleMs: this.idleMs,
      ...(process.env.SSH_AUTH_SOCK ? { authSock: process.env.SSH_AUTH_SOCK } : {}),
    };
    const conn = new AgentConnection(host.name, sock, () => {
      this.log(`agent: went away: ${host.name} connects directly from its next command`);
      this.fellBack.add(host.name);
      return direct();
    });
    let why = '';
    const reused = await conn.lease(req).catch((e: Error) => {
      sock.destroy();
      if (e instanceof ConnectionError) throw e;
      why = ` (${e.message})`;
      if (/did not answer/.test(e.message) && !this.#stuck) {
        this.#stuck = true;
        this.warn(`agent: ${e.message} (it accepts connections but does not answer: stopped or stuck?); this run's hosts connect directly; end it with \`pkill -f -- '--dir ${dirname(this.socket)}'\``);
      }
      return undefined;
    });
    if (reused === undefined) {
      this.log(`agent: no lease for ${host.name}${why}: connecting directly`);
      this.fellBack.add(host.name);
      return direct();
    }
    if (reused) this.reused.add(host.name);
    return conn;
  }
}

interface Waiter {
  resolve(m: any): void;
  reject(e: Error): void;
}

/** A host's connection leased from the agent: its commands run on the agent's SSH connection. */
export class AgentConnection implements Connection {
  #waiting = new Map<number, Waiter>();
  #next = 1;
  #gone?: Error;
  #closing = false;
  #direct?: Promise<Connection>;
  #leaseWaiter?: Waiter;
  #releaseWaiter?: Waiter;
  reused = false;

  readonly hostName: string;
  private readonly sock: Socket;
  private readonly fallback: () => Promise<Connection>;
  constructor(hostName: string, sock: Socket, fallback: () => Promise<Connection>) {
    this.hostName = hostName;
    this.sock = sock;
    this.fallback = fallback;
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.#closing) return;
      this.#gone = new ConnectionError(hostName, 'connection lost: the phoenix agent holding it went away (was it stopped or killed?)');
      this.#leaseWaiter?.reject(new Error('the agent closed the connection'));
      this.#releaseWaiter?.resolve(undefined);
      for (const w of this.#waiting.values()) w.reject(this.#gone);
      this.#waiting.clear();
    });
    onMessages(sock, (m) => {
      if (m.op === 'leased') return this.#leaseWaiter?.resolve(m);
      if (m.op === 'error') return this.#leaseWaiter?.reject(decodeError(m.error));
      if (m.op === 'released') return this.#releaseWaiter?.resolve(m);
      const w = this.#waiting.get(m.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      w.resolve(m);
    });
  }

  /**
   * Resolves with whether the agent's connection was warm; rejects with the host's
   * ConnectionError, or with another error when the agent does not answer in time (a stopped or
   * stuck agent accepts connections but never answers): the host then connects directly. The
   * time allowed covers the agent's own work: a probe, then connecting and starting sudo anew.
   */
  lease(req: LeaseRequest, timeoutMs = (3 * req.host.connectTimeout + 5) * 1000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    return new Promise<any>((resolve, reject) => {
      this.#leaseWaiter = { resolve, reject };
      timer = setTimeout(() => reject(new Error(`the agent did not answer within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs);
      send(this.sock, req);
    })
      .finally(() => clearTimeout(timer))
      .then((m) => (this.reused = !!m.reused));
  }

  #release(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#releaseWaiter = { resolve, reject };
      send(this.sock, { op: 'release' });
    });
  }

  /** For the pool: a warm-up's connection that died before its first use is opened again. */
  get lost(): boolean {
    return !!this.#gone && !this.#direct;
  }

  #call(m: Record<string, unknown>): Promise<any> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      send(this.sock, { ...m, id });
    });
  }

  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.#gone) {
      // The agent went away between commands: nothing of this host's was cut; go direct.
      this.#direct ??= this.fallback();
      return (await this.#direct).exec(cmd, opts);
    }
    const m = await this.#call({ op: 'exec', cmd, opts: encodeOptions(opts) });
    if (m.error) throw decodeError(m.error);
    return decodeResult(m);
  }

  async abort(): Promise<boolean> {
    if (this.#direct) return (await this.#direct.catch(() => undefined))?.abort() ?? false;
    if (this.#gone) return false;
    const m = await this.#call({ op: 'abort' }).catch(() => ({ any: false }));
    return !!m.any;
  }

  async close(): Promise<void> {
    if (!this.#gone && !this.#closing) {
      // Handed back before this run ends, so a run right after this one finds it idle.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#release(), new Promise((r) => (timer = setTimeout(r, 2000)))]).catch(() => undefined);
      clearTimeout(timer);
    }
    this.#closing = true;
    this.sock.end();
    if (this.#direct) await (await this.#direct.catch(() => undefined))?.close();
  }
}
