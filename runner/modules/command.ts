// command / shell: run a command, guarded by creates / removes / unless / onlyIf.
// shell() hands its string to the host's POSIX shell (pipes, &&, redirects, $VARS, globs);
// command() runs an argv without a shell, as Ansible's command does: each argument is quoted,
// so nothing in it is interpreted.
import { shQuote } from '../connection/shell.ts';
import type { Secret } from '../secret.ts';
import { redact } from '../secret.ts';
import type { Action, ActionContext, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface CommandOptions {
  /** Skip when this path exists: a path or glob pattern, relative to chdir when relative. */
  creates?: string;
  /** Skip unless this path exists: a path or glob pattern, relative to chdir when relative. */
  removes?: string;
  /** Skip when this read-only check command succeeds (it runs in check mode too). */
  unless?: string;
  /** Skip unless this read-only check command succeeds. */
  onlyIf?: string;
  stdin?: string | Secret;
  env?: Record<string, string | Secret>;
  chdir?: string;
  timeout?: number;
  /** Decide from the result whether the command changed anything (default: it did). */
  changedWhen?: (r: { stdout: string; stderr: string; code: number }) => boolean;
  /** The command only reads: it also runs in check mode, and never counts as a change. */
  readOnly?: boolean;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
}

/** What a task registers from a command: always present, also when the command did not run. */
export interface CommandData {
  stdout: string;
  stderr: string;
  /** Exit status, or null when the command did not run (a guard held, or check mode). */
  code: number | null;
  ran: boolean;
}

const NOT_RUN: CommandData = Object.freeze({ stdout: '', stderr: '', code: null, ran: false }) as CommandData;

/**
 * creates/removes as Ansible reads them: a path or a glob pattern (one path: spaces are not
 * separators), relative to chdir when given; a dangling symlink counts as existing.
 */
function pathGuards(o: CommandOptions): string | undefined {
  if (!o.creates && !o.removes && !o.chdir) return undefined;
  const lines = [
    o.chdir ? `cd -- ${shQuote(o.chdir)} 2>/dev/null || { echo nochdir; exit 0; }` : '',
    `IFS=''`,
    `m() { for x in $1; do if [ -e "$x" ] || [ -L "$x" ]; then return 0; fi; done; return 1; }`,
    o.creates ? `m ${shQuote(o.creates)} && echo creates` : '',
    o.removes ? `m ${shQuote(o.removes)} || echo removes` : '',
    'true',
  ];
  return lines.filter(Boolean).join('\n');
}

/** Why the guards say the command should not run, or undefined when it should. */
async function guardSays(ctx: ActionContext, o: CommandOptions): Promise<string | undefined> {
  const sh = pathGuards(o);
  if (sh) {
    const r = await ctx.probe(sh);
    const said = r.stdout.split('\n');
    if (said.includes('nochdir')) throw new TaskError(`chdir ${o.chdir} does not exist (or is not a directory)`);
    if (said.includes('creates')) return `${o.creates} exists`;
    if (said.includes('removes')) return `${o.removes} does not exist`;
  }
  if (o.unless) {
    const r = await ctx.probe(o.unless, { env: o.env, cwd: o.chdir });
    if (r.code === 0) return `"unless" check succeeded`;
  }
  if (o.onlyIf) {
    const r = await ctx.probe(o.onlyIf, { env: o.env, cwd: o.chdir });
    if (r.code !== 0) return `"onlyIf" check failed`;
  }
  return undefined;
}

export function shell(cmd: string, o: CommandOptions = {}): Action {
  const invalid = invalidArgs('shell', o, typeof cmd === 'string' && cmd.trim() ? [] : [`the command must be a non-empty string (got ${typeof cmd === 'string' ? '""' : typeof cmd})`]);
  if (invalid) return invalid;
  return {
    module: 'shell',
    summary: redact(cmd.length > 80 ? `${cmd.slice(0, 77)}...` : cmd),
    async run(ctx): Promise<ActionResult> {
      const skip = await guardSays(ctx, o).catch((e: Error) => {
        // check-mode exception: a guard that cannot be evaluated after unapplied changes is "unknown".
        if (ctx.check && ctx.pendingChanges) return undefined;
        throw e;
      });
      // check-mode exception: a guard that says "run" may only say so because an unapplied earlier
      // task would have created what it looks for: then the outcome is unknown.
      const guarded = !!(o.creates || o.removes || o.unless || o.onlyIf);
      if (!skip && ctx.check && ctx.pendingChanges && guarded && !o.readOnly)
        return { changed: 'unknown', msg: 'guard says run, but earlier changes were not applied', data: { ...NOT_RUN } };
      // As in Ansible, a guard that holds is "ok" (nothing to do), not "skipped".
      if (skip) return { changed: false, msg: `skipped: ${skip}`, data: { ...NOT_RUN } };
      const exec = async (): Promise<ActionResult> => {
        const r = await ctx.run(cmd, { stdin: o.stdin, env: o.env, cwd: o.chdir, timeout: o.timeout, readOnly: o.readOnly });
        if (!(o.okCodes ?? [0]).includes(r.code)) {
          // check-mode exception: a read-only command may fail only because earlier changes were not applied: unknown.
          if (ctx.check && ctx.pendingChanges)
            return { changed: 'unknown', msg: `exited ${r.code}; earlier changes were not applied`, data: { stdout: r.stdout, stderr: r.stderr, code: r.code, ran: true } };
          throw new TaskError(`command exited with status ${r.code}`, { command: cmd, stderr: r.stderr, stdout: r.stdout, code: r.code });
        }
        const changed = o.readOnly ? false : o.changedWhen ? o.changedWhen(r) : true;
        const data: CommandData = { stdout: r.stdout, stderr: r.stderr, code: r.code, ran: true };
        return { changed, msg: r.stdout.trim().split('\n').slice(-1)[0] ?? '', data };
      };
      // readOnly runs in both modes. Otherwise the real run executes it; check mode reports it as
      // a change (unknown with changedWhen, which only the result could tell).
      if (o.readOnly) return exec();
      return ctx.change({ changed: o.changedWhen ? 'unknown' : true, msg: 'would run', data: { ...NOT_RUN } }, exec);
    },
  };
}

/**
 * Splits a command line the way Ansible's command module does (Python's shlex.split, POSIX
 * mode): words are separated by blanks; '...' is literal; in "..." a backslash escapes only
 * \\ " $ ` and a newline; outside quotes a backslash escapes any character. Nothing else is
 * special: no pipes, redirects, variables, globs or comments.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`no closing quotation in ${JSON.stringify(line)}`);
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '\\"$`\n'.includes(line[j + 1]!)) j++;
        cur += line[j];
      }
      if (j >= line.length) throw new Error(`no closing quotation in ${JSON.stringify(line)}`);
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error(`no escaped character after the last backslash in ${JSON.stringify(line)}`);
      cur += line[++i];
      inWord = true;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** An argv as one line for the host's shell: every word quoted (bare when nothing in it is special). */
export function joinArgv(argv: readonly string[]): string {
  return argv.map((w, i) => (i > 0 && /^[A-Za-z0-9_@%+:,./-]+$/.test(w) ? w : shQuote(w))).join(' ');
}

/**
 * Runs a program without a shell, like Ansible's command: an argv array, or a string split as
 * splitCommand does. Each argument reaches the program as written: `command(['printf', '%s',
 * 'a b;c'])` prints `a b;c`. Use shell() for pipes, &&, redirects, $VARS or globs. (The
 * unless/onlyIf guards are shell command lines in both.)
 */
export function command(argv: string | readonly string[], o: CommandOptions = {}): Action {
  let words: readonly string[] = [];
  const problems: string[] = [];
  if (typeof argv === 'string') {
    try {
      words = splitCommand(argv);
    } catch (e) {
      problems.push((e as Error).message);
    }
  } else if (Array.isArray(argv) && argv.every((w) => typeof w === 'string')) words = argv;
  else problems.push('the command must be a string or an array of strings');
  if (!problems.length && !words.length) problems.push('the command is empty');
  const invalid = invalidArgs('command', o, problems);
  if (invalid) return invalid;
  const line = joinArgv(words);
  return { ...shell(line, o), module: 'command', summary: redact(line.length > 80 ? `${line.slice(0, 77)}...` : line) };
}
