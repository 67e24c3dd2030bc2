// Output: listr2 in a terminal, plain lines otherwise, the recap, and the --json report.
import { writeFileSync, renameSync } from 'node:fs';
import type { HostEvents, HostRecord, PlanShape, PlayRecord, PlayRunner, TaskRecord, Counts } from './engine.ts';
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
  /** Name the play on every line (plays that overlap interleave their lines). */
  play?: boolean;
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
  // Last, so "status host | role | task" reads (and greps) the same with or without overlap.
  if (opts.play) line += `  [${rec.play}]`;
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

/** A host a play did not run on: it failed (or was unreachable) in another play. */
export function formatNotRun(r: HostRecord, play: string, opts: FormatOptions): string {
  const n = r.notRun!;
  return `${color(36, 'not run', opts.color)}     ${r.host} | (the host was ${n.status} earlier, in play "${n.play}")${opts.play ? `  [${play}]` : ''}`;
}

/** "PLAY [name] hosts", and with overlapping plays what it waited for. */
function playLine(name: string, hosts: Host<any>[], after: string[] | undefined): string {
  return `PLAY [${name}] ${hosts.map((h) => h.name).join(', ') || '(no hosts left)'}${after?.length ? ` (after: ${after.join(', ')})` : ''}`;
}

/**
 * Plain lines, one per task result, printed as results arrive. When plays overlap, every line
 * names its play ("  [play]" at its end), a play's header says what it waited for, and
 * "PLAY END [name]" marks where it ended.
 */
export class PlainRunner implements PlayRunner {
  #after = new Map<PlannedPlay<any>, string[]>();
  private readonly out: Out;
  private opts: FormatOptions;
  constructor(out: Out, opts: FormatOptions) {
    this.out = out;
    this.opts = opts;
  }
  begin(shape: PlanShape) {
    if (!shape.overlap) return;
    this.opts = { ...this.opts, play: true };
    for (const p of shape.plays) this.#after.set(p.play, p.after);
  }
  async runPlay(pp: PlannedPlay<any>, hosts: Host<any>[], runHost: (h: Host<any>, ev: HostEvents) => Promise<HostRecord>, forks: number) {
    this.out.write(`${playLine(pp.play.name, hosts, this.#after.get(pp))}\n`);
    const limit = limiter(forks);
    const recs = await Promise.all(
      hosts.map((h) =>
        limit(async () => {
          const rec = await runHost(h, {
            taskStart: () => undefined,
            taskEnd: (rec) => this.out.write(`${formatTask(rec, h.name, this.opts)}\n`),
          });
          if (rec.notRun) this.out.write(`${formatNotRun(rec, pp.play.name, this.opts)}\n`);
          return rec;
        }),
      ),
    );
    if (this.opts.play) this.out.write(`PLAY END [${pp.play.name}]\n`);
    return recs;
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
}

interface ListrPlay {
  name: string;
  after: string[];
  tasks: number;
  /** Set when the engine starts the play; null when it never does (Ctrl-C). */
  start: Deferred<{ hosts: Host<any>[]; runHost: (h: Host<any>, ev: HostEvents) => Promise<HostRecord>; results: Deferred<HostRecord>[] } | null>;
  hosts: Host<any>[];
  results: Map<string, HostRecord>;
}

/**
 * listr2: one group per play, its hosts below it (a line per host, its current task under it).
 * Plays in order (no `after`): a list per play, its details printed after it, as always. Plays
 * that may overlap: the whole plan is one list, plays that wait say what they wait for, plays
 * that overlap run as groups side by side, and the details are printed play by play at the end.
 */
export class ListrRunner implements PlayRunner {
  #plays = new Map<PlannedPlay<any>, ListrPlay>();
  #run?: Promise<unknown>;
  private readonly out: Out;
  private readonly opts: FormatOptions;
  constructor(out: Out, opts: FormatOptions) {
    this.out = out;
    this.opts = opts;
  }

  #overlap = false;

