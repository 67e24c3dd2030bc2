// Runs a plan: the hosts of a play concurrently (capped by forks), a host's tasks in order,
// then the handlers its changed tasks notified. A failure stops only its host. Plays start as
// their `after` allows (runPlan): a play waits until the plays it names have ended on all their
// hosts; a host runs one play at a time (docs/playbooks.md, "Overlapping plays").
import { AbortedError, CheckModeRefusal, checkModeConnection, ConnectionPool, ConnectionError, type Connection, type ConnectionBroker, type ExecOptions } from './connection/index.ts';
import type { Handler, Role, Task, TaskEnv, ActionSpec } from './dsl.ts';
import type { Host } from './inventory.ts';
import { redact, redactDeep } from './secret.ts';
import type { PlannedPlay } from './selection.ts';
import { isReadOnlyRequest, sendRequest } from './modules/http.ts';
import { HostOutputs } from './outputs.ts';
import { NotYetError, TaskError, type Action, type ActionContext, type ActionResult, type Changed, type FileDiff, type HttpRequest, type HttpResponse, type RunFn } from './types.ts';

export type TaskStatus = 'ok' | 'changed' | 'unknown' | 'skipped' | 'failed' | 'unreachable';

export interface TaskRecord {
  play: string;
  role: string;
  task: string;
  module?: string;
  handler: boolean;
  status: TaskStatus;
  changed: Changed;
  msg?: string;
  diff?: FileDiff[];
  error?: { message: string; command?: string; stderr?: string; code?: number };
  durationMs: number;
  /** A failure the task's ignoreErrors let pass: counted as "ignored", the host goes on. */
  ignored?: boolean;
  /** Check mode: the command or request (redacted) the task sent without marking it read-only, held back. */
  refused?: string;
  /** With -v: the task's output (a command's stdout and stderr). */
  stdout?: string;
  stderr?: string;
  /** With -vv: every command the task ran on the host, with its exit status. */
  commands?: { command: string; code: number }[];
}

/** "interrupted": Ctrl-C stopped the host before it ran all its tasks. */
export type HostStatus = 'ok' | 'failed' | 'unreachable' | 'interrupted';

export interface Counts {
  ok: number;
  changed: number;
  unknown: number;
  failed: number;
  skipped: number;
  unreachable: number;
  ignored: number;
}

export interface HostRecord {
  host: string;
  status: HostStatus;
  /** The play did not run on this host: it failed (or was unreachable) earlier, in this other play. */
  notRun?: { play: string; status: HostStatus };
  counts: Counts;
  tasks: TaskRecord[];
  /** Set when Ctrl-C stopped this host: where, and which notified handlers did not run. */
  interrupted?: { before?: string; aborted?: string; handlersNotRun: string[] };
}

export interface PlayRecord {
  play: string;
  /** The plays this one waited for (absent: the plan is strictly in order, as without `after`). */
  after?: string[];
  /** When the play started and ended (ISO times): overlapping plays overlap here. */
  startedAt?: string;
  endedAt?: string;
  hosts: Record<string, HostRecord>;
}

/** Told to the play runner once, before the first play starts: how the plays wait for each other. */
export interface PlanShape {
  plays: { play: PlannedPlay<any>; after: string[] }[];
  /** Some plays may run at the same time (else each waits for every earlier one: Ansible's order). */
  overlap: boolean;
}

/** What the reporter is told while a host runs. */
export interface HostEvents {
  taskStart(task: string): void;
  taskEnd(rec: TaskRecord): void;
}

export interface EngineOptions {
  check: boolean;
  diff: boolean;
  forks: number;
  knownHosts: string;
  acceptNewHostKeys: boolean;
  /** Every inventory host, for ActionContext.delegate (tasks reaching another host). */
  hosts?: Map<string, Host<any>>;
  /** Opens a host's connection instead of SSH/local (tests: a recording connection). */
  open?: (host: Host<any>) => Promise<Connection>;
  /** Sends ActionContext.request's HTTP requests instead of axios (tests: a recording client). */
  send?: (req: HttpRequest) => Promise<HttpResponse>;
  /** 1: record each task's stdout/stderr; 2: also the commands it ran (-v, -vv). */
  verbose?: number;
  /** --agent: SSH connections are leased from the warm-connection agent. */
  agent?: ConnectionBroker;
}

