// What planning checks before any host is contacted (also for --list-tasks and --check):
//   - every module call written directly in a task or handler (`do: file({...})`) has valid
//     arguments (runner/modules/args.ts); calls built by `do: ({ vars }) => ...` are checked
//     when the task runs, before the module does anything;
//   - every handler a task notifies by name is a handler of the play (names become handlers);
//   - every role's `vars` schema holds for every host the role will run on;
//   - every play's `after` names earlier plays of the playbook, each by a unique name (so the
//     plays can never wait for each other in a cycle).
//   - every output a task `uses` is registered by an earlier task of its play, and that task is
//     selected whenever the reader is (--tags, --skip-tags; --start-at-task in startAt()).
// All problems are reported at once, each naming the play, the role and the task or host.
import type { Handler, Output, Play, Playbook, Role, Task, TaskOptions } from './dsl.ts';
import type { Vars } from './inventory.ts';
import { argumentErrorOf, didYouMean } from './modules/args.ts';
import { ALWAYS, SelectionError, type PlannedPlay, type Selection } from './selection.ts';
import { varsProblems } from './vars-schema.ts';

/** Every handler of a play's roles, by name (the first one of a name wins). */
function handlersOf(p: Play<any>): Map<string, Handler<any>> {
  const m = new Map<string, Handler<any>>();
  for (const r of p.roles) for (const h of r.handlers) if (h?.kind === 'handler' && !m.has(h.name)) m.set(h.name, h);
  return m;
}

/**
 * What task({...}) takes: anything else is a typo that would be ignored silently. A Record over
 * TaskOptions' keys, so tsc fails here when TaskOptions gains an option this list lacks.
 */
const TASK_OPTION_KEYS: Record<keyof Required<TaskOptions<any>>, true> = {
  name: true,
  do: true,
  tags: true,
  notify: true,
  when: true,
  register: true,
  uses: true,
  ignoreErrors: true,
  become: true,
};
const TASK_OPTIONS = Object.keys(TASK_OPTION_KEYS);

function taskOptionProblems(t: Task<any>, where: string): string[] {
  const out: string[] = [];
  for (const k of Object.keys(t)) {
    if (k === 'kind' || TASK_OPTIONS.includes(k)) continue;
    const guess = didYouMean(k, TASK_OPTIONS);
    out.push(`${where}: unknown task option "${k}"${guess ? ` — did you mean "${guess}"?` : ` (known: ${TASK_OPTIONS.join(', ')})`}`);
  }
  const isOutput = (o: unknown) => (o as Output | undefined)?.kind === 'output';
  if (t.register !== undefined && !isOutput(t.register))
    out.push(
      `${where}: register must be an output handle (\`const x = output<T>('what it carries')\`, then \`register: x\`), not ${typeof t.register === 'string' ? `the string "${t.register}"` : typeof t.register}: see docs/outputs.md`,
    );
  if (t.uses !== undefined && !Array.isArray(t.uses)) out.push(`${where}: uses must be a list of output handles`);
  else
    (t.uses ?? []).forEach((o, i) => {
      if (!isOutput(o)) out.push(`${where}: uses[${i}] is ${o === undefined ? 'undefined (an output imported under a wrong name?)' : typeof o === 'string' ? `the string "${o}"` : 'not an output'}: give the handle from output<T>()`);
    });
  if (t.notify !== undefined && !Array.isArray(t.notify)) out.push(`${where}: notify must be a list of handlers or handler names`);
  else
    (t.notify ?? []).forEach((h, i) => {
      if (typeof h !== 'string' && (h as Handler<any> | undefined)?.kind !== 'handler')
        out.push(`${where}: notify[${i}] is ${h === undefined ? 'undefined (a handler imported under a wrong name?)' : 'not a handler'}: give a handler or a handler's name`);
    });
  return out;
}

/** The task with its notify names replaced by the play's handlers (problems for unknown names). */
function resolveNotify<V extends Vars>(t: Task<V>, handlers: Map<string, Handler<any>>, where: string, problems: string[]): Task<V> {
  if (!t.notify?.some((h) => typeof h === 'string')) return t;
  const notify: Handler<V>[] = [];
  for (const h of t.notify) {
    if (typeof h !== 'string') notify.push(h);
    else if (handlers.has(h)) notify.push(handlers.get(h)!);
    else {
      const names = [...handlers.keys()];
      problems.push(`${where}: notify "${h}" matches no handler of the play (${names.length ? `handlers: ${names.map((n) => `"${n}"`).join(', ')}` : 'it has no handlers'})`);
    }
  }
  return Object.freeze({ ...t, notify });
}

