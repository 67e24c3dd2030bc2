// SSH through ssh2: one connection per host for the whole run, host keys verified against
// known_hosts, a long-lived shell per privilege level (see shell.ts), jump hosts, sudo.
import { readFileSync, statSync } from 'node:fs';
import type { Client as ClientT, ClientChannel, ConnectConfig } from 'ssh2';
import type { Duplex } from 'node:stream';
import type { Host, JumpSpec } from '../inventory.ts';
import { randomBytes } from 'node:crypto';
import { redact } from '../secret.ts';
import { AbortedError, killGroupScript, ShellSession, shQuote, type ShellStreams } from './shell.ts';
import { appendKnownHost, fingerprint, hostPattern, keyType, lookupKnownHosts } from './knownhosts.ts';
import { ConnectionError, type Connection, type ExecOptions, type ExecResult } from './types.ts';

let clientClass: Promise<typeof ClientT> | undefined;
/** ssh2, loaded by the first connection: a run whose hosts all come warm from the agent never needs it (~50 ms of start-up). */
function sshClient(): Promise<typeof ClientT> {
  return (clientClass ??= import('ssh2').then((m) => m.default.Client));
}

export interface SshOptions {
  knownHosts: string;
  /** Accept and record the key of a host that has no known_hosts entry (never a changed key). */
  acceptNewHostKeys: boolean;
  /**
   * The ssh-agent socket for hosts without a key: unset, $SSH_AUTH_SOCK; null, none (the
   * connection agent passes the run's own, never its process environment).
   */
  authSock?: string | null;
}

const ALGOS_FOR_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function readKey(hostName: string, path: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ConnectionError(hostName, `private key ${path} does not exist`);
  }
  // Same rule as OpenSSH: a key others can read is refused, not silently used.
  if ((st.mode & 0o077) !== 0)
    throw new ConnectionError(hostName, `private key ${path} has mode ${(st.mode & 0o777).toString(8)}; it must be 0600 (chmod 600 ${path})`);
  return readFileSync(path);
}

interface Target {
  hostName: string;
  address: string;
  port: number;
  user: string;
  key?: string;
  connectTimeout: number;
  /** Seconds between keepalive probes, and how many may go unanswered. */
  keepaliveInterval: number;
  keepaliveCountMax: number;
}

