// Output: listr2 in a terminal, plain lines otherwise, the recap, and the --json report.
import { writeFileSync, renameSync } from 'node:fs';
import type { HostEvents, HostRecord, PlayRecord, PlayRunner, TaskRecord, Counts } from './engine.ts';
import { limiter } from './engine.ts';
import type { Host } from './inventory.ts';
import { redactDeep } from './secret.ts';
import type { PlannedPlay } from './selection.ts';

export interface Out {
  write(s: string): void;
}

const color = (code: number, s: string, on: boolean) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

export interface FormatOptions {
  diff: boolean;
  color: boolean;
  /** 1 (-v): stdout and stderr of each task; 2 (-vv): the commands too. */
  verbose?: number;
}

const indent = (label: string, text: string) => `    ${label}: ${text.replace(/\n$/, '').split('\n').join(`\n    ${' '.repeat(label.length + 2)}`)}`;

export function formatTask(rec: TaskRecord, host: string, opts: FormatOptions): string {
  const c = opts.color;
  const label: Record<TaskRecord['status'], string> = {
    ok: color(32, 'ok', c),
    changed: color(33, 'changed', c),
    unknown: color(35, 'unknown', c),
    skipped: color(36, 'skipped', c),
    failed: color(31, 'failed', c),
    unreachable: color(31, 'unreachable', c),
  };
  const pad = ' '.repeat(Math.max(0, 11 - rec.status.length));
  let line = `${label[rec.status]}${pad} ${host} | ${rec.role ? `${rec.role} | ` : ''}${rec.handler ? 'handler: ' : ''}${rec.task}`;
  if (rec.msg) line += ` (${rec.msg})`;
  const out = [line];
  if (rec.error) {
    out.push(`    error: ${rec.error.message}`);
    if (rec.error.command) out.push(`    command: ${rec.error.command.split('\n').join('\n             ')}`);
    if (rec.error.code !== undefined) out.push(`    exit status: ${rec.error.code}`);
    if (rec.error.stderr) out.push(`    stderr: ${rec.error.stderr.split('\n').slice(-20).join('\n            ')}`);
  }
  if ((opts.verbose ?? 0) >= 2) for (const c of rec.commands ?? []) out.push(indent(`$ (exit ${c.code})`, c.command));
  if ((opts.verbose ?? 0) >= 1) {
    if (rec.stdout) out.push(indent('stdout', rec.stdout));
    if (rec.stderr && rec.stderr.trim() !== rec.error?.stderr) out.push(indent('stderr', rec.stderr));
  }
  if (opts.diff && rec.diff) for (const d of rec.diff) out.push(d.text.trimEnd());
  return out.join('\n');
}

/** Plain lines, one per task result, printed as results arrive. */
export class PlainRunner implements PlayRunner {
  private readonly out: Out;
  private readonly opts: FormatOptions;
  constructor(
    out: Out,
    opts: FormatOptions,
  ) {
    this.out = out;
    this.opts = opts;
  }
  async runPlay(pp: PlannedPlay<any>, hosts: Host<any>[], runHost: (h: Host<any>, ev: HostEvents) => Promise<HostRecord>, forks: number) {
    this.out.write(`PLAY [${pp.play.name}] ${hosts.map((h) => h.name).join(', ') || '(no hosts left)'}\n`);
    const limit = limiter(forks);
    return Promise.all(
      hosts.map((h) =>
        limit(() =>
          runHost(h, {
            taskStart: () => undefined,
            taskEnd: (rec) => this.out.write(`${formatTask(rec, h.name, this.opts)}\n`),
          }),
        ),
      ),
    );
  }
}

