// Not timed: makes the bench's directories on the guests before the file workloads
// (PHX_BENCH_PREP=setup) and removes them afterwards (PHX_BENCH_PREP=clean).
import { file, isMain, main, play, playbook, role, task } from '../runner/index.ts';

const root = '/tmp/phx-bench';
const clean = process.env.PHX_BENCH_PREP === 'clean';

export const prepRole = role({
  name: 'bench-prep',
  tasks: clean
    ? [task({ name: `remove ${root}`, do: file({ path: root, state: 'absent' }) })]
    : [root, `${root}/phoenix`, `${root}/ansible`, `${root}/pyinfra`].map((p) => task({ name: `directory ${p}`, do: file({ path: p, state: 'directory', mode: '0755' }) })),
});

export const prep = playbook('bench-prep', [play({ name: 'prep', hosts: 'all', roles: [prepRole] })]);

if (isMain(import.meta.url)) await main(prep);
