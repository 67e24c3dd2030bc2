// What a role author writes: role(), task(), handler(), play(), playbook().
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host, Vars } from './inventory.ts';
import type { Action, ActionContext, TaskResult } from './types.ts';
import type { VarsSchema } from './vars-schema.ts';

/** What a task or `when` sees of the host it runs on. */
export interface TaskEnv<V extends Vars = Vars> {
  host: Host<V>;
  vars: V;
  check: boolean;
  /**
   * The result (`changed`, `skipped`, `failed`, `msg`, `data`) of the earlier task of this play
   * that registered `out`, on this host. A task lists every output it reads in `uses` (planning
   * checks that their producers run before it); reading another one, or one whose producer has
   * not run on this host, throws an error naming both tasks. A producer skipped by its `when`
   * gives `{ changed: false, skipped: true }`; one that failed under `ignoreErrors`, `failed: true`.
   * Handlers may read any output (they run only when notified): see `ran`.
   */
  result<T>(out: Output<T>): TaskResult<T>;
  /**
   * The value `out` carries (its producer's `data`), typed. Throws naming both tasks when the
   * producer was skipped, failed, or returned no value; in check mode, when the producer could
   * not know its value (its change was held back), the reading task reports `unknown`.
   */
  get<T>(out: Output<T>): T;
  /** Whether the producer of `out` ran on this host in this play (for handlers, and `when`). */
  ran(out: Output<unknown>): boolean;
  /** Runs a read-only probe on the host (it runs in check mode too). */
  probe: ActionContext<V>['run'];
}

/**
 * A typed handle on a task's output, in place of Ansible's string-keyed `register`: declare it
 * once, give it to the producing task's `register`, and list it in a later task's `uses`;
 * that task reads it with `get(out)` or `result(out)`. See docs/outputs.md.
 *
 *     const config = output<Rendered>('traefik config');
 *     task({ name: 'render', register: config, do: ({ vars }) => compute('render', () => render(vars)) });
 *     task({ name: 'write', uses: [config], do: ({ get }) => copy({ dest, content: get(config).text }) });
 */
export interface Output<T = unknown> {
  readonly kind: 'output';
  /** What it carries, for messages ("traefik config"). */
  readonly name: string;
  /** Type only: the value's type. */
  readonly __type?: T;
}

export function output<T = unknown>(name: string): Output<T> {
  if (!name) throw new Error('output: a name is required');
  return Object.freeze({ kind: 'output' as const, name });
}

/**
 * An action that computes a value on the control machine (render, validate) and changes
 * nothing; it runs in check mode too. Registered, its value is the task's output: later tasks
 * read it, and a bad input fails here, before any change.
 */
export function compute<T>(summary: string, fn: () => T | Promise<T>): Action<any> {
  return { module: 'compute', summary, run: async () => ({ changed: false, data: await fn() }) };
}

export type ActionSpec<V extends Vars> = Action<V> | ((env: TaskEnv<V>) => Action<V> | Promise<Action<V>>);

export interface Handler<V extends Vars = Vars> {
  readonly kind: 'handler';
  readonly name: string;
  readonly action: ActionSpec<V>;
  /** Run as root (default: the host's `become`). */
  readonly become?: boolean;
}

export interface TaskOptions<V extends Vars = Vars> {
  name: string;
  /** The module call, or a function of the host that returns it. */
  do: ActionSpec<V>;
  tags?: string[];
  /**
   * Handlers to run at the end of the play when this task changed something: the handler
   * (preferred: a typo is a compile error) or its name, as in Ansible. A name must match a
   * handler of the play's roles; planning fails before anything runs when it does not.
   */
  notify?: (Handler<V> | string)[];
  /** Skip the task unless this returns true. Probes run in check mode too. */
  when?: (env: TaskEnv<V>) => boolean | Promise<boolean>;
  /**
   * Record the task's result on each host as this output, for later tasks of the play that list
   * it in `uses` (an `output<T>()` handle; see docs/outputs.md).
   */
  register?: Output<any>;
  /**
   * The outputs this task (its `do` or its `when`) reads. Planning fails, before any host is
   * touched, when the selection (--tags, --skip-tags, --start-at-task) keeps this task but
   * leaves out a producer, or when no earlier task of the play registers it.
   */
  uses?: Output<any>[];
  /** Keep going on this host when the task fails. */
  ignoreErrors?: boolean;
  /** Run as root (default: the host's `become`). */
  become?: boolean;
}

export interface Task<V extends Vars = Vars> extends Readonly<TaskOptions<V>> {
  readonly kind: 'task';
}

export interface Role<V extends Vars = Vars> {
  readonly kind: 'role';
  readonly name: string;
  /** Every task of the role carries these tags; the role's name is always one of them. */
  readonly tags: string[];
  readonly tasks: Task<V>[];
  readonly handlers: Handler<V>[];
  /** The role's folder, for templates given by relative path. */
  readonly dir?: string;
  /** What the role needs of a host's vars: checked at planning time for every host it runs on. */
  readonly vars?: VarsSchema;
  /** Work on the vars alone, started when the run starts; see RoleOptions.prepare. */
  readonly prepare?: (vars: V) => unknown;
}

