// Selection is resolved before anything runs: --tags, --skip-tags and --limit become a
// fixed plan of (play, hosts, tasks). Unknown tags and hosts are errors, never no-ops.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Play, Playbook, Role, Task } from './dsl.ts';
import type { Host, ResolvedInventory, Vars } from './inventory.ts';
import { checkPlan, outputSelectionProblems } from './plan-check.ts';

export class SelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectionError';
  }
}

export interface PlannedTask<V extends Vars = Vars> {
  role: Role<V>;
  task: Task<V>;
  tags: string[];
}

export interface PlannedPlay<V extends Vars = Vars> {
  play: Play<V>;
  hosts: Host<V>[];
  tasks: PlannedTask<V>[];
  /** The play's position in the playbook (default: its position in the plan). */
  index?: number;
  /**
   * The planned plays (their `index`) this one waits for: its `after`, or every earlier play when
   * it declares none, followed through the plays the selection left out. Default: every earlier
   * play of the plan (strictly in order).
   */
  after?: number[];
}

export interface Selection {
  tags?: string[];
  skipTags?: string[];
  /** Host patterns (Ansible's: globs, `!`, `&`, `:`, `@file`). */
  limit?: string[];
  /** Start at the first selected task of this name ("task" or "role : task"), as Ansible's --start-at-task (applied by startAt()). */
  startAtTask?: string;
}

/** A task tagged "always" runs unless skipped by name, as in Ansible. */
export const ALWAYS = 'always';

export function allTags(pb: Playbook<any>): string[] {
  const tags = new Set<string>();
  for (const p of pb.plays) {
    p.tags.forEach((t) => tags.add(t));
    for (const r of p.roles) {
      r.tags.forEach((t) => tags.add(t));
      for (const t of r.tasks) (t.tags ?? []).forEach((x) => tags.add(x));
    }
  }
  return [...tags].sort();
}

function knownNames(inv: ResolvedInventory<any>): string[] {
  return [...inv.hosts.keys(), ...[...inv.groups.keys()].filter((g) => g !== 'all')];
}

function expand(inv: ResolvedInventory<any>, names: string[], what: string): string[] {
  const out: string[] = [];
  for (const n of names) {
    if (inv.hosts.has(n)) out.push(n);
    else if (inv.groups.has(n)) out.push(...inv.groups.get(n)!);
    else throw new SelectionError(`${what}: "${n}" is neither a host nor a group of inventory ${inv.source} (known: ${knownNames(inv).join(', ')})`);
  }
  return [...new Set(out)];
}

