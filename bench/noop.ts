// Workload 1 and 4: twenty no-op `true` commands on every host of the inventory.
// Same work as ansible/noop.yml. Run: npx zx bench/noop.ts --inventory lab --forks 5
// PHX_BENCH_TASKS=N changes the count (the bench uses 1 vs 20 to split per-task cost from
// startup and connection cost; the timed workloads always use 20).
import { isMain, main, play, playbook, role, shell, task } from '../runner/index.ts';

export const noopRole = role({
  name: 'noop',
  tasks: Array.from({ length: Number(process.env.PHX_BENCH_TASKS ?? 20) }, (_, i) => task({ name: `true ${i + 1}`, do: shell('true') })),
});

export const noop = playbook('bench-noop', [play({ name: 'noop', hosts: 'all', roles: [noopRole] })]);

if (isMain(import.meta.url)) await main(noop);