  async begin(shape: PlanShape) {
    this.#overlap = shape.overlap;
    for (const { play: pp, after } of shape.plays)
      this.#plays.set(pp, { name: pp.play.name, after, tasks: pp.tasks.length, start: deferred(), hosts: [], results: new Map() });
    // In order (no play overlaps another): one list per play, its details right after it, as always.
    if (!shape.overlap) return;
    const { Listr } = await import('listr2'); // only needed on a terminal
    const list = new Listr(
      [...this.#plays.values()].map((p) => this.#playTask(p)),
      // Ctrl-C is phoenix's to handle (cli.ts): listr2's own handler would exit at once.
      { concurrent: true, exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
    );
    this.#run = list.run().catch(() => undefined);
  }

  /** A play's group: it waits (titled with what it waits for) until the engine starts it, then a line per host. */
  #playTask(p: ListrPlay) {
    return {
      title: `PLAY ${p.name}${p.after.length && this.#overlap ? `  (waiting for ${p.after.join(', ')})` : ''}`,
      task: async (_ctx: unknown, play: any) => {
        const s = await p.start.promise;
        if (!s) return play.skip(`PLAY ${p.name}: not started`);
        play.title = `PLAY ${p.name}`;
        return play.newListr(
          s.hosts.map((h, i) => ({
            title: h.name,
            task: async (_c: unknown, t: { title: string; output: string }) => {
              let n = 0;
              let changed = 0;
              let handlers = 0; // handlers that ran count in the total too ("10/10", not "10/9")
              let rec: HostRecord;
              try {
                rec = await s.runHost(h, {
                  taskStart: (name) => {
                    t.output = `${name}`;
                  },
                  taskEnd: (r) => {
                    n++;
                    if (r.handler) handlers++;
                    if (r.status === 'changed') changed++;
                    t.title = `${h.name}  ${n}/${p.tasks + handlers} tasks${handlers ? ` (${handlers} handler${handlers > 1 ? 's' : ''})` : ''}, ${changed} changed`;
                  },
                });
              } catch (e) {
                s.results[i]!.reject(e);
                throw e;
              }
              s.results[i]!.resolve(rec);
              p.results.set(h.name, rec);
              if (rec.notRun) throw new Error(`${h.name}: not run (${rec.notRun.status} earlier, in play "${rec.notRun.play}")`);
              if (rec.status !== 'ok') {
                if (rec.status === 'interrupted') throw new Error(`${h.name}: interrupted`);
                const last = rec.tasks.findLast((x) => x.status === 'failed' || x.status === 'unreachable');
                throw new Error(`${h.name}: ${last?.status ?? rec.status}${last ? ` at "${last.task}": ${last.error?.message ?? ''}` : ''}`);
              }
            },
          })),
          { concurrent: true, exitOnError: false },
        );
      },
    };
  }

  async runPlay(pp: PlannedPlay<any>, hosts: Host<any>[], runHost: (h: Host<any>, ev: HostEvents) => Promise<HostRecord>, forks: number) {
    let p = this.#plays.get(pp);
    if (!p) {
      // Driven play by play without begin() (engine.runPlay): in order.
      p = { name: pp.play.name, after: [], tasks: pp.tasks.length, start: deferred(), hosts: [], results: new Map() };
      this.#plays.set(pp, p);
    }
    p.hosts = hosts;
    // Without a scheduler (engine.runPlay alone), --forks is this play's to apply.
    const limit = limiter(forks);
    const hostRun = (h: Host<any>, ev: HostEvents) => limit(() => runHost(h, ev));
    const results = hosts.map(() => deferred<HostRecord>());
    p.start.resolve({ hosts, runHost: hostRun, results });
    if (this.#overlap) return Promise.all(results.map((d) => d.promise));
    const { Listr } = await import('listr2');
    const list = new Listr([this.#playTask(p)], { exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false } });
    await list.run().catch(() => undefined);
    this.#details(p);
    return Promise.all(results.map((d) => d.promise));
  }

  /** Details that do not fit a progress line: changes, diffs and errors. */
  #details(p: ListrPlay) {
    const opts = { ...this.opts, play: this.#overlap };
    for (const h of p.hosts) {
      const rec = p.results.get(h.name);
      if (rec?.notRun) this.out.write(`${formatNotRun(rec, p.name, opts)}\n`);
      for (const t of rec?.tasks ?? []) {
        if (this.opts.verbose || t.status === 'changed' || t.status === 'failed' || t.status === 'unreachable' || t.status === 'unknown') this.out.write(`${formatTask(t, h.name, opts)}\n`);
      }
    }
  }

  async end() {
    for (const p of this.#plays.values()) p.start.resolve(null); // no-op for the plays that started
    await this.#run;
    // Overlapping plays: their details, play by play, once the list has ended.
    if (this.#overlap) for (const p of this.#plays.values()) this.#details(p);
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
