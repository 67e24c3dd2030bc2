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
  /** Anything the task wants to hand to later tasks through `register`. */
  data?: unknown;
}

/** What a module gets to do its work on one host. */
export interface ActionContext<V extends Vars = Vars> {
  host: Host<V>;
  conn: Connection;
  check: boolean;
  diff: boolean;
  /** In check mode: an earlier task on this host would have changed something. */
  pendingChanges: boolean;
  /** Runs a command on the host (probes run in check mode too). */
  run(cmd: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Directory of the role whose task runs (for relative template paths). */
  roleDir?: string;
  /**
   * Runs commands on another inventory host from inside this host's task (like Ansible's
   * delegate_to), over that host's own connection: e.g. a swarm worker reads the manager's
   * join token. Modules use it for read-only probes unless they say otherwise.
   */
  delegate?(hostName: string): Promise<ActionContext['run']>;
  /** Every inventory host and the run's known_hosts file (the proxmox role reads the guests' declarations and records their host keys). */
  inventory?: { hosts: ReadonlyMap<string, Host<any>>; knownHosts: string };
}

/** A module invocation: the unit of work a task performs. */
export interface Action<V extends Vars = Vars> {
  module: string;
  /** One line for --list-tasks and progress, e.g. "copy /etc/nginx/nginx.conf". */
  summary: string;
  run(ctx: ActionContext<V>): Promise<ActionResult>;
}

export class TaskError extends Error {
  constructor(
    message: string,
    readonly detail: { command?: string; stderr?: string; stdout?: string; code?: number } = {},
  ) {
    super(message);
    this.name = 'TaskError';
  }
}