const GLOB = /[*?[]/;

/** fnmatch as Ansible uses it for host patterns: *, ? and [...] classes, whole name. */
function globRe(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end);
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The hosts one pattern names: a host, a group, a glob over both (`vm*`), or `~regex`. */
function matchOne(inv: ResolvedInventory<any>, pat: string, what: string): string[] {
  if (!GLOB.test(pat) && !pat.startsWith('~')) return expand(inv, [pat], what);
  const re = pat.startsWith('~') ? new RegExp(pat.slice(1)) : globRe(pat);
  const out = new Set<string>();
  for (const h of inv.hosts.keys()) if (re.test(h)) out.add(h);
  // The implicit group "all" is left out of globs and regexes: `al*` means hosts named al*.
  for (const [g, members] of inv.groups) if (g !== 'all' && re.test(g)) members.forEach((m) => out.add(m));
  if (!out.size) throw new SelectionError(`${what}: pattern "${pat}" matches no host or group of inventory ${inv.source} (known: ${knownNames(inv).join(', ')})`);
  return [...out];
}

/**
 * Ansible's host patterns: `a:b` or `a,b` union, `a:&b` intersection, `a:!b` exclusion, globs
 * (`vm*`) and `~regex`; `@file` reads one pattern per line. As in Ansible, the plain patterns
 * are united first, then the `&` ones intersect, then the `!` ones remove (whatever their
 * order); with no plain pattern the start is every host. The result keeps inventory order.
 */
export function matchHosts(inv: ResolvedInventory<any>, patterns: string[], what = '--limit'): string[] {
  const parts: string[] = [];
  for (const p of patterns) {
    if (p.startsWith('@')) {
      const file = resolve(p.slice(1));
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new SelectionError(`${what} ${p}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      parts.push(...text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
    } else parts.push(...p.split(/[,:]/).map((x) => x.trim()).filter(Boolean));
  }
  const plain = parts.filter((x) => !x.startsWith('&') && !x.startsWith('!'));
  let set = new Set<string>(plain.length ? plain.flatMap((x) => matchOne(inv, x, what)) : inv.hosts.keys());
  for (const x of parts.filter((x) => x.startsWith('&'))) {
    const keep = new Set(matchOne(inv, x.slice(1), what));
    set = new Set([...set].filter((h) => keep.has(h)));
  }
  for (const x of parts.filter((x) => x.startsWith('!'))) for (const h of matchOne(inv, x.slice(1), what)) set.delete(h);
  return [...inv.hosts.keys()].filter((h) => set.has(h));
}

/** "role : task", as --list-tasks prints it and --start-at-task accepts it. */
export const taskLabel = (t: PlannedTask<any>) => `${t.role.name} : ${t.task.name}`;

export function resolvePlan<V extends Vars>(pb: Playbook<V>, inv: ResolvedInventory<V>, sel: Selection = {}): PlannedPlay<V>[] {
  const known = new Set(allTags(pb));
  for (const [flag, list] of [['--tags', sel.tags], ['--skip-tags', sel.skipTags]] as const) {
    for (const t of list ?? []) {
      if (t !== ALWAYS && !known.has(t))
        throw new SelectionError(`${flag}: unknown tag "${t}" (playbook ${pb.name} has: ${[...known].join(', ') || 'no tags'})`);
    }
  }
  const limit = sel.limit?.length ? new Set(matchHosts(inv, sel.limit, '--limit')) : undefined;
  const plan: PlannedPlay<V>[] = [];
  let anyHost = false;
  for (const p of pb.plays) {
    const names = matchHosts(inv, [p.hosts].flat(), `play "${p.name}"`);
    const chosen = names.filter((n) => !limit || limit.has(n));
    if (chosen.length) anyHost = true;
    const tasks: PlannedTask<V>[] = [];
    for (const r of p.roles) {
      for (const t of r.tasks) {
        const tags = [...new Set([...p.tags, ...r.tags, ...(t.tags ?? [])])];
        const wanted = !sel.tags?.length || tags.includes(ALWAYS) || sel.tags.some((x) => tags.includes(x));
        const skipped = sel.skipTags?.some((x) => tags.includes(x)) ?? false;
        if (wanted && !skipped) tasks.push({ role: r, task: t, tags });
      }
    }
    if (chosen.length && tasks.length) plan.push({ play: p, hosts: chosen.map((n) => inv.hosts.get(n)!), tasks, index: pb.plays.indexOf(p) });
  }
  const waits = waitsFor(pb, new Set(plan.map((pp) => pp.index!)));
  for (const pp of plan) pp.after = waits(pp.index!);
  if (limit && !anyHost) throw new SelectionError(`--limit ${sel.limit!.join(',')}: matches no host that playbook ${pb.name} targets`);
  // Module arguments, handler names and roles' vars, before any host is touched.
  return checkPlan(pb, plan, sel);
}

/**
 * What each play waits for among the planned ones (`planned`: indexes into pb.plays): its
 * `after` (absent: every earlier play), and through a play left out of the plan (no selected
 * task or host) what that play waits for, so --tags/--limit keep the order of what remains.
 * Names that are unknown or not earlier are left out here; checkPlan reports them.
 */
export function waitsFor(pb: Playbook<any>, planned: ReadonlySet<number>): (i: number) => number[] {
  const memo = new Map<number, number[]>();
  const direct = (i: number): number[] => {
    const after = pb.plays[i]!.after;
    if (after === undefined) return [...Array(i).keys()];
    if (!Array.isArray(after)) return [];
    return after.map((n) => pb.plays.findIndex((x) => x.name === n)).filter((j) => j >= 0 && j < i);
  };
  const of = (i: number): number[] => {
    let out = memo.get(i);
    if (out) return out;
    const set = new Set<number>();
    for (const d of direct(i)) {
      if (planned.has(d)) set.add(d);
      else for (const x of of(d)) set.add(x);
    }
    out = [...set].sort((a, b) => a - b);
    memo.set(i, out);
    return out;
  };
  return of;
}

/**
 * --start-at-task: drops the tasks (and plays) before the first task named `name` ("task" or
 * "role : task"); an unknown name is an error listing the names. Applied to a resolved (and
 * checked) plan, so every task's arguments are still checked, as Ansible parses the whole playbook.
 */
export function startAt<V extends Vars>(plan: PlannedPlay<V>[], name: string | undefined, pbName: string): PlannedPlay<V>[] {
  if (name === undefined) return plan;
  const want = name.trim();
  const pi = plan.findIndex((pp) => pp.tasks.some((t) => t.task.name === want || taskLabel(t) === want));
  if (pi < 0) {
    const names = [...new Set(plan.flatMap((pp) => pp.tasks.map(taskLabel)))];
    throw new SelectionError(
      `--start-at-task: no selected task is named "${want}" in playbook ${pbName} (tasks: ${names.map((n) => `"${n}"`).join(', ') || 'none'})`,
    );
  }
  const first = plan[pi]!;
  const ti = first.tasks.findIndex((t) => t.task.name === want || taskLabel(t) === want);
  const out = [{ ...first, tasks: first.tasks.slice(ti) }, ...plan.slice(pi + 1)];
  // A kept task that reads the output of one this skips (docs/outputs.md).
  const problems = outputSelectionProblems(out, { startAtTask: want });
  if (problems.length)
    throw new SelectionError(
      `playbook ${pbName}: ${problems.length} problem${problems.length > 1 ? 's' : ''} found before contacting any host; nothing ran:\n  - ${problems.join('\n  - ')}`,
    );
  return out;
}
