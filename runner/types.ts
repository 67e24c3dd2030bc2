// Shared shapes between the DSL, the modules and the engine.
import type { Host, Vars } from './inventory.ts';
import type { Connection, ExecOptions, ExecResult } from './connection/types.ts';

export type Changed = boolean | 'unknown';

export interface FileDiff {
  path: string;
  before: string;
  after: string;
  /** Unified diff text, already redacted. */
  text: string;
}

export interface ActionResult {
  changed: Changed;
  /** True when a guard (creates/removes/unless/when) decided there was nothing to do. */
  skipped?: boolean;
  msg?: string;
  diff?: FileDiff[];
  /** The task's output: what later tasks read through its `register` handle (TaskEnv.get). */
  data?: unknown;
}

/** A task's result as a later task reads it (TaskEnv.result): Ansible's registered variable, typed. */
export interface TaskResult<T = unknown> {
  changed: Changed;
  /** Its `when` was false (or a guard found nothing to do). */
  skipped: boolean;
  /** It failed and `ignoreErrors` let the host go on. */
  failed: boolean;
  msg?: string;
  /** The value it returned (ActionResult.data); absent when skipped or failed. */
  data?: T;
}

/** Runs one command on a host. Not marked `readOnly`, it is a change (refused in check mode). */
export type RunFn = (cmd: string, opts?: ExecOptions) => Promise<ExecResult>;

/** An HTTP request from the control machine (ActionContext.request). */
export interface HttpRequest {
  url: string;
  /** Default GET. GET, HEAD and OPTIONS only read; any other method is a change unless `readOnly`. */
  method?: string;
  headers?: Record<string, string>;
  data?: unknown;
  /** Seconds (default 30). */
  timeout?: number;
  /** A PEM CA bundle on the control machine: the only roots trusted for this request (Node's defaults are not added). */
  ca?: string;
  /** A request with another method that only reads (a search POST): it is sent in check mode too. */
  readOnly?: boolean;
}

export interface HttpResponse {
  status: number;
  data: unknown;
}

/**
 * What a module gets to do its work on one host. Check mode is enforced here, not by modules:
 * a module reads the host with `probe` (runs in both modes), computes what it would change, and
 * declares it with `change(plan, apply)`; `apply` makes the change, and the engine calls it only
 * in a real run. Any other command (`run` without `readOnly`) or non-GET request is refused in
 * check mode before it leaves the control machine, and the task reports `unknown` naming it.
 */
export interface ActionContext<V extends Vars = Vars> {
  host: Host<V>;
  /** The host's connection; in check mode it refuses every command not marked `readOnly`. */
  conn: Connection;
  check: boolean;
  diff: boolean;
  /** In check mode: an earlier task on this host would have changed something. */
  pendingChanges: boolean;
  /** A read-only command (a probe): it runs in check mode too, and changes nothing. */
  probe: RunFn;
  /** A command that changes the host, unless `opts.readOnly`: refused in check mode. */
  run: RunFn;
  /**
   * The task's change. `plan` is what the task reports without making it (check mode); in a real
   * run `apply` makes it and returns the final result (default: `plan`). The same code computes
   * `plan` in both modes, so a check run reports the changes the real run makes.
   */
  change(plan: ActionResult, apply: () => Promise<ActionResult | void>): Promise<ActionResult>;
  /** An HTTP request from the control machine: GET/HEAD/OPTIONS, or `readOnly`, run in check mode too. */
  request(req: HttpRequest): Promise<HttpResponse>;
  /** Directory of the role whose task runs (for relative template paths). */
  roleDir?: string;
  /**
   * Runs commands on another inventory host from inside this host's task (like Ansible's
   * delegate_to), over that host's own connection: e.g. a swarm worker reads the manager's
   * join token. The same rule: a command not marked `readOnly` is a change.
   */
  delegate?(hostName: string): Promise<RunFn>;
  /** Every inventory host and the run's known_hosts file (the proxmox role reads the guests' declarations and records their host keys). */
  inventory?: { hosts: ReadonlyMap<string, Host<any>>; knownHosts: string };
}

/** A module invocation: the unit of work a task performs. */
export interface Action<V extends Vars = Vars> {
  module: string;
  /** One line for --list-tasks and progress, e.g. "copy /etc/nginx/nginx.conf". */
  summary: string;
  run(ctx: ActionContext<V>): Promise<ActionResult>;
  /**
   * check-mode exception: 'self' says the module holds its own mutations back in check mode (a
   * legacy `if (ctx.check)`), so the engine does not refuse its commands. Avoid: use ctx.probe
   * and ctx.change instead. Every such module is listed in docs/check-mode.md.
   */
  checkMode?: 'self';
}

export class TaskError extends Error {
  readonly detail: { command?: string; stderr?: string; stdout?: string; code?: number };
  constructor(
    message: string,
    detail: { command?: string; stderr?: string; stdout?: string; code?: number } = {},
  ) {
    super(message);
    this.detail = detail;
    this.name = 'TaskError';
  }
}

/**
 * Something the task needs on the host is not there (a unit, a file, a directory, a tool) and
 * an earlier task may be what makes it. The task fails; but in check mode, after an earlier task
 * on the host would have changed something, the engine reports it `unknown`: the probe cannot
 * tell what the unapplied change would have made.
 */
export class NotYetError extends TaskError {
  /** What the check run shows anyway (e.g. copy's diff of the content it would write). */
  readonly diff?: FileDiff[];
  constructor(message: string, detail: TaskError['detail'] = {}, diff?: FileDiff[]) {
    super(message, detail);
    this.diff = diff;
    this.name = 'NotYetError';
  }
}
