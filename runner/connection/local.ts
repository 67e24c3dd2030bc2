// The control machine itself, through the same long-lived shell protocol as SSH.
import { spawn } from 'node:child_process';
import { ShellSession, type ShellStreams } from './shell.ts';
import type { Connection, ExecOptions, ExecResult } from './types.ts';

export function spawnShell(argv: string[], label: string): ShellSession {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const closed = new Promise<void>((res) => child.once('close', () => res()));
  child.on('error', () => undefined);
  const streams: ShellStreams = {
    stdin: child.stdin!,
    stdout: child.stdout!,
    stderr: child.stderr!,
    kill: () => child.kill('SIGKILL'),
    closed,
  };
  return new ShellSession(streams, label);
}

export class LocalConnection implements Connection {
  #shells = new Map<boolean, ShellSession>();
  constructor(
    readonly hostName: string,
    private readonly become = false,
  ) {}

  #shell(root: boolean): ShellSession {
    let s = this.#shells.get(root);
    if (!s || !s.alive) {
      const asRoot = root && process.getuid?.() !== 0;
      s = spawnShell(asRoot ? ['sudo', '-n', '/bin/sh'] : ['/bin/sh'], this.hostName);
      this.#shells.set(root, s);
    }
    return s;
  }

  exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.#shell(opts.become ?? this.become).exec(cmd, opts);
  }

  async close(): Promise<void> {
    for (const s of this.#shells.values()) s.close();
    this.#shells.clear();
  }
}