/** How plays are shown: the reporter drives hosts so listr2 can own the terminal. */
export interface PlayRunner {
  runPlay(
    play: PlannedPlay<any>,
    hosts: Host<any>[],
    runHost: (host: Host<any>, ev: HostEvents) => Promise<HostRecord>,
    forks: number,
  ): Promise<HostRecord[]>;
  /** Before the first play: the whole plan (a view that shows every play at once sets itself up). */
  begin?(shape: PlanShape): void | Promise<void>;
  /** After the last play, or when a Ctrl-C left plays unstarted. */
  end?(): void | Promise<void>;
}

export function emptyCounts(): Counts {
  return { ok: 0, changed: 0, unknown: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0 };
}

export function count(recs: TaskRecord[]): Counts {
  const c = emptyCounts();
  for (const r of recs) {
    if (r.ignored) c.ignored++;
    else c[r.status]++;
  }
  return c;
}

/** A semaphore for --forks. */
export function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Waits for a host to be free (one play at a time on a host); among waiters the lowest rank (the play declared first) goes first. */
export type HostSlots = (host: string, rank: number) => Promise<() => void>;

export function hostSlots(): HostSlots {
  const busy = new Set<string>();
  const waiting = new Map<string, { rank: number; go: () => void }[]>();
  return (host, rank) =>
    new Promise((resolve) => {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const q = waiting.get(host) ?? [];
        if (!q.length) return void busy.delete(host);
        q.sort((a, b) => a.rank - b.rank);
        q.shift()!.go();
      };
      const go = () => resolve(release);
      if (!busy.has(host)) {
        busy.add(host);
        go();
      } else waiting.set(host, [...(waiting.get(host) ?? []), { rank, go }]);
    });
}

/** A role's prepare (RoleOptions.prepare) failed: its host fails at the role's first task, whatever that task's ignoreErrors. */
class PrepareError extends TaskError {}

function statusOf(r: ActionResult): TaskStatus {
  if (r.skipped) return 'skipped';
  if (r.changed === 'unknown') return 'unknown';
  return r.changed ? 'changed' : 'ok';
}

export class Engine {
  readonly pool: ConnectionPool;
  /** Hosts that failed or were unreachable leave the rest of the playbook, as in Ansible. */
  readonly down = new Map<string, HostStatus>();
  /** First Ctrl-C: no new task starts. */
  stopping = false;
  /** Second Ctrl-C: running commands are killed. */
  aborted = false;
  /** Per host, the task running now. */
  readonly running = new Map<string, string>();
  #abortWaiters = new Set<(e: Error) => void>();
  #killing: Promise<unknown> = Promise.resolve();