/** listr2: one line per host, its current task below it; details printed after the play. */
export class ListrRunner implements PlayRunner {
  private readonly out: Out;
  private readonly opts: FormatOptions;
  constructor(
    out: Out,
    opts: FormatOptions,
  ) {
    this.out = out;
    this.opts = opts;
  }
  async runPlay(pp: PlannedPlay<any>, hosts: Host<any>[], runHost: (h: Host<any>, ev: HostEvents) => Promise<HostRecord>, forks: number) {
    const results = new Map<string, HostRecord>();
    const { Listr } = await import('listr2'); // only needed on a terminal
    const list = new Listr(
      [
        {
          title: `PLAY ${pp.play.name}`,
          task: (_ctx, play) =>
            play.newListr(
              hosts.map((h) => ({
                title: h.name,
                task: async (_c: unknown, t: { title: string; output: string }) => {
                  let n = 0;
                  let changed = 0;
                  let handlers = 0; // handlers that ran count in the total too ("10/10", not "10/9")
                  const rec = await runHost(h, {
                    taskStart: (name) => {
                      t.output = `${name}`;
                    },
                    taskEnd: (r) => {
                      n++;
                      if (r.handler) handlers++;
                      if (r.status === 'changed') changed++;
                      t.title = `${h.name}  ${n}/${pp.tasks.length + handlers} tasks${handlers ? ` (${handlers} handler${handlers > 1 ? 's' : ''})` : ''}, ${changed} changed`;
                    },
                  });
                  results.set(h.name, rec);
                  if (rec.status !== 'ok') {
                    if (rec.status === 'interrupted') throw new Error(`${h.name}: interrupted`);
                    const last = rec.tasks.findLast((x) => x.status === 'failed' || x.status === 'unreachable');
                    throw new Error(`${h.name}: ${last?.status ?? rec.status}${last ? ` at "${last.task}": ${last.error?.message ?? ''}` : ''}`);
                  }
                },
              })),
              { concurrent: forks, exitOnError: false },
            ),
        },
      ],
      // Ctrl-C is phoenix's to handle (cli.ts): listr2's own handler would exit at once.
      { exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
    );
    await list.run().catch(() => undefined);
    // Details that do not fit a progress line: changes, diffs and errors.
    for (const h of hosts) {
      for (const rec of results.get(h.name)?.tasks ?? []) {
        if (this.opts.verbose || rec.status === 'changed' || rec.status === 'failed' || rec.status === 'unreachable' || rec.status === 'unknown')
          this.out.write(`${formatTask(rec, h.name, this.opts)}\n`);
      }
    }
    return hosts.map((h) => results.get(h.name)!).filter(Boolean);
  }
}

export type RecapLine = Counts & { status: string; interrupted?: NonNullable<HostRecord['interrupted']> & { play: string } };

export function recap(plays: PlayRecord[]): Record<string, RecapLine> {
  const per: Record<string, RecapLine> = {};
  for (const p of plays) {
    for (const [name, r] of Object.entries(p.hosts)) {
      const c = (per[name] ??= { ok: 0, changed: 0, unknown: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, status: 'ok' });
      for (const k of Object.keys(r.counts) as (keyof Counts)[]) c[k] += r.counts[k];
      if (r.status !== 'ok') c.status = r.status;
      if (r.interrupted) c.interrupted = { ...r.interrupted, play: p.play };
    }
  }
  return per;
}

/** After Ctrl-C: per interrupted host, where it stopped and what did not run. */
export function formatInterrupted(r: ReturnType<typeof recap>): string {
  const lines: string[] = [];
  for (const [name, c] of Object.entries(r)) {
    const i = c.interrupted;
    if (c.status !== 'interrupted' || !i) continue;
    let line = i.aborted
      ? `${name}: aborted during "${i.aborted}" (play "${i.play}"): its commands were killed; the host may be left half-done`
      : i.before
        ? `${name}: stopped before "${i.before}" (play "${i.play}")`
        : `${name}: not started (play "${i.play}")`;
    if (i.handlersNotRun.length) line += `; notified handlers not run: ${i.handlersNotRun.join(', ')}`;
    lines.push(line);
  }
  return lines.join('\n');
}

export function formatRecap(r: ReturnType<typeof recap>, check: boolean, useColor: boolean): string {
  const names = Object.keys(r);
  const w = Math.max(4, ...names.map((n) => n.length));
  const lines = [`RECAP${check ? ' (check mode: nothing was changed)' : ''}`];
  for (const n of names) {
    const c = r[n]!;
    const col = c.failed || c.unreachable || c.status === 'interrupted' ? 31 : c.changed ? 33 : 32;
    lines.push(
      `${color(col, n.padEnd(w), useColor)}  ok=${c.ok}  changed=${c.changed}  ${check || c.unknown ? `unknown=${c.unknown}  ` : ''}failed=${c.failed}  skipped=${c.skipped}  unreachable=${c.unreachable}${c.ignored ? `  ignored=${c.ignored}` : ''}${c.status === 'interrupted' ? `  ${color(31, 'INTERRUPTED', useColor)}` : ''}`,
    );
  }
  if (!names.length) lines.push('(no host ran)');
  return lines.join('\n');
}

/** --agent: which hosts' SSH connections were reused warm from the agent (and which went direct). */
export interface AgentReport {
  socket: string;
  reused: string[];
  direct: string[];
}

export function formatAgent(a: AgentReport): string {
  let s = `warm: ${a.reused.length ? a.reused.join(', ') : 'none'} (${a.reused.length ? 'connections reused from the agent' : 'the agent connected every host afresh'})`;
  if (a.direct.length) s += `\ndirect: ${a.direct.join(', ')} (the agent could not be used; connected directly)`;
  return s;
}

export interface JsonReport {
  playbook: string;
  inventory: string;
  startedAt: string;
  durationMs: number;
  check: boolean;
  diff: boolean;
  selection: { tags?: string[]; skipTags?: string[]; limit?: string[]; startAtTask?: string };
  plays: PlayRecord[];
  recap: ReturnType<typeof recap>;
  /** --agent only. */
  agent?: AgentReport;
  exitCode: number;
}

/** Written atomically, with every secret masked. */
export function writeJson(path: string, report: JsonReport): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(redactDeep(report), null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
