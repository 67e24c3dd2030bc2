// Selection is resolved before anything runs: --tags, --skip-tags and --limit become a
// fixed plan of (play, hosts, tasks). Unknown tags and hosts are errors, never no-ops.
import type { Play, Playbook, Role, Task } from './dsl.ts';
import type { Host, ResolvedInventory, Vars } from './inventory.ts';
import { checkPlan } from './plan-check.ts';

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
}

export interface Selection {
  tags?: string[];
  skipTags?: string[];
  limit?: string[];
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

function expand(inv: ResolvedInventory<any>, names: string[], what: string): string[] {
  const out: string[] = [];
  for (const n of names) {
    if (inv.hosts.has(n)) out.push(n);
    else if (inv.groups.has(n)) out.push(...inv.groups.get(n)!);
    else {
      const known = [...inv.hosts.keys(), ...[...inv.groups.keys()].filter((g) => g !== 'all')];
      throw new SelectionError(`${what}: "${n}" is neither a host nor a group of inventory ${inv.source} (known: ${known.join(', ')})`);
    }
  }
  return [...new Set(out)];
}

export function resolvePlan<V extends Vars>(pb: Playbook<V>, inv: ResolvedInventory<V>, sel: Selection = {}): PlannedPlay<V>[] {
  const known = new Set(allTags(pb));
  for (const [flag, list] of [['--tags', sel.tags], ['--skip-tags', sel.skipTags]] as const) {
    for (const t of list ?? []) {
      if (t !== ALWAYS && !known.has(t))
        throw new SelectionError(`${flag}: unknown tag "${t}" (playbook ${pb.name} has: ${[...known].join(', ') || 'no tags'})`);
    }
  }
  const limit = sel.limit?.length ? new Set(expand(inv, sel.limit, '--limit')) : undefined;
  const plan: PlannedPlay<V>[] = [];
  let anyHost = false;
  for (const p of pb.plays) {
    const names = expand(inv, [p.hosts].flat(), `play "${p.name}"`);
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
    if (chosen.length && tasks.length) plan.push({ play: p, hosts: chosen.map((n) => inv.hosts.get(n)!), tasks });
  }
  if (limit && !anyHost) throw new SelectionError(`--limit ${sel.limit!.join(',')}: matches no host that playbook ${pb.name} targets`);
  // Module arguments, handler names and roles' vars, before any host is touched.
  return checkPlan(pb, plan);
}