/** A play's `after`: names of earlier plays, each unique; a later one (or a cycle) is refused, naming the play. */
export function afterProblems(pb: Playbook<any>): string[] {
  const out: string[] = [];
  const at = new Map<string, number[]>();
  pb.plays.forEach((p, i) => at.set(p.name, [...(at.get(p.name) ?? []), i]));
  const names = [...at.keys()];
  // Who play i waits for (declared, or every earlier play): for naming a cycle.
  const deps = (i: number): number[] => {
    const a = pb.plays[i]!.after;
    if (a === undefined) return [...Array(i).keys()];
    return Array.isArray(a) ? a.flatMap((n) => at.get(n) ?? []) : [];
  };
  const cycle = (from: number, to: number): number[] | undefined => {
    // A path of waits from `from` back to `to`, if any (depth first, each play once).
    const seen = new Set<number>();
    const walk = (i: number, path: number[]): number[] | undefined => {
      if (i === to) return path;
      if (seen.has(i)) return undefined;
      seen.add(i);
      for (const d of deps(i)) {
        const p = walk(d, [...path, d]);
        if (p) return p;
      }
      return undefined;
    };
    return walk(from, [from]);
  };
  pb.plays.forEach((p, i) => {
    if (p.after === undefined) return;
    const where = `play "${p.name}"`;
    if (!Array.isArray(p.after) || p.after.some((n) => typeof n !== 'string')) {
      out.push(`${where}: after must be a list of play names`);
      return;
    }
    for (const n of p.after) {
      const js = at.get(n);
      if (!js) {
        const guess = didYouMean(n, names);
        out.push(`${where}: after "${n}" names no play of the playbook${guess ? ` — did you mean "${guess}"?` : ''} (plays: ${names.map((x) => `"${x}"`).join(', ')})`);
      } else if (js.length > 1) out.push(`${where}: after "${n}" is ambiguous: ${js.length} plays are named so (a play that others wait for needs a unique name)`);
      else if (js[0] === i) out.push(`${where}: after "${n}": a play cannot wait for itself`);
      else if (js[0]! > i) {
        const loop = cycle(js[0]!, i);
        out.push(
          `${where}: after "${n}": that play comes later in the playbook; a play may wait only for earlier plays` +
            (loop ? ` (here the plays would wait for each other in a cycle: ${[i, ...loop].map((k) => `"${pb.plays[k]!.name}"`).join(' → ')})` : ''),
        );
      }
    }
  });
  return out;
}

/**
 * Checks the playbook and its plan (see the top of this file); returns the plan with handler
 * names resolved. Throws a SelectionError (exit 4: nothing ran) listing every problem.
 */
export function checkPlan<V extends Vars>(pb: Playbook<V>, plan: PlannedPlay<V>[], sel: Selection = {}): PlannedPlay<V>[] {
  const problems: string[] = afterProblems(pb);
  for (const p of pb.plays) problems.push(...outputShapeProblems(p));
  problems.push(...outputSelectionProblems(plan, { tags: sel.tags, skipTags: sel.skipTags }));
  const resolved = new Map<Task<V>, Task<V>>();
  for (const p of pb.plays) {
    const handlers = handlersOf(p);
    for (const r of p.roles) {
      for (const t of r.tasks) {
        const where = `play "${p.name}", role ${r.name}, task "${t.name}"`;
        const bad = argumentErrorOf(t.do);
        if (bad) problems.push(`${where}: ${bad.message}`);
        const own = taskOptionProblems(t, where);
        problems.push(...own);
        if (!own.length) resolved.set(t, resolveNotify(t, handlers, where, problems));
      }
      for (const [i, h] of r.handlers.entries()) {
        if (h?.kind !== 'handler') {
          problems.push(`play "${p.name}", role ${r.name}: handlers[${i}] is ${h === undefined ? 'undefined (a handler imported under a wrong name?)' : 'not a handler'}`);
          continue;
        }
        const bad = argumentErrorOf(h.action);
        if (bad) problems.push(`play "${p.name}", role ${r.name}, handler "${h.name}": ${bad.message}`);
      }
    }
  }
  for (const pp of plan) {
    const roles = [...new Set(pp.tasks.map((t) => t.role))];
    for (const r of roles) {
      if (!r.vars) continue;
      for (const h of pp.hosts) {
        for (const msg of varsProblems(r.vars, h.vars)) problems.push(`play "${pp.play.name}", role ${r.name}, host ${h.name}: ${msg}`);
      }
    }
  }
  if (problems.length)
    throw new SelectionError(
      `playbook ${pb.name}: ${problems.length} problem${problems.length > 1 ? 's' : ''} found before contacting any host; nothing ran:\n  - ${problems.join('\n  - ')}`,
    );
  return plan.map((pp) => ({ ...pp, tasks: pp.tasks.map((pt) => ({ ...pt, task: resolved.get(pt.task) ?? pt.task })) }));
}

