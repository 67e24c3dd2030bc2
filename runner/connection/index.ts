// One connection per host for the whole run, opened on first use.
import type { Host } from '../inventory.ts';
import { LocalConnection } from './local.ts';
import { JumpPool, SshConnection, type SshOptions } from './ssh.ts';
import { redact } from '../secret.ts';
import { CheckModeRefusal, type Connection, type ExecOptions } from './types.ts';

export * from './types.ts';
export { shQuote, AbortedError } from './shell.ts';

/** A command as a refusal names it: its first line, at most 160 characters, secrets masked. */
export function commandLabel(cmd: string): string {
  const lines = cmd.trim().split('\n');
  let s = lines[0]!.trim();
  if (s.length > 160) s = `${s.slice(0, 157)}...`;
  else if (lines.length > 1) s += ' ...';
  return redact(s);
}

/**
 * The connection a task gets in check mode: commands marked `readOnly` go through; anything
 * else is refused with a CheckModeRefusal before it reaches the host. `onRefuse` is told (the
 * engine reports the task unknown even when a module swallows the error).
 */
export function checkModeConnection(conn: Connection, onRefuse: (e: CheckModeRefusal) => void): Connection {
  return {
    hostName: conn.hostName,
    exec(cmd: string, opts: ExecOptions = {}) {
      if (opts.readOnly !== true) {
        const e = new CheckModeRefusal(conn.hostName, commandLabel(cmd));
        onRefuse(e);
        return Promise.reject(e);
      }
      return conn.exec(cmd, opts);
    },
    abort: () => conn.abort(),
    close: () => conn.close(),
  };
}

/** Hands out hosts' connections held elsewhere: the warm-connection agent (runner/agent/client.ts). */
export interface ConnectionBroker {
  /** The hosts it can hold (the others connect directly). */
  handles(host: Host): boolean;
  /** The host's connection; `direct` opens it the usual way when the broker cannot. */
  open(host: Host, opts: SshOptions, direct: () => Promise<Connection>): Promise<Connection>;
}

export interface PoolOptions extends SshOptions {
  /** Opens a host's connection instead of SSH/local (tests: a recording connection). */
  open?: (host: Host) => Promise<Connection>;
  /** --agent: SSH connections come from the warm-connection agent. */
  agent?: ConnectionBroker;
}

export class ConnectionPool {
  #conns = new Map<string, Promise<Connection>>();
  /** Connections opened ahead of use (warm()) that no task has asked for yet. */
  #warming = new Set<Promise<Connection>>();
  /** Warm-ups that connected and that no task has used yet. */
  #unused = new Set<Promise<Connection>>();
  #closed = false;
  #jumps = new JumpPool();
  private readonly opts: PoolOptions;
  constructor(opts: PoolOptions) {
    this.opts = opts;
  }

  #open(host: Host): Promise<Connection> {
    if (this.#closed) return Promise.reject(new Error(`${host.name}: the run is over; no new connection`));
    const direct = () =>
      host.connection === 'local' ? Promise.resolve(new LocalConnection(host.name, host.become)) : SshConnection.open(host, this.opts, this.#jumps);
    const agent = this.opts.agent;
    const p = this.opts.open ? this.opts.open(host) : agent?.handles(host) ? agent.open(host, this.opts, direct) : direct();
    this.#conns.set(host.name, p);
    return p;
  }

  get(host: Host): Promise<Connection> {
    const p = this.#conns.get(host.name);
    if (!p) return this.#open(host);
    if (!this.#warming.has(p) && !this.#unused.has(p)) return p;
    this.#warming.delete(p);
    this.#unused.delete(p);
    // A warm-up's connection that died before its first use (the host was restarted meanwhile,
    // e.g. by the proxmox play) is opened again rather than failing the first task.
    const q = p.then((c) => ((c as { lost?: boolean }).lost ? (void c.close().catch(() => undefined), this.#open(host)) : c));
    this.#conns.set(host.name, q);
    return q;
  }

  /**
   * Opens a host's connection ahead of its first use. A failure is not kept: the first real
   * use connects again (an earlier play may be what makes the host reachable), so a warm-up
   * never changes what a run reports. Resolves when the attempt has ended.
   */
  async warm(host: Host): Promise<void> {
    if (this.#closed || this.#conns.has(host.name)) return;
    const p = this.#open(host);
    this.#warming.add(p);
    try {
      await p;
      if (this.#warming.has(p)) this.#unused.add(p);
    } catch {
      if (this.#conns.get(host.name) === p && this.#warming.has(p)) this.#conns.delete(host.name);
    } finally {
      this.#warming.delete(p);
    }
  }

  /** Second Ctrl-C: every open connection kills its running commands' process groups and starts no more. */
  async abortAll(): Promise<void> {
    await Promise.all([...this.#conns.values()].map((p) => p.then((c) => c.abort(), () => false)));
  }

  async closeAll(): Promise<void> {
    this.#closed = true;
    for (const p of this.#conns.values()) {
      // A warm-up still connecting is not waited for (a host that does not answer would hold the
      // exit up to its connect timeout): it is closed when it ends.
      if (this.#warming.has(p)) void p.then((c) => c.close(), () => undefined);
      else await p.then((c) => c.close(), () => undefined);
    }
    this.#conns.clear();
    this.#warming.clear();
    this.#unused.clear();
    await this.#jumps.close();
  }
}