/** Opens and authenticates one ssh2 client, over `sock` when it goes through a jump host. */
async function connectClient(t: Target, opts: SshOptions, sock?: Duplex, seen?: { key?: Buffer }): Promise<ClientT> {
  const Client = await sshClient();
  const knownAtStart = lookupKnownHosts(opts.knownHosts, t.address, t.port);
  const where = `${t.user}@${hostPattern(t.address, t.port)}`;
  let verifyFailure: string | undefined;
  const cfg: ConnectConfig = {
    host: t.address,
    port: t.port,
    username: t.user,
    readyTimeout: t.connectTimeout * 1000,
    keepaliveInterval: t.keepaliveInterval * 1000,
    keepaliveCountMax: t.keepaliveCountMax,
    sock: sock as ConnectConfig['sock'],
    hostVerifier: (key: Buffer) => {
      // Read when the server's key arrives, not when the attempt began: a key written meanwhile
      // (the proxmox role learning a new guest's key through the hypervisor) counts.
      const known = lookupKnownHosts(opts.knownHosts, t.address, t.port);
      if (known.length === 0) {
        if (opts.acceptNewHostKeys) {
          appendKnownHost(opts.knownHosts, t.address, t.port, key);
          if (seen) seen.key = key;
          return true;
        }
        verifyFailure = `host key verification failed: no key for ${hostPattern(t.address, t.port)} in ${opts.knownHosts} (server offered ${keyType(key)} ${fingerprint(key)}); add it with ssh-keyscan, or pass --accept-new-host-keys to trust it on first use`;
        return false;
      }
      if (known.some((k) => k.blob.equals(key))) {
        if (seen) seen.key = key;
        return true;
      }
      verifyFailure = `host key verification failed: the key of ${hostPattern(t.address, t.port)} (${keyType(key)} ${fingerprint(key)}) does not match ${opts.knownHosts}; it may have been replaced, or someone is intercepting the connection`;
      return false;
    },
  };
  if (knownAtStart.length) {
    // Ask only for the key types we can check, so the server does not pick another one.
    const algos = [...new Set(knownAtStart.flatMap((k) => ALGOS_FOR_TYPE[k.type] ?? [k.type]))];
    cfg.algorithms = { serverHostKey: algos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
  }
  const authSock = opts.authSock === undefined ? process.env.SSH_AUTH_SOCK : opts.authSock;
  if (t.key) cfg.privateKey = readKey(t.hostName, t.key);
  else if (authSock) cfg.agent = authSock;
  else throw new ConnectionError(t.hostName, `no key configured for ${where} and no ssh-agent ($SSH_AUTH_SOCK) available`);

  return new Promise((resolve, reject) => {
    const c = new Client();
    let settled = false;
    c.once('ready', () => {
      settled = true;
      // Commands are small writes answered by small reads: with Nagle's algorithm on, each one
      // waits ~40 ms for the peer's delayed ACK (bench/ANALYSIS.md, D0). ssh2 leaves it on.
      const raw = (c as unknown as { _sock?: { setNoDelay?: (on: boolean) => void } })._sock;
      raw?.setNoDelay?.(true);
      resolve(c);
    });
    // 'on', not 'once': ssh2 can emit a second error (e.g. "Connection lost before handshake")
    // after a timeout, and an unhandled one would crash the whole run.
    c.on('error', (e: Error & { code?: string; level?: string }) => {
      if (settled) return;
      settled = true;
      let msg: string;
      if (verifyFailure) msg = verifyFailure;
      else if (e.code === 'ECONNREFUSED') msg = `connection refused by ${hostPattern(t.address, t.port)}`;
      else if (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') msg = `no route to ${t.address}`;
      else if (e.level === 'client-timeout' || /Timed out/i.test(e.message))
        msg = `timed out after ${t.connectTimeout}s connecting to ${hostPattern(t.address, t.port)}`;
      else if (e.level === 'client-authentication')
        msg = `authentication failed for ${where} (${t.key ? `key ${t.key}` : 'ssh-agent'})`;
      else msg = `ssh to ${where} failed: ${e.message}`;
      reject(new ConnectionError(t.hostName, msg));
      c.end();
    });
    try {
      c.connect(cfg);
    } catch (e) {
      reject(new ConnectionError(t.hostName, `ssh to ${where}: ${(e as Error).message}`));
    }
  });
}

function channelStreams(ch: ClientChannel, extra: Pick<ShellStreams, 'killGroup' | 'closedReason'> = {}): ShellStreams {
  const closed = new Promise<void>((res) => ch.once('close', () => res()));
  return {
    ...extra,
    stdin: ch,
    stdout: ch,
    stderr: ch.stderr,
    kill: () => {
      try {
        ch.signal('KILL');
      } catch {
        /* not supported by every server */
      }
      ch.close();
    },
    closed,
  };
}

/** Shared jump-host clients: one per jump host for the whole run. */
export class JumpPool {
  #clients = new Map<string, Promise<ClientT>>();
  get(forHost: Host, j: JumpSpec & { name: string }, opts: SshOptions): Promise<ClientT> {
    const id = `${j.user}@${j.address}:${j.port}`;
    let p = this.#clients.get(id);
    if (!p) {
      p = connectClient(
        {
          hostName: `${forHost.name} (via jump host ${j.name})`,
          address: j.address,
          port: j.port ?? 22,
          user: j.user ?? 'root',
          key: j.key,
          connectTimeout: forHost.connectTimeout,
          keepaliveInterval: forHost.keepaliveInterval,
          keepaliveCountMax: forHost.keepaliveCountMax,
        },
        opts,
      );
      // A lost jump host closes the forwarded connections; each says so itself.
      p.then((c) => c.on('error', () => undefined), () => undefined);
      this.#clients.set(id, p);
    }
    return p;
  }
  async close(): Promise<void> {
    for (const p of this.#clients.values()) p.then((c) => c.end(), () => undefined);
    this.#clients.clear();
  }
}

export class SshConnection implements Connection {
  readonly hostName: string;
  #client?: ClientT;
  #shells = new Map<boolean, Promise<ShellSession>>();
  /** Set once the connection is gone under us (not by close()). */
  #lost?: ConnectionError;
  #closing = false;
  #aborted = false;
  /** The host key the server proved it holds, as accepted from known_hosts (the agent re-checks it on reuse). */
  hostKey?: Buffer;

  private readonly host: Host;
  private constructor(host: Host) {
    this.host = host;
    this.hostName = host.name;
  }

  /** The connection went away under us (the host closed it, or stopped answering). */
  get lost(): boolean {
    return !!this.#lost;
  }

  static async open(host: Host, opts: SshOptions, jumps: JumpPool): Promise<SshConnection> {
    const c = new SshConnection(host);
    let sock: Duplex | undefined;
    if (host.jump) {
      const jc = await jumps.get(host, host.jump, opts);
      sock = await new Promise<Duplex>((res, rej) =>
        jc.forwardOut('127.0.0.1', 0, host.address, host.port, (err, stream) =>
          err ? rej(new ConnectionError(host.name, `jump host ${host.jump!.name} could not reach ${hostPattern(host.address, host.port)}: ${err.message}`)) : res(stream),
        ),
      );
    }
    const { name: hostName, address, port, user, key, connectTimeout, keepaliveInterval, keepaliveCountMax } = host;
    const seen: { key?: Buffer } = {};
    c.#client = await connectClient({ hostName, address, port, user, key, connectTimeout, keepaliveInterval, keepaliveCountMax }, opts, sock, seen);
    c.hostKey = seen.key;
    c.#watch();
    return c;
  }

  /**
   * Notices a lost connection: keepalive probes unanswered (a frozen host, a dead network) or
   * the connection closed under us. Commands then fail as "unreachable", not as task errors,
   * with how long the host had been silent.
   */
  #watch() {
    const client = this.#client!;
    const where = `${this.host.user}@${hostPattern(this.host.address, this.host.port)}`;
    let lastHeard = Date.now();
    // ssh2 keeps its socket private; it is the only way to know when the host last spoke.
    const sock = (client as unknown as { _sock?: Duplex })._sock;
    sock?.on('data', () => (lastHeard = Date.now()));
    const silent = () => `${Math.round((Date.now() - lastHeard) / 1000)}s`;
    client.on('error', (e: Error & { level?: string }) => {
      if (this.#closing || this.#lost) return;
      const ka = `keepalive every ${this.host.keepaliveInterval}s, ${this.host.keepaliveCountMax} unanswered allowed`;
      this.#lost =
        e.level === 'client-timeout' || /keepalive/i.test(e.message)
          ? new ConnectionError(this.hostName, `connection lost: no answer from ${where} for ${silent()} (${ka}); the host may be frozen or the network down`)
          : new ConnectionError(this.hostName, `connection lost to ${where} after ${silent()} of silence: ${e.message}`);
    });
    client.on('close', () => {
      if (this.#closing) return;
      this.#lost ??= new ConnectionError(this.hostName, `connection lost: ${where} closed the connection (last heard from ${silent()} before)`);
    });
  }

  #openShell(root: boolean): Promise<ShellSession> {
    const needSudo = root && this.host.user !== 'root';
    const pw = this.host.becomePassword;
    // sudo starts a shell that first says it is ready. With a password, sudo is asked to prompt
    // with a marker on stderr, and the password is written to the channel's stdin only when
    // that prompt appears (sudo reads it up to the newline), so it never lands on a command
    // line, and is never sent to a shell when sudo needs no password.
    const prompt = `[phx-sudo-${randomBytes(6).toString('hex')}]`;
    const ready = `PHX_SHELL_READY_${randomBytes(6).toString('hex')}`;
    const inner = shQuote(`echo ${ready}; exec /bin/sh`);
    const cmd = !needSudo ? '/bin/sh' : pw ? `sudo -S -p ${shQuote(prompt)} -H /bin/sh -c ${inner}` : `sudo -n -H /bin/sh -c ${inner}`;
    const who = `sudo as ${this.host.user}`;
    return new Promise((resolve, reject) => {
      this.#client!.exec(cmd, (err, ch) => {
        if (err) return reject(new ConnectionError(this.hostName, `cannot open a shell: ${err.message}`));
        const streams = () => channelStreams(ch, { killGroup: (pgid) => this.#killGroup(root, pgid), closedReason: () => this.#lost });
        if (!needSudo) return resolve(new ShellSession(streams(), this.hostName));
        let out = '';
        let errText = '';
        let prompts = 0;
        const timer = setTimeout(() => fail(`${who}: no answer within ${this.host.connectTimeout}s`), this.host.connectTimeout * 1000);
        const done = () => {
          clearTimeout(timer);
          ch.removeListener('data', onOut);
          ch.stderr.removeListener('data', onErr);
          ch.removeListener('close', onClose);
        };
        const fail = (msg: string) => {
          done();
          ch.close();
          reject(new ConnectionError(this.hostName, redact(msg)));
        };
        const onOut = (d: Buffer) => {
          out += d.toString();
          if (out.includes(ready)) {
            done();
            resolve(new ShellSession(streams(), this.hostName));
          }
        };
        const onErr = (d: Buffer) => {
          errText += d.toString();
          if (pw && errText.split(prompt).length - 1 > prompts) {
            prompts++;
            if (prompts > 1) return fail(`${who} failed: the become password was rejected`);
            ch.write(`${pw.reveal()}\n`);
          }
        };
        const onClose = () => {
          const why = errText.split(prompt).join('').trim().split('\n').pop() ?? '';
          fail(`${who} failed${why ? `: ${why}` : ''}${pw ? '' : ' (sudo -n needs NOPASSWD, or set becomePassword)'}`);
        };
        ch.on('data', onOut);
        ch.stderr.on('data', onErr);
        ch.once('close', onClose);
      });
    });
  }

  /** Kills a process group through a fresh shell with the same privileges (sudo included). */
  async #killGroup(root: boolean, pgid: number): Promise<void> {
    const shell = await this.#openShell(root).catch(() => undefined);
    if (!shell) return;
    try {
      await shell.exec(killGroupScript(pgid), { timeout: 10 });
    } catch {
      /* the connection is gone: nothing more can be done from here */
    } finally {
      shell.close();
    }
  }

  /** abort() was called: no new command starts on this connection. */
  get aborted(): boolean {
    return this.#aborted;
  }

  async abort(): Promise<boolean> {
    // A task cut short must not go on to its next command (a rename after the killed probe).
    this.#aborted = true;
    const shells = await Promise.all([...this.#shells.values()].map((p) => p.catch(() => undefined)));
    const r = await Promise.all(shells.map((s) => s?.abort() ?? false));
    return r.some(Boolean);
  }

  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.#lost) throw this.#lost;
    if (this.#aborted) throw new AbortedError(`${this.hostName}: aborted: no new command is started`);
    const root = opts.become ?? this.host.become;
    let p = this.#shells.get(root);
    if (p) {
      const s = await p.catch(() => undefined);
      if (!s || !s.alive) p = undefined;
    }
    if (!p) {
      p = this.#openShell(root);
      this.#shells.set(root, p);
    }
    const shell = await p;
    return shell.exec(cmd, opts);
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const p of this.#shells.values()) p.then((s) => s.close(), () => undefined);
    this.#shells.clear();
    this.#client?.end();
  }
}
