// One long-lived POSIX shell per host (and per privilege level), fed commands on its stdin.
// sshd sets up a whole session per exec channel (~50 ms on a lab guest); a command streamed
// into a shell that is already running costs a fork. Each command runs in a subshell through
// `eval` of a single-quoted string, so `exit`, `cd` or a syntax error cannot hurt the shell,
// and it is framed by a random marker on stdout and on stderr that carries its exit status.
//
// Each command also runs in a process group of its own, and its group id is said first on
// stderr: a timeout or an abort then kills the whole group on the host (`kill -TERM -PGID`, as
// root for a become shell), not just the shell, so nothing the command started (apt-get,
// dpkg, ...) is left running. Where the host has bash, the group comes from the long-lived
// shell's own job control (issue 18, item 4): the /bin/sh that ssh started execs bash once,
// which turns on `set -m` and runs a loop that reads each command as a length-prefixed block
// (`read -N`: one read(2) per block; bash reads a script from a pipe one byte per read(2),
// which costs more than the exec it saves and is 20x slower on a file sent on stdin) and
// runs it as a background job: a job is a process group, so a command costs one fork and one
// exec of /bin/sh (it still runs under /bin/sh, as before), not a fork and two execs through
// `setsid`. Without bash (dash refuses `set -m` without a terminal), or with
// PHOENIX_SHELL_JOBS=0, each command goes through util-linux `setsid` as before.
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { isSecret } from '../secret.ts';
import type { ExecOptions, ExecResult } from './types.ts';