/** Every task of a play in run order, with the tags resolvePlan gives it. */
function tasksOf(p: Play<any>): { role: Role<any>; task: Task<any>; tags: string[] }[] {
  return p.roles.flatMap((r) => r.tasks.filter((t) => t?.kind === 'task').map((t) => ({ role: r, task: t, tags: [...new Set([...p.tags, ...r.tags, ...(t.tags ?? [])])] })));
}

const quote = (t: Task<any>) => `"${t.name}"`;

/**
 * The play's own shape: every output a task uses is registered by an earlier task of the same
 * play (outputs live per play and host, as the engine keeps them).
 */
function outputShapeProblems(p: Play<any>): string[] {
  const out: string[] = [];
  const all = tasksOf(p);
  all.forEach(({ role, task: t }, i) => {
    for (const o of Array.isArray(t.uses) ? t.uses : []) {
      if (o?.kind !== 'output') continue; // reported by taskOptionProblems
      const producers = all.filter((x) => x.task.register === o);
      if (producers.some((x) => all.indexOf(x) < i)) continue;
      const where = `play "${p.name}", role ${role.name}, task "${t.name}"`;
      out.push(
        producers.length
          ? `${where} reads the output "${o.name}" of task ${quote(producers[0]!.task)}, which runs after it: move the reader after it`
          : `${where} reads the output "${o.name}", which no task of the play registers (outputs are kept per play: register it in this play)`,
      );
    }
  });
  return out;
}

/**
 * The selection's: a selected task whose `uses` names an output whose producer the selection
 * left out. Ansible gives such a task an undefined variable at run time; here it is an error
 * naming both tasks, the play and what left the producer out, before any host is touched.
 */
export function outputSelectionProblems(plan: PlannedPlay<any>[], sel: Selection): string[] {
  const out: string[] = [];
  const key = (role: Role<any>, t: Task<any>) => `${role.name}\u0000${t.name}`;
  for (const pp of plan) {
    const all = tasksOf(pp.play);
    const selected = new Set(pp.tasks.map((x) => key(x.role, x.task)));
    for (const { role, task: t } of pp.tasks) {
      for (const o of Array.isArray(t.uses) ? t.uses : []) {
        if (o?.kind !== 'output') continue;
        const i = all.findIndex((x) => x.role === role && x.task.name === t.name);
        const producers = all.filter((x, j) => j < i && x.task.register === o);
        if (!producers.length || producers.some((x) => selected.has(key(x.role, x.task)))) continue;
        const p = producers[producers.length - 1]!;
        out.push(`play "${pp.play.name}": task "${t.name}" (role ${role.name}) reads the output "${o.name}" of task "${p.task.name}" (role ${p.role.name}), which ${why(p.tags, sel, p.task.name)}`);
      }
    }
  }
  return out;
}

function why(tags: string[], sel: Selection, producer: string): string {
  const own = tags.filter((x) => x !== ALWAYS);
  if (sel.tags?.length && !tags.includes(ALWAYS) && !sel.tags.some((x) => tags.includes(x)))
    return `--tags ${sel.tags.join(',')} leaves out; add one of its tags (${own.join(', ')}) to --tags`;
  const skipped = sel.skipTags?.filter((x) => tags.includes(x)) ?? [];
  if (skipped.length) return `--skip-tags ${skipped.join(',')} leaves out; skip the reader too, or do not skip its producer`;
  if (sel.startAtTask !== undefined) return `--start-at-task "${sel.startAtTask}" skips (it runs before); start at "${producer}" or earlier`;
  return 'the selection leaves out';
}