export interface Play<V extends Vars = Vars> {
  readonly kind: 'play';
  readonly name: string;
  /** A host name, a group name, or a list of them. */
  readonly hosts: string | string[];
  readonly roles: Role<V>[];
  readonly tags: string[];
  /** Run notified handlers on a host even when a later task on it failed (default true). */
  readonly forceHandlers: boolean;
  /**
   * The plays (by name, earlier in the playbook) this play waits for; it starts once each has
   * ended on all of its hosts (docs/playbooks.md, "Overlapping plays"). `[]`: at once. Absent:
   * after every earlier play, so a playbook without `after` runs strictly in order, as Ansible's.
   */
  readonly after?: readonly string[];
}

export interface Playbook<V extends Vars = Vars> {
  readonly name: string;
  readonly plays: Play<V>[];
}

export function task<V extends Vars = Vars>(opts: TaskOptions<V>): Task<V> {
  if (!opts.name) throw new Error('task: a name is required');
  if (!opts.do) throw new Error(`task "${opts.name}": "do" is required`);
  return Object.freeze({ kind: 'task' as const, ...opts });
}

export function handler<V extends Vars = Vars>(name: string, action: ActionSpec<V>, opts: { become?: boolean } = {}): Handler<V> {
  return Object.freeze({ kind: 'handler' as const, name, action, become: opts.become });
}

export interface RoleOptions<V extends Vars> {
  name: string;
  tags?: string[];
  tasks: Task<V>[];
  handlers?: Handler<V>[];
  /** Pass `import.meta.url` so templates resolve relative to the role's folder. */
  url?: string;
  /**
   * The vars the role reads, as a JSON Schema of a host's vars (or an ajv validate function),
   * e.g. `{ type: 'object', required: ['nginx'], properties: { nginx: { type: 'object', required: ['dir'] } } }`.
   * Checked when the playbook is planned, for every host the role will run on: a missing or
   * wrong var is an error naming the role, the host and the var, before any host is touched.
   */
  vars?: VarsSchema;
  /**
   * Work that needs only a host's vars, never the host (e.g. a slow key derivation), started once
   * per host the role will run on as soon as the run starts, beside the connections, so it is
   * done before the role's turn. The role's first task on that host waits for it (its time counts
   * in that task's, and a `when` that skips the task still waits); a rejection fails the host
   * there, naming the role, whatever that task's `ignoreErrors`. Called in check mode too (it
   * touches no host), and for a host even if it fails before the role's turn; not called by
   * `--list-*` or `--syntax-check`, nor for a role that `--tags`, `--skip-tags` or
   * `--start-at-task` leave without tasks. One that never settles holds its task until a second
   * Ctrl-C.
   */
  prepare?: (vars: V) => unknown;
}

export function role<V extends Vars = Vars>(opts: RoleOptions<V>): Role<V> {
  const names = new Set<string>();
  for (const t of opts.tasks) {
    if (names.has(t.name)) throw new Error(`role ${opts.name}: two tasks are named "${t.name}"`);
    names.add(t.name);
  }
  const handlers = [...(opts.handlers ?? [])];
  for (const t of opts.tasks) for (const h of t.notify ?? []) if (typeof h === 'object' && h !== null && !handlers.includes(h)) handlers.push(h);
  return Object.freeze({
    kind: 'role' as const,
    name: opts.name,
    tags: [...new Set([opts.name, ...(opts.tags ?? [])])],
    tasks: opts.tasks,
    handlers,
    dir: opts.url ? dirname(fileURLToPath(opts.url)) : undefined,
    vars: opts.vars,
    prepare: opts.prepare,
  });
}

export interface PlayOptions<V extends Vars> {
  name?: string;
  hosts: string | string[];
  roles: Role<V>[];
  tags?: string[];
  forceHandlers?: boolean;
  /** The earlier plays (by name) this play waits for; see Play.after. */
  after?: string[];
}

export function play<V extends Vars = Vars>(opts: PlayOptions<V>): Play<V> {
  if (!opts.roles.length) throw new Error(`play ${opts.name ?? opts.hosts}: no roles`);
  return Object.freeze({
    kind: 'play' as const,
    name: opts.name ?? `${opts.roles.map((r) => r.name).join(', ')} on ${[opts.hosts].flat().join(', ')}`,
    hosts: opts.hosts,
    roles: opts.roles,
    tags: opts.tags ?? [],
    forceHandlers: opts.forceHandlers ?? true,
    ...(opts.after !== undefined ? { after: Array.isArray(opts.after) ? Object.freeze([...opts.after]) : opts.after } : {}),
  });
}

export function playbook<V extends Vars = Vars>(name: string, plays: Play<V>[]): Playbook<V> {
  return { name, plays };
}
