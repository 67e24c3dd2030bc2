// The warm-connection agent: a detached process of the user that keeps authenticated SSH
// connections (and their long-lived sudo shells) between runs. Started by the first run that
// asks for it (runner/agent/client.ts); exits once it holds nothing for its idle time.
//   node --import tsx runner/agent/daemon.ts --dir DIR --idle MS
// Its log (DIR/agent.log, 0600) says which host was connected, reused, dropped and why; never a
// command, its input, or its output.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import type { Host } from '../inventory.ts';
import { JumpPool, SshConnection } from '../connection/ssh.ts';
import { hostPattern, lookupKnownHosts } from '../connection/knownhosts.ts';
import { redact, Secret } from '../secret.ts';
import { checkDir, DEFAULT_IDLE_MS, socketPath } from './paths.mjs';
import { decodeOptions, encodeError, encodeResult, onMessages, poolKey, send, type LeaseRequest } from './protocol.ts';

interface Held {
  key: string;
  host: Host;
  conn: SshConnection;
  /** Leased to a run now. */
  leased: boolean;
  idleMs: number;
  idleSince: number;
  timer?: NodeJS.Timeout;
  reuses: number;
}

const log = (s: string) => process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${redact(s)}\n`);

export class Agent {
  readonly held = new Set<Held>();
  readonly salt = randomBytes(16);
  readonly started = Date.now();
  handshakes = 0;
  reuses = 0;
  leases = 0;
  #clients = new Set<Socket>();
  #server = createServer((s) => this.#client(s));
  #exitTimer?: NodeJS.Timeout;
  #jumps = new JumpPool();

  readonly dir: string;
  readonly idleMs: number;
  constructor(dir: string, idleMs: number) {
    this.dir = dir;
    this.idleMs = idleMs;
  }

  get socket(): string {
    return socketPath(this.dir);
  }

  async listen(): Promise<boolean> {
    checkDir(this.dir);
    process.umask(0o077);
    const path = this.socket;
    const tryListen = () =>
      new Promise<void>((res, rej) => {
        const onErr = (e: Error) => rej(e);
        this.#server.once('error', onErr);
        this.#server.listen(path, () => {
          this.#server.removeListener('error', onErr);
          res();
        });
      });
    try {
      await tryListen();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      // Another agent answers there (two runs started one at once): it serves; this one leaves.
      if (await answers(path)) return false;
      unlinkSync(path); // a stale socket of a killed agent
      await tryListen();
    }
    chmodSync(path, 0o600);
    log(`listening on ${path} (idle expiry ${Math.round(this.idleMs / 1000)}s)`);
    this.#armExit();
    return true;
  }

  /** Exits once nothing is held and no run is connected, after the idle time. */
  #armExit() {
    clearTimeout(this.#exitTimer);
    if (this.held.size || this.#clients.size) return;
    this.#exitTimer = setTimeout(() => void this.stop('idle: nothing held'), this.idleMs);
  }

  async stop(why: string): Promise<void> {
    log(`stopping: ${why}`);
    for (const h of this.held) {
      clearTimeout(h.timer);
      await h.conn.close().catch(() => undefined);
    }
    this.held.clear();
    await this.#jumps.close();
    try {
      unlinkSync(this.socket);
    } catch {
      /* gone */
    }
    this.#server.close();
    for (const c of this.#clients) c.destroy();
    setTimeout(() => process.exit(0), 50).unref();
  }

  #client(sock: Socket) {
    this.#clients.add(sock);
    clearTimeout(this.#exitTimer);
    let lease: Held | undefined;
    let leasing = false;
    const running = new Set<number>();
    let aborted = false;
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.#clients.delete(sock);
      const h = lease;
      lease = undefined;
      if (h) void this.#release(h, aborted, running.size > 0);
      this.#armExit();
    });
    onMessages(
      sock,
      (m) => {
        if (m.op === 'status') return send(sock, this.status());
        if (m.op === 'stop') {
          send(sock, { op: 'stopped', pid: process.pid });
          return void this.stop('asked to stop (phoenix agent stop)');
        }
        if (m.op === 'lease') {
          if (lease || leasing) return send(sock, { op: 'error', error: { name: 'Error', message: 'one lease per agent connection' } });
          leasing = true;
          void this.lease(m as LeaseRequest).then(
            ({ held, reused }) => {
              leasing = false;
              if (sock.destroyed) return void this.#release(held, false, false);
              lease = held;
              send(sock, { op: 'leased', reused });
            },
            (e) => {
              leasing = false;
              send(sock, { op: 'error', error: encodeError(e) });
            },
          );
          return;
        }
        if (m.op === 'exec') {
          const id = m.id as number;
          if (!lease) return send(sock, { op: 'result', id, error: { name: 'Error', message: 'exec before a lease' } });
          running.add(id);
          lease.conn.exec(String(m.cmd), decodeOptions(m.opts)).then(
            (r) => send(sock, { op: 'result', id, ...encodeResult(r) }),
            (e) => send(sock, { op: 'result', id, error: encodeError(e) }),
          ).finally(() => running.delete(id));
          return;
        }
        if (m.op === 'release') {
          // The run is done with the host: idle again before the run ends (a next run may follow at once).
          const h = lease;
          lease = undefined;
          const done = h ? this.#release(h, aborted, running.size > 0) : Promise.resolve();
          void done.then(() => send(sock, { op: 'released' }));
          return;
        }
        if (m.op === 'abort') {
          aborted = true;
          const c = lease?.conn;
          if (!c) return send(sock, { op: 'aborted', id: m.id, any: false });
          void c.abort().then((any) => send(sock, { op: 'aborted', id: m.id, any }), () => send(sock, { op: 'aborted', id: m.id, any: false }));
          return;
        }
        send(sock, { op: 'error', error: { name: 'Error', message: `unknown request ${JSON.stringify(m.op)}` } });
      },
      () => sock.destroy(),
    );
  }

  /** A held connection for the request: an idle one that still checks out, else a new one. */
  async lease(r: LeaseRequest): Promise<{ held: Held; reused: boolean }> {
    this.leases++;
    const hostObj: Host = {
      name: r.host.name,
      address: r.host.address,
      port: r.host.port,
      user: r.host.user,
      key: r.host.key,
      become: r.host.become,
      becomePassword: r.host.becomePassword === undefined ? undefined : new Secret(r.host.becomePassword, 'becomePassword'),
      connection: 'ssh',
      connectTimeout: r.host.connectTimeout,
      keepaliveInterval: r.host.keepaliveInterval,
      keepaliveCountMax: r.host.keepaliveCountMax,
      groups: [],
      vars: {},
    };
    let keyHash = '';
    if (r.host.key) {
      try {
        keyHash = createHash('sha256').update(readFileSync(r.host.key)).digest('hex');
      } catch {
        keyHash = 'unreadable'; // the connect below fails with the direct path's message
      }
    }
    const key = poolKey(r, keyHash, this.salt);
    const where = `${r.host.name} (${r.host.user}@${hostPattern(r.host.address, r.host.port)})`;
    for (const h of this.held) {
      if (h.key !== key || h.leased) continue;
      h.leased = true;
      clearTimeout(h.timer);
      // The host key is checked again, against known_hosts as it is now: the same rule as a
      // new connection's (a key no longer listed, or now @revoked, is not trusted any more).
      const known = lookupKnownHosts(r.knownHosts, r.host.address, r.host.port);
      const why = h.conn.lost
        ? 'the connection was lost'
        : !h.conn.hostKey || !known.some((k) => k.blob.equals(h.conn.hostKey!))
          ? `its host key is no longer in ${r.knownHosts}`
          : await h.conn.exec(':', { become: r.host.become, readOnly: true, timeout: Math.min(10, r.host.connectTimeout) }).then(
              (x) => (x.code === 0 ? undefined : `a probe exited ${x.code}`),
              (e: Error) => `a probe failed: ${e.message}`,
            );
      if (why) {
        log(`${where}: dropped the held connection: ${why}; connecting again`);
        this.#drop(h);
        continue;
      }
      h.reuses++;
      this.reuses++;
      h.idleMs = r.idleMs;
      log(`${where}: reused`);
      return { held: h, reused: true };
    }
    let conn: SshConnection;
    try {
      // The run's ssh-agent (or none), never this daemon's environment.
      const p = SshConnection.open(hostObj, { knownHosts: r.knownHosts, acceptNewHostKeys: r.acceptNewHostKeys, authSock: r.authSock ?? null }, this.#jumps);
      conn = await p;
    } catch (e) {
      log(`${where}: connect failed: ${(e as Error).message}`);
      throw e;
    }
    this.handshakes++;
    log(`${where}: connected`);
    const h: Held = { key, host: hostObj, conn, leased: true, idleMs: r.idleMs, idleSince: Date.now(), reuses: 0 };
    this.held.add(h);
    clearTimeout(this.#exitTimer);
    return { held: h, reused: false };
  }

  #drop(h: Held) {
    clearTimeout(h.timer);
    this.held.delete(h);
    void h.conn.close().catch(() => undefined);
  }

  async #release(h: Held, aborted: boolean, busy: boolean) {
    if (busy && !h.conn.aborted) await h.conn.abort().catch(() => false);
    if (aborted || busy || h.conn.aborted || h.conn.lost) {
      log(`${h.host.name}: dropped: ${busy ? 'its run went away while a command ran (killed)' : h.conn.lost ? 'the connection was lost' : 'the run aborted it (Ctrl-C)'}`);
      this.#drop(h);
      this.#armExit();
      return;
    }
    h.leased = false;
    h.idleSince = Date.now();
    if (h.idleMs <= 0) {
      this.#drop(h);
      this.#armExit();
      return;
    }
    h.timer = setTimeout(() => {
      log(`${h.host.name}: idle for ${Math.round(h.idleMs / 1000)}s: closed`);
      this.#drop(h);
      if (!this.held.size && !this.#clients.size) void this.stop('idle: the last held connection expired');
    }, h.idleMs);
  }

  status() {
    const now = Date.now();
    return {
      op: 'status',
      pid: process.pid,
      socket: this.socket,
      startedAt: new Date(this.started).toISOString(),
      idleMs: this.idleMs,
      handshakes: this.handshakes,
      reuses: this.reuses,
      leases: this.leases,
      clients: Math.max(0, this.#clients.size - 1), // not counting the one asking
      hosts: [...this.held].map((h) => ({
        host: h.host.name,
        user: h.host.user,
        address: h.host.address,
        port: h.host.port,
        state: h.leased ? 'in use' : 'idle',
        idleForMs: h.leased ? 0 : now - h.idleSince,
        expiresInMs: h.leased ? undefined : Math.max(0, h.idleMs - (now - h.idleSince)),
        reuses: h.reuses,
        lost: h.conn.lost,
      })),
    };
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(path);
    const t = setTimeout(() => (s.destroy(), res(false)), 1000);
    s.once('connect', () => (clearTimeout(t), s.destroy(), res(true)));
    s.once('error', () => (clearTimeout(t), res(false)));
  });
}

async function main(argv: string[]) {
  const arg = (n: string) => {
    const i = argv.indexOf(n);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const dir = arg('--dir');
  if (!dir) throw new Error('usage: daemon.ts --dir DIR [--idle MS]');
  const idle = Number(arg('--idle') ?? DEFAULT_IDLE_MS);
  const agent = new Agent(dir, Number.isFinite(idle) && idle > 0 ? idle : DEFAULT_IDLE_MS);
  process.on('SIGTERM', () => void agent.stop('SIGTERM'));
  process.on('SIGINT', () => undefined); // the terminal's Ctrl-C is the run's, not the agent's
  process.on('SIGHUP', () => undefined);
  // A lost connection's late errors must not end the agent and every other host's connection.
  process.on('uncaughtException', (e) => log(`internal error (kept running): ${e.stack ?? e.message}`));
  if (!(await agent.listen())) {
    log('another agent already serves this socket; exiting');
    process.exit(0);
  }
}

if (process.argv[1] && /daemon\.(ts|js|mjs)$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((e) => {
    log(`cannot start: ${(e as Error).message}`);
    process.exit(1);
  });
}
