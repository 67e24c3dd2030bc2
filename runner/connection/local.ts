// The control machine itself, through the same long-lived shell protocol as SSH.
import { spawn } from 'node:child_process';
import { AbortedError, killGroupScript, ShellSession, type ShellStreams } from './shell.ts';
import type { Connection, ExecOptions, ExecResult } from './types.ts';

export function spawnShell(argv: string[], label: string): ShellSession {
  // detached: a process group of its own, so the terminal's Ctrl-C reaches phoenix (which
  // decides what to stop), not the shell and its commands directly.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const closed = new Promise<void>((res) => child.once('close', () => res()));
  child.on('error', () => undefined);
  const streams: ShellStreams = {
    stdin: child.stdin!,
    stdout: child.stdout!,
    stderr: child.stderr!,
    kill: () => child.kill('SIGKILL'),
    closed,
    // With the same privileges as the shell: through sudo when it runs through sudo.
    killGroup: (pgid) =>
      new Promise<void>((res) => {
        const script = killGroupScript(pgid);
        const k = spawn(argv[0] === 'sudo' ? 'sudo' : '/bin/sh', argv[0] === 'sudo' ? ['-n', '/bin/sh', '-c', script] : ['-c', script], { stdio: 'ignore', detached: true });
        const t = setTimeout(() => k.kill('SIGKILL'), 10_000);
        k.once('close', () => (clearTimeout(t), res()));
        k.once('error', () => (clearTimeout(t), res()));
      }),
  };
  return new ShellSession(streams, label);
}

export class LocalConnection implements Connection {
  #shells = new Map<boolean, ShellSession>();
  readonly hostName: string;
  private readonly become: boolean;
  constructor(
    hostName: string,
    become: boolean = false,
  ) {
    this.hostName = hostName;
    this.become = become;
  }

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
    if (this.#aborted) return Promise.reject(new AbortedError(`${this.hostName}: aborted: no new command is started`));
    return this.#shell(opts.become ?? this.become).exec(cmd, opts);
  }

  #aborted = false;

  async abort(): Promise<boolean> {
    this.#aborted = true;
    const r = await Promise.all([...this.#shells.values()].map((s) => s.abort()));
    return r.some(Boolean);
  }

  async close(): Promise<void> {
    for (const s of this.#shells.values()) s.close();
    this.#shells.clear();
  }
}