  private readonly opts: EngineOptions;
  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.pool = new ConnectionPool({ knownHosts: opts.knownHosts, acceptNewHostKeys: opts.acceptNewHostKeys, open: opts.open, agent: opts.agent });
  }

  /**
   * Opens the connections of the later plays' hosts in the background while the first play
   * runs. Plays run one after another, and a host's first connection costs an SSH handshake and
   * a sudo shell, so without this each play that brings new hosts first waits for theirs (site:
   * the trust play waits for four guests the CA play did not need). Still one connection per
   * host; at most `forks` warm-ups at once; none started after a Ctrl-C or once the run closes.
   * A warm-up that fails is forgotten: the play that uses the host connects again and reports
   * what it finds then, exactly as without warm-ups (an earlier play may start the host).
   */
  prefetch(plan: PlannedPlay<any>[]): void {
    const seen = new Set((plan[0]?.hosts ?? []).map((h) => h.name));
    const todo: PlannedPlay<any>['hosts'] = [];
    for (const pp of plan.slice(1)) {
      if (!pp.tasks.length) continue;
      for (const h of pp.hosts) {
        if (seen.has(h.name)) continue;
        seen.add(h.name);
        todo.push(h);
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < todo.length && !this.stopping) await this.pool.warm(todo[next++]!);
    };
    for (let i = 0; i < Math.min(this.opts.forks, todo.length); i++) void worker();
  }

  /** Each role's `prepare` per host: started once, awaited by the role's first task there. */
  readonly #prepared = new Map<Role<any>, Map<string, Promise<unknown>>>();

  /** Starts (once) a role's `prepare` for a host; undefined when the role has none. */
  #prepare(role: Role<any>, host: Host<any>): Promise<unknown> | undefined {
    if (!role.prepare) return undefined;
    let byHost = this.#prepared.get(role);
    if (!byHost) this.#prepared.set(role, (byHost = new Map()));
    let p = byHost.get(host.name);
    if (!p) {
      p = Promise.resolve().then(() => role.prepare!(host.vars));
      p.catch(() => undefined); // reported by the role's first task on the host, not as an unhandled rejection
      byHost.set(host.name, p);
    }
    return p;
  }

  /**
   * Starts every selected role's `prepare` (RoleOptions.prepare) for each host it will run on,
   * when the run starts: host-free work (a key derivation in the thread pool) then overlaps the
   * first plays instead of waiting for its role's turn. runHost starts any not started here.
   */
  prepare(plan: PlannedPlay<any>[]): void {
    for (const pp of plan) for (const role of new Set(pp.tasks.map((t) => t.role))) for (const h of pp.hosts) this.#prepare(role, h);
  }

  /** Where each host left the run (failed, unreachable, interrupted), for the plays it then misses. */
  readonly #downIn = new Map<string, string>();

  /**
   * One play, on its hosts that are not down. With a scheduler (runPlan), each host first waits
   * until no other play runs on it, and takes a fork; a host that went down meanwhile (in a play
   * that ran beside this one) does not run it and is recorded so (`notRun`).
   */
  async runPlay(pp: PlannedPlay<any>, runner: PlayRunner, sched?: { hostSlot: HostSlots; forks: ReturnType<typeof limiter>; after?: string[] }): Promise<PlayRecord> {
    const hosts = pp.hosts.filter((h) => !this.down.has(h.name));
    const startedAt = new Date().toISOString();
    const finish = (r: HostRecord) => {
      if (r.status !== 'ok' && !r.notRun && !this.down.has(r.host)) {
        this.down.set(r.host, r.status);
        this.#downIn.set(r.host, pp.play.name);
      }
      return r;
    };
    const runHost = async (h: Host<any>, ev: HostEvents): Promise<HostRecord> => {
      if (!sched) return finish(await this.runHost(pp, h, ev));
      const release = await sched.hostSlot(h.name, pp.index ?? 0);
      try {
        const down = this.down.get(h.name);
        if (down) return { host: h.name, status: down, counts: emptyCounts(), tasks: [], notRun: { play: this.#downIn.get(h.name) ?? '?', status: down } };
        return finish(await sched.forks(() => this.runHost(pp, h, ev)));
      } finally {
        release();
      }
    };
    const records = await runner.runPlay(pp, hosts, runHost, sched ? Math.max(1, hosts.length) : this.opts.forks);
    const out: PlayRecord = { play: pp.play.name, ...(sched?.after ? { after: sched.after } : {}), startedAt, endedAt: new Date().toISOString(), hosts: {} };
    for (const r of records) out.hosts[r.host] = finish(r);
    return out;
  }

  /**
   * Runs the whole plan. A play starts once every play it waits for (PlannedPlay.after) has
   * ended on all of that play's hosts, whether they succeeded or not: a host that failed leaves
   * the rest of the run, as in Ansible, and the other hosts go on. A host runs one play at a
   * time; when several ready plays want it, the one declared first goes first. --forks caps the
   * hosts running at once across all plays. After a Ctrl-C no play starts. Returns the records
   * of the plays that started, in the playbook's order, and the names of those that did not.
   */
  async runPlan(plan: PlannedPlay<any>[], runner: PlayRunner): Promise<{ plays: PlayRecord[]; notStarted: string[] }> {
    const indexOf = (pp: PlannedPlay<any>) => pp.index ?? plan.indexOf(pp);
    const byIndex = new Map(plan.map((pp) => [indexOf(pp), pp]));
    // What each play waits for, among the plays of this plan (--start-at-task drops earlier ones).
    const deps = plan.map((pp, k) => (pp.after ?? plan.slice(0, k).map(indexOf)).filter((i) => byIndex.has(i) && i < indexOf(pp)));
    const overlap = plan.some((_, k) => deps[k]!.length < k);
    const shape: PlanShape = { overlap, plays: plan.map((pp, k) => ({ play: pp, after: deps[k]!.map((i) => byIndex.get(i)!.play.name) })) };
    await runner.begin?.(shape);
    const hostSlot = hostSlots();
    const forks = limiter(this.opts.forks);
    const done = new Map<number, Promise<PlayRecord | undefined>>();
    for (const [k, pp] of plan.entries()) {
      const waits = deps[k]!.map((i) => done.get(i)!);
      done.set(
        indexOf(pp),
        Promise.all(waits).then(() => (this.stopping ? undefined : this.runPlay(pp, runner, { hostSlot, forks, ...(overlap ? { after: shape.plays[k]!.after } : {}) }))),
      );
    }
    let records: (PlayRecord | undefined)[];
    try {
      records = await Promise.all(plan.map((pp) => done.get(indexOf(pp))!));
    } finally {
      await runner.end?.();
    }
    return { plays: records.filter((r): r is PlayRecord => !!r), notStarted: plan.filter((_, k) => !records[k]).map((pp) => pp.play.name) };
  }

  /** First Ctrl-C: finish the running tasks, start no new one. Returns how many are running. */
  interrupt(): number {
    this.stopping = true;
    return this.running.size;
  }

  /**
   * Second Ctrl-C: kill the process groups of the commands running on the hosts, and fail
   * their tasks now. Resolves, once the kills are done, with the hosts and tasks that were
   * cut short (they may be left half-done).
   */
  async abort(): Promise<{ host: string; task: string }[]> {
    this.stopping = true;
    this.aborted = true;
    const cut = [...this.running].map(([host, task]) => ({ host, task }));
    // Every open connection, not only the running hosts': a task may be running a command on
    // another host (delegate). Bounded: a frozen host must not hold the abort up.
    const kills = Promise.race([this.pool.abortAll(), new Promise((r) => setTimeout(r, 15_000).unref())]);
    this.#killing = kills;
    for (const w of this.#abortWaiters) w(new AbortedError('aborted by a second Ctrl-C'));
    await kills;
    return cut;
  }

  async close(): Promise<void> {
    await this.#killing.catch(() => undefined);
    await this.pool.closeAll();
  }

  /**
   * A run function on another inventory host; its connection failing fails the calling task.
   * In check mode it refuses what is not marked read-only, as the task's own connection does.
   */
  async delegate(name: string, onRefuse?: ((e: CheckModeRefusal) => void) | null): Promise<RunFn> {
    const h = this.opts.hosts?.get(name);
    if (!h) throw new TaskError(`delegate: "${name}" is not a host of the inventory`);
    let c: Connection;
    try {
      c = await this.pool.get(h);
    } catch (e) {
      throw new TaskError(`delegate to ${name}: ${(e as Error).message}`);
    }
    if (this.opts.check && onRefuse !== null) c = checkModeConnection(c, onRefuse ?? (() => undefined));
    return (cmd: string, o: ExecOptions = {}) => c.exec(cmd, o);
  }

  async runHost(pp: PlannedPlay<any>, host: Host<any>, ev: HostEvents): Promise<HostRecord> {
    const recs: TaskRecord[] = [];
    // What this play's tasks registered on this host, for later tasks' `uses` (docs/outputs.md).
    const outputs = new HostOutputs(host.name, this.opts.check);
    const notified: Handler<any>[] = [];
    let pending = false;
    let failed = false;
    let unreachable = false;
    // In an object: closures set it, and TypeScript would narrow a plain `let` to undefined.
    const stop: { interrupted?: HostRecord['interrupted'] } = {};
    let conn: Connection | undefined;
    const stopHere = (before?: string) => {
      stop.interrupted = { before, handlersNotRun: notified.map((h) => h.name) };
    };

    const push = (rec: TaskRecord) => {
      const clean = redactDeep(rec);
      recs.push(clean);
      ev.taskEnd(clean);
    };

    const connect = async (): Promise<Connection> => {
      conn ??= await this.pool.get(host);
      return conn;
    };

    const runOne = async (
      name: string,
      roleName: string,
      spec: ActionSpec<any>,
      t: Pick<Task<any>, 'when' | 'become' | 'ignoreErrors' | 'uses'> | undefined,
      roleDir: string | undefined,
      isHandler: boolean,
      ready?: Promise<unknown>,
    ): Promise<ActionResult | undefined> => {
      ev.taskStart(name);
      const start = Date.now();
      const base = { play: pp.play.name, role: roleName, task: name, handler: isHandler };
      const commands: { command: string; code: number }[] = [];
      // -v / -vv: what the task printed and ran (redacted with the rest of the record by push).
      const output = (data: unknown): Pick<TaskRecord, 'stdout' | 'stderr' | 'commands'> => {
        const v = this.opts.verbose ?? 0;
        const d = (data ?? {}) as { stdout?: unknown; stderr?: unknown };
        return {
          ...(v >= 1 && typeof d.stdout === 'string' && d.stdout ? { stdout: d.stdout } : {}),
          ...(v >= 1 && typeof d.stderr === 'string' && d.stderr ? { stderr: d.stderr } : {}),
          ...(v >= 2 && commands.length ? { commands } : {}),
        };
      };
      this.running.set(host.name, name);
      let onAbort: ((e: Error) => void) | undefined;
      // A second Ctrl-C fails the task at once, whatever it waits for (a command, a connect, a poll).
      const aborted = new Promise<never>((_, rej) => {
        onAbort = rej;
        this.#abortWaiters.add(rej);
      });
      aborted.catch(() => undefined);
      // Check mode: what the task tried to send without marking it read-only (held back).
      const refused: CheckModeRefusal[] = [];
      const onRefuse = (e: CheckModeRefusal) => void refused.push(e);
      const check = this.opts.check;
      let moduleName: string | undefined;
      const refusedResult = (): ActionResult => {
        const what = refused[0]!.what;
        const more = refused.length > 1 ? ` (and ${refused.length - 1} more)` : '';
        push({ ...base, module: moduleName, status: 'unknown', changed: 'unknown', msg: redact(refused[0]!.message) + more, refused: redact(what), durationMs: Date.now() - start });
        return { changed: 'unknown' };
      };
      try {
        if (ready)
          await Promise.race([
            ready.catch((e: unknown) => {
              throw new PrepareError(`role ${roleName}: its prepare failed: ${(e as Error)?.message ?? String(e)}`, e instanceof TaskError ? e.detail : {});
            }),
            aborted,
          ]);
        const raw = await connect();
        // The engine, not the module, decides: in check mode only read-only commands reach the host.
        const c = check ? checkModeConnection(raw, onRefuse) : raw;
        const verbose = this.opts.verbose ?? 0;
        const exec = async (cmd: string, o: ExecOptions) => {
          const r = await c.exec(cmd, o);
          if (verbose >= 2) commands.push({ command: cmd, code: r.code });
          return r;
        };
        const run: RunFn = (cmd, o = {}) => exec(cmd, { become: t?.become, ...o });
        const probe: RunFn = (cmd, o = {}) => exec(cmd, { become: t?.become, ...o, readOnly: true });
        const env: TaskEnv<any> = { host, vars: host.vars, check, probe, ...outputs.reader(isHandler ? undefined : { task: name, uses: t?.uses }) };
        if (t?.when && !(await t.when(env))) {
          push({ ...base, status: 'skipped', changed: false, msg: 'condition false', durationMs: Date.now() - start });
          return { changed: false, skipped: true, msg: 'condition false' };
        }
        const action: Action<any> = typeof spec === 'function' ? await spec(env) : spec;
        moduleName = action.module;
        // A module above the runner that still holds its own mutations back says so (docs/check-mode.md).
        const own = check && action.checkMode === 'self';
        const hostRun: RunFn = own ? (cmd, o = {}) => raw.exec(cmd, { become: t?.become, ...o }) : run;
        const ctx: ActionContext<any> = {
          host,
          conn: own ? raw : c,
          check,
          diff: this.opts.diff,
          pendingChanges: pending,
          run: hostRun,
          probe,
          change: async (plan, apply) => (check ? plan : ((await apply()) ?? plan)),
          request: (req: HttpRequest) => {
            if (check && !isReadOnlyRequest(req)) {
              const e = new CheckModeRefusal(host.name, `${(req.method ?? 'GET').toUpperCase()} ${redact(req.url)}`);
              onRefuse(e);
              return Promise.reject(e);
            }
            return (this.opts.send ?? sendRequest)(req);
          },
          roleDir,
          delegate: (name) => this.delegate(name, own ? null : onRefuse),
          inventory: this.opts.hosts ? { hosts: this.opts.hosts, knownHosts: this.opts.knownHosts } : undefined,
        };
        const r = await Promise.race([action.run(ctx), aborted]);
        // A module that caught the refusal and went on cannot know what it reports.
        if (refused.length) return refusedResult();
        push({ ...base, module: action.module, status: statusOf(r), changed: r.changed, msg: r.msg, diff: r.diff, durationMs: Date.now() - start, ...output(r.data) });
        return r;
      } catch (e) {
        if (!this.aborted && (e instanceof CheckModeRefusal || refused.length)) {
          if (!refused.length) refused.push(e as CheckModeRefusal);
          return refusedResult();
        }
        if (e instanceof AbortedError || this.aborted) {
          stop.interrupted = { aborted: name, handlersNotRun: notified.map((h) => h.name) };
          push({
            ...base,
            status: 'failed',
            changed: 'unknown',
            error: { message: 'aborted by a second Ctrl-C: its commands on the host were killed; the host may be left half-done' },
            durationMs: Date.now() - start,
          });
          return undefined;
        }
        // Not there yet, and an earlier change on this host was not applied (check mode): it cannot know.
        if (check && pending && e instanceof NotYetError) {
          push({ ...base, module: moduleName, status: 'unknown', changed: 'unknown', msg: `${redact(e.message)} (an earlier change was not applied in check mode)`, diff: e.diff, durationMs: Date.now() - start });
          return { changed: 'unknown' };
        }
        if (e instanceof ConnectionError) {
          unreachable = true;
          push({ ...base, status: 'unreachable', changed: false, error: { message: redact(e.message) }, durationMs: Date.now() - start });
          return undefined;
        }
        const d = e instanceof TaskError ? e.detail : {};
        push({
          ...base,
          status: 'failed',
          changed: false,
          error: { message: (e as Error).message, command: d.command, stderr: d.stderr?.trim(), code: d.code },
          durationMs: Date.now() - start,
          ...output({ stdout: d.stdout }),
          ...(t?.ignoreErrors && !(e instanceof PrepareError) ? { ignored: true, msg: 'ignored' } : {}),
        });
        throw e;
      } finally {
        this.running.delete(host.name);
        if (onAbort) this.#abortWaiters.delete(onAbort);
      }
    };

    const begun = new Set<Role<any>>();
    for (const { role, task: t } of pp.tasks) {
      if (this.stopping && !stop.interrupted) stopHere(t.name);
      if (stop.interrupted) break;
      // The role's first task here waits for its prepare (started by prepare(), or now).
      const ready = begun.has(role) ? undefined : (begun.add(role), this.#prepare(role, host));
      try {
        const r = await runOne(t.name, role.name, t.do, t, role.dir, false, ready);
        if (unreachable || stop.interrupted) break;
        if (!r) continue;
        outputs.set(t.register, t.name, r);
        if (r.changed !== false && !r.skipped) {
          pending = true;
          // Handler names were resolved to handlers by planning (plan-check.ts).
          for (const h of (t.notify ?? []) as Handler<any>[]) if (!notified.includes(h)) notified.push(h);
        }
      } catch (e) {
        // A failed prepare is the role's, not the task's: ignoreErrors does not cover it.
        if (t.ignoreErrors && !(e instanceof PrepareError)) {
          outputs.set(t.register, t.name, { failed: redact((e as Error).message) });
          continue;
        }
        failed = true;
        break;
      }
    }

    if (!unreachable && !stop.interrupted && notified.length && (!failed || pp.play.forceHandlers)) {
      for (const [i, h] of notified.entries()) {
        if (this.stopping) {
          stop.interrupted = { before: `handler: ${h.name}`, handlersNotRun: notified.slice(i).map((x) => x.name) };
          break;
        }
        const role = pp.tasks.find((x) => x.role.handlers.includes(h))?.role;
        try {
          await runOne(h.name, role?.name ?? '', h.action, { become: h.become }, role?.dir, true);
          const cut = stop.interrupted as HostRecord['interrupted']; // set by runOne on abort
          if (cut) cut.handlersNotRun = notified.slice(i + 1).map((x) => x.name);
          if (unreachable || cut) break;
        } catch {
          failed = true;
          break;
        }
      }
    }
    const { interrupted } = stop;
    const status: HostStatus = interrupted ? 'interrupted' : unreachable ? 'unreachable' : failed ? 'failed' : 'ok';
    return { host: host.name, status, counts: count(recs), tasks: recs, ...(interrupted ? { interrupted } : {}) };
  }
}
