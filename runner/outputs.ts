// Typed task outputs (docs/outputs.md): what a task registers on one host, and what a later
// task of the same play reads of it. The engine keeps one HostOutputs per (play, host); planning
// (plan-check.ts, outputProblems) has already checked that every output a selected task `uses`
// is registered by an earlier selected task of its play, so the errors here are for what only
// the run can tell: a producer skipped by its `when`, failed under ignoreErrors, or returning no
// value; and a read the task did not declare in `uses` (planning could not check it).
import type { Output, TaskEnv } from './dsl.ts';
import { NotYetError, TaskError, type ActionResult, type TaskResult } from './types.ts';

export class HostOutputs {
  readonly #values = new Map<Output<any>, { task: string; result: TaskResult }>();

  private readonly host: string;
  private readonly check: boolean;
  constructor(host: string, check: boolean) {
    this.host = host;
    this.check = check;
  }

  /** Records what the task `task` registered as `out` on this host (its last run wins). */
  set(out: Output<any> | undefined, task: string, r: ActionResult | { failed: string }): void {
    if (!out) return;
    const result: TaskResult =
      'failed' in r && typeof r.failed === 'string'
        ? { changed: false, skipped: false, failed: true, msg: r.failed }
        : { changed: (r as ActionResult).changed, skipped: (r as ActionResult).skipped ?? false, failed: false, msg: (r as ActionResult).msg, data: (r as ActionResult).data };
    this.#values.set(out, { task, result });
  }

  /**
   * The reads of one task (`reader` names it and lists its `uses`), or of a handler (no
   * reader: a handler runs only when notified, so it may read any output; see `ran`).
   */
  reader(reader?: { task: string; uses?: readonly Output<any>[] }): Pick<TaskEnv, 'result' | 'get' | 'ran'> {
    const who = reader ? `task "${reader.task}"` : 'a handler';
    const declared = (out: Output<any>) => {
      if (reader && !(reader.uses ?? []).includes(out))
        throw new TaskError(`${who} reads the output "${out.name}" without listing it in its \`uses\`, so planning could not check that its producer runs first: add its handle to the task's \`uses\``);
    };
    const entry = (out: Output<any>) => {
      declared(out);
      const e = this.#values.get(out);
      if (!e) throw new TaskError(`${who} reads the output "${out.name}", which no earlier task of this play registered on host ${this.host}`);
      return e;
    };
    return {
      result: <T>(out: Output<T>) => entry(out).result as TaskResult<T>,
      get: <T>(out: Output<T>): T => {
        const { task, result: r } = entry(out);
        const both = `${who} reads the output "${out.name}" of task "${task}"`;
        if (r.skipped) throw new TaskError(`${both}, which was skipped on host ${this.host}${r.msg ? ` (${r.msg})` : ''}: it has no value`);
        if (r.failed) throw new TaskError(`${both}, which failed on host ${this.host} (ignoreErrors let the host go on): it has no value${r.msg ? `: ${r.msg}` : ''}`);
        if (r.data === undefined) {
          // Check mode: the producer's change was held back, so its value cannot be known.
          if (this.check && r.changed === 'unknown') throw new NotYetError(`${both}, whose value is not known in check mode`);
          throw new TaskError(`${both}, which returned no value on host ${this.host}`);
        }
        return r.data as T;
      },
      ran: (out) => {
        declared(out);
        return this.#values.has(out);
      },
    };
  }
}