export function shQuote(s: string): string {
  if (s.includes('\0')) throw new Error('a shell argument cannot contain a NUL byte');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface ShellStreams {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Ends the underlying process/channel. */
  kill(): void;
  /** Resolves when the shell is gone. */
  closed: Promise<void>;
  /**
   * Kills a process group on the host with the privileges of this shell (TERM, then KILL
   * after a grace period). Resolves whether or not it worked; never hangs for long.
   */
  killGroup?(pgid: number): Promise<void>;
  /** Why the shell went away, when it is more than "it exited" (e.g. the connection was lost). */
  closedReason?(): Error | undefined;
}

/** The script that kills a process group: TERM, up to 2 s for it to go, then KILL. */
export function killGroupScript(pgid: number): string {
  // dash's kill takes no "--": "-TERM -123" is a signal, then a process group.
  const g = `-${Math.trunc(pgid)}`;
  return `kill -TERM ${g} 2>/dev/null || exit 0; i=0; while [ $i -lt 20 ] && kill -0 ${g} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; kill -KILL ${g} 2>/dev/null; exit 0`;
}

/** Seconds a new shell has to say it is ready (commands' own timeouts start when they are sent). */
const START_TIMEOUT_S = 60;

function checkEnv(opts: ExecOptions): void {
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name ${k}`);
    if ((isSecret(v) ? v.reveal() : v).includes('\0')) throw new Error(`environment variable ${k}: a value cannot contain a NUL byte`);
  }
}

/** Commands longer than this come on fd 3, not in an environment string (Linux caps one at 128 KiB). */
const BIG = 64 * 1024;

function stdinBytes(stdin: NonNullable<ExecOptions['stdin']>): Buffer {
  return isSecret(stdin) ? Buffer.from(stdin.reveal()) : Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin);
}

/**
 * One command for a /bin/sh (no job control): a subshell, its process group from util-linux
 * `setsid`, whose shell says its pid (= its group) on stderr. Layout, one statement per line, so
 * heredoc bodies never interleave:
 *   (
 *   NAME=$(cat <<'D' ... D
 *   ); export NAME          <- Secret env: a heredoc body, never an argument
 *   cd DIR || exit 1
 *   base64 -d <<'D' | PHX_CMD='CMD' setsid /bin/sh -c '<say pgid>; c=$PHX_CMD; unset PHX_CMD; eval "$c"'
 *   ...base64 stdin... D                 (or the same with </dev/null, without stdin)
 *   )
 *   printf marker+status on stdout, marker on stderr
 * The command reaches its own shell in a variable of that shell's environment (never on a
 * command line, and unset before it runs, so its children do not inherit it). A command too
 * long for one environment string comes on fd 3 instead, a heredoc read by cat.
 */
function setsidScript(cmd: string, opts: ExecOptions, marker: string): string {
  checkEnv(opts);
  let script = '(\n';
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (isSecret(v)) {
      const d = `PHXENV_${randomBytes(6).toString('hex')}`;
      if (v.reveal().split('\n').includes(d)) throw new Error('secret collides with heredoc delimiter');
      script += `${k}=$(cat <<'${d}'\n${v.reveal()}\n${d}\n)\nexport ${k}\n`;
    } else {
      script += `export ${k}=${shQuote(v)}\n`;
    }
  }
  if (opts.cwd) script += `cd ${shQuote(opts.cwd)} || exit 1\n`;
  const big = Buffer.byteLength(cmd) > BIG;
  if (big && cmd.includes('\0')) throw new Error('a command cannot contain a NUL byte');
  const cd = `PHXCMD_${randomBytes(6).toString('hex')}`;
  if (big && cmd.split('\n').includes(cd)) throw new Error('command collides with heredoc delimiter');
  const read = big ? 'c=$(cat <&3); exec 3<&-' : 'c=$PHX_CMD; unset PHX_CMD';
  const inner = `${big ? '' : `PHX_CMD=${shQuote(cmd)} `}$PHX_SETSID /bin/sh -c ${shQuote(`printf '%s:%d\\n' ${marker}-pg $$ >&2; ${read}; eval "$c"`)}`;
  const fd3 = big ? ` 3<<'${cd}'` : '';
  const fd3Body = big ? `${cmd}\n${cd}\n` : '';
  if (opts.stdin !== undefined) {
    const d = `PHXIN_${randomBytes(6).toString('hex')}`;
    const b64 = stdinBytes(opts.stdin).toString('base64').replace(/.{1,76}/g, '$&\n');
    script += `base64 -d <<'${d}' | ${inner}${fd3}\n${b64}${d}\n${fd3Body}`;
  } else {
    script += `${inner} </dev/null${fd3}\n${fd3Body}`;
  }
  script += ')\n';
  return `${script}printf '\\n%s:%d\\n' ${marker} $?; printf '\\n%s\\n' ${marker} >&2\n`;
}

/**
 * One command for the long-lived bash with job control: one block of known length (10 digits
 * and a newline, then the script), then the base64 of its data (stdin, Secret env values, a
 * command too long for an environment string), each read whole into a variable of the main
 * shell (`phx_r`, i.e. `read -N`) before the job starts: data never goes through bash's parser
 * (which is slow on large heredocs, writes them to temp files past 64 KiB, and drops the byte
 * 0x01), and none of it can ever be read as a command, whatever the command does with its stdin.
 *   phx_r LEN PHX_T0 ...                     <- the data, from after the block
 *   {
 *   export NAME='v' | NAME=$(printf %s "$PHX_T0" | base64 -d); export NAME
 *   cd DIR || exit 1
 *   printf %s "$PHX_T1" | base64 -d | PHX_CMD='CMD' exec /bin/sh -c 'c=$PHX_CMD; unset PHX_CMD; eval "$c"'
 *   } & <say $!, the job's group>; unset PHX_T0 ...; wait $!
 *   <a job that stopped itself (SIGSTOP/TSTP/TTIN/TTOU) is killed, not left stopped>
 *   printf marker+status on stdout, marker on stderr
 * A job is a subshell already (`{`, where `(` would fork once more) and a process group of its
 * own; the command still runs under /bin/sh.
 */
function jobBlock(cmd: string, opts: ExecOptions, marker: string): string {
  checkEnv(opts);
  const data: string[] = [];
  const take = (b: Buffer) => `"$PHX_T${data.push(b.toString('base64')) - 1}"`;
  let body = '{\n';
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    // As before (and as with a heredoc in $(...)), trailing newlines of a Secret value are dropped.
    body += isSecret(v) ? `${k}=$(printf %s ${take(Buffer.from(v.reveal()))} | base64 -d)\nexport ${k}\n` : `export ${k}=${shQuote(v)}\n`;
  }
  if (opts.cwd) body += `cd ${shQuote(opts.cwd)} || exit 1\n`;
  const big = Buffer.byteLength(cmd) > BIG;
  if (big && cmd.includes('\0')) throw new Error('a command cannot contain a NUL byte');
  const read = big ? 'c=$(cat <&3); exec 3<&-' : 'c=$PHX_CMD; unset PHX_CMD';
  const fd3 = big ? ` 3< <(printf %s ${take(Buffer.from(cmd))} | base64 -d)` : '';
  const inner = `${big ? '' : `PHX_CMD=${shQuote(cmd)} `}exec /bin/sh -c ${shQuote(`${read}; eval "$c"`)}${fd3}`;
  body += opts.stdin !== undefined ? `printf %s ${take(stdinBytes(opts.stdin))} | base64 -d | ${inner}\n` : `${inner} </dev/null\n`;
  const vars = data.map((_, i) => `PHX_T${i}`);
  const reads = data.map((d, i) => (d.length ? `phx_r ${d.length} PHX_T${i}\n` : `PHX_T${i}=\n`)).join('');
  // `wait`'s stderr is bash's own: it says "Terminated" there for a job killed by a signal.
  let script = `${reads}${body}} & printf '%s-pg:%d\\n' ${marker} $! >&2; ${vars.length ? `unset ${vars.join(' ')}; ` : ''}wait $! 2>/dev/null\n`;
  script += `PHX_X=$?; if [ $PHX_X -gt 128 ] && [ -n "$(jobs -ps)" ]; then kill -KILL -$! 2>/dev/null; wait $! 2>/dev/null; fi\n`;
  script += `printf '\\n%s:%d\\n' ${marker} $PHX_X; printf '\\n%s\\n' ${marker} >&2\n`;
  return `${String(Buffer.byteLength(script)).padStart(10, '0')}\n${script}${data.join('')}`;
}

/** A command abandoned by a second Ctrl-C: its process group on the host was killed. */
export class AbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbortedError';
  }
}

interface Pending {
  marker: string;
  out: Buffer[];
  err: Buffer[];
  outDone?: number;
  errDone: boolean;
  /** The command's process group on the host, once it has said it. */
  pgid?: number;
  /** A timeout or abort is killing it. */
  stopping?: boolean;
  resolve(r: ExecResult): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

export class ShellSession {
  #queue: Promise<unknown> = Promise.resolve();
  #pending?: Pending;
  #outBuf = Buffer.alloc(0);
  #errBuf = Buffer.alloc(0);
  #dead?: Error;
  #jobs?: boolean;

  private readonly streams: ShellStreams;
  private readonly label: string;
  constructor(
    streams: ShellStreams,
    label: string,
  ) {
    this.streams = streams;
    this.label = label;
    streams.stdout.on('data', (d: Buffer) => this.#onOut(d));
    streams.stderr.on('data', (d: Buffer) => this.#onErr(d));
    streams.closed.then(() => this.#die(streams.closedReason?.() ?? new Error(`${label}: the remote shell exited`)));
    streams.stdin.on('error', (e: Error) => this.#die(streams.closedReason?.() ?? e));
    this.#queue = this.#init().catch(() => undefined); // a shell that died says so to its first command
  }

  /**
   * Sets the shell up and finds out whether commands run as jobs of bash (see the top of this
   * file). /bin/sh says so, then execs bash; nothing else is sent before it has said it, since
   * a /bin/sh that execs would lose whatever it had read ahead. bash then reads its loop one
   * byte at a time (its only unbuffered read), and every command after it through `read -N`.
   */
  async #init(): Promise<void> {
    const marker = `__PHX_${randomBytes(9).toString('hex')}`;
    const jobs = process.env.PHOENIX_SHELL_JOBS !== '0';
    // PHX_SETSID: util-linux setsid's path where there is one (Debian always has it), else empty.
    const script =
      'export LC_ALL=C; umask 022; unset HISTFILE; PHX_SETSID=$(command -v setsid 2>/dev/null); PHX_J=0; ' +
      (jobs ? 'PHX_BASH=$(command -v bash 2>/dev/null); [ -n "$PHX_BASH" ] && PHX_J=1; ' : '') +
      `printf '\\n%s:%d\\n' ${marker} $PHX_J; printf '\\n%s\\n' ${marker} >&2; ` +
      '[ $PHX_J = 1 ] && unset BASH_ENV ENV && exec "$PHX_BASH" --noprofile --norc\n';
    const r = await new Promise<ExecResult>((resolve, reject) => {
      const p: Pending = { marker, out: [], err: [], errDone: false, resolve, reject };
      this.#pending = p;
      // Each command's own timeout starts when it is sent; this one covers the wait before.
      p.timer = setTimeout(() => {
        this.#die(new Error(`${this.label}: the remote shell did not start within ${START_TIMEOUT_S}s`));
        this.streams.kill();
      }, START_TIMEOUT_S * 1000);
      this.streams.stdin.write(script);
    });
    this.#jobs = r.code === 1;
    // A block: 10 digits of length and a newline, then the script. `set -m` turns job control
    // on (bash leaves it off when stdin is not a terminal). LC_ALL=C makes -N count bytes.
    // bash before 4.1 (macOS's 3.2) has no `read -N`: `-d '' -n` reads the same, a byte at a time.
    if (this.#jobs)
      this.streams.stdin.write(
        `if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 401)); then phx_r() { IFS= read -r -N "$1" "$2"; }; else phx_r() { IFS= read -r -d '' -n "$1" "$2"; }; fi; ` +
          `set -m; while phx_r 11 PHX_N && phx_r "$((10#\${PHX_N%?}))" PHX_S; do eval "$PHX_S"; done; exit 0\n`,
      );
  }

  /** Whether commands run as jobs of bash (else through setsid); known once the shell is set up. */
  get jobControl(): boolean | undefined {
    return this.#jobs;
  }

  get alive(): boolean {
    return !this.#dead;
  }

  #die(e: Error) {
    if (this.#dead) return;
    this.#dead = e;
    const p = this.#pending;
    this.#pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }

  #onOut(d: Buffer) {
    const p = this.#pending;
    if (!p) return; // nothing is sent between commands
    this.#outBuf = Buffer.concat([this.#outBuf, d]);
    const tag = Buffer.from(`\n${p.marker}:`);
    const i = this.#outBuf.indexOf(tag);
    if (i >= 0) {
      const nl = this.#outBuf.indexOf(10, i + tag.length);
      if (nl < 0) return; // status not complete yet
      p.out.push(this.#outBuf.subarray(0, i));
      p.outDone = Number(this.#outBuf.subarray(i + tag.length, nl).toString());
      this.#outBuf = this.#outBuf.subarray(nl + 1);
      this.#settle();
    }
  }

  #onErr(d: Buffer) {
    const p = this.#pending;
    if (!p) return;
    this.#errBuf = Buffer.concat([this.#errBuf, d]);
    if (p.pgid === undefined) {
      const tag = Buffer.from(`${p.marker}-pg:`);
      const i = this.#errBuf.indexOf(tag);
      if (i >= 0) {
        const nl = this.#errBuf.indexOf(10, i + tag.length);
        if (nl < 0) return;
        p.pgid = Number(this.#errBuf.subarray(i + tag.length, nl).toString());
        this.#errBuf = Buffer.concat([this.#errBuf.subarray(0, i), this.#errBuf.subarray(nl + 1)]);
      }
    }
    const tag = Buffer.from(`\n${p.marker}\n`);
    const i = this.#errBuf.indexOf(tag);
    if (i >= 0) {
      p.err.push(this.#errBuf.subarray(0, i));
      p.errDone = true;
      this.#errBuf = this.#errBuf.subarray(i + tag.length);
      this.#settle();
    }
  }

  #settle() {
    const p = this.#pending;
    // A command being killed fails with its timeout or abort, not with the status the kill gave it.
    if (!p || p.outDone === undefined || !p.errDone || p.stopping) return;
    this.#pending = undefined;
    clearTimeout(p.timer);
    const out = Buffer.concat(p.out);
    p.resolve({ code: p.outDone, stdout: out.toString('utf8'), stderr: Buffer.concat(p.err).toString('utf8'), stdoutBuffer: out });
  }

  /** Runs one command; commands on a session are serialized. */
  exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const run = () => this.#run(cmd, opts);
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #run(cmd: string, opts: ExecOptions): Promise<ExecResult> {
    if (this.#dead) return Promise.reject(this.#dead);
    const marker = `__PHX_${randomBytes(9).toString('hex')}`;
    let script: string;
    try {
      script = this.#jobs ? jobBlock(cmd, opts, marker) : setsidScript(cmd, opts, marker);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const p: Pending = { marker, out: [], err: [], errDone: false, resolve, reject };
      this.#pending = p;
      this.#outBuf = Buffer.alloc(0);
      this.#errBuf = Buffer.alloc(0);
      const seconds = opts.timeout ?? 600;
      p.timer = setTimeout(() => {
        void this.#stop(p, new Error(`${this.label}: command timed out after ${seconds}s; its process group on the host was killed`));
      }, seconds * 1000);
      this.streams.stdin.write(script);
    });
  }

  /** Kills the running command's process group on the host, then this shell. */
  async #stop(p: Pending, e: Error): Promise<void> {
    if (this.#pending !== p || p.stopping) return;
    p.stopping = true;
    clearTimeout(p.timer);
    // The group goes first (on another channel), so the next task never meets it (a dpkg lock).
    try {
      if (p.pgid && this.streams.killGroup) await this.streams.killGroup(p.pgid);
    } finally {
      this.#die(e);
      this.streams.kill();
    }
  }

  /** True while a command runs. */
  get busy(): boolean {
    return !!this.#pending;
  }

  /** Second Ctrl-C: the running command (if any) fails with AbortedError and its process group is killed. */
  async abort(): Promise<boolean> {
    const p = this.#pending;
    if (!p) return false;
    await this.#stop(p, new AbortedError(`${this.label}: aborted: the command's process group was killed`));
    return true;
  }

  close(): void {
    if (this.#dead) return;
    try {
      this.streams.stdin.end('exit 0\n');
    } catch {
      /* already gone */
    }
    this.#die(new Error(`${this.label}: closed`));
    setTimeout(() => this.streams.kill(), 2000).unref();
  }
}
