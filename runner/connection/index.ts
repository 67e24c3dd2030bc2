// One connection per host for the whole run, opened on first use.
import type { Host } from '../inventory.ts';
import { LocalConnection } from './local.ts';
import { JumpPool, SshConnection, type SshOptions } from './ssh.ts';
import type { Connection } from './types.ts';

export * from './types.ts';
export { shQuote, AbortedError } from './shell.ts';

export class ConnectionPool {
  #conns = new Map<string, Promise<Connection>>();
  #jumps = new JumpPool();
  constructor(private readonly opts: SshOptions) {}

  get(host: Host): Promise<Connection> {
    let p = this.#conns.get(host.name);
    if (!p) {
      p = host.connection === 'local' ? Promise.resolve(new LocalConnection(host.name, host.become)) : SshConnection.open(host, this.opts, this.#jumps);
      this.#conns.set(host.name, p);
    }
    return p;
  }

  /** Second Ctrl-C: every open connection kills its running commands' process groups and starts no more. */
  async abortAll(): Promise<void> {
    await Promise.all([...this.#conns.values()].map((p) => p.then((c) => c.abort(), () => false)));
  }

  async closeAll(): Promise<void> {
    for (const p of this.#conns.values()) await p.then((c) => c.close(), () => undefined);
    this.#conns.clear();
    await this.#jumps.close();
  }
}
