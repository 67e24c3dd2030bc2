// Workloads 2 and 3: ten copy and ten template tasks, content rendered from vars.
// Same work as ansible/files.yml. The run id (PHX_BENCH_RUN, Ansible: -e run_id=...) goes
// into every file: the same id twice makes the second run a no-op (workload 2), a new id
// changes all twenty files (workload 3). The destination directory is made by prep.ts.
import { copy, isMain, main, play, playbook, role, task, template } from '../runner/index.ts';

const runId = process.env.PHX_BENCH_RUN ?? 'steady';
const dir = process.env.PHX_BENCH_DIR ?? '/tmp/phx-bench/phoenix';
const items = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];

const copies = Array.from({ length: 10 }, (_, k) => {
  const i = k + 1;
  return task({
    name: `copy ${i}`,
    do: ({ host }) => copy({ dest: `${dir}/copy-${i}.txt`, content: `# bench copy ${i}\nhost = ${host.name}\nrun = ${runId}\n`, mode: '0644' }),
  });
});

const templates = Array.from({ length: 10 }, (_, k) => {
  const i = k + 1;
  return task({
    name: `template ${i}`,
    do: ({ host }) => template({ src: 'bench.conf.hbs', dest: `${dir}/template-${i}.conf`, vars: { index: i, host: host.name, run: runId, items }, mode: '0644' }),
  });
});

export const filesRole = role({ name: 'files', url: import.meta.url, tasks: [...copies, ...templates] });

export const files = playbook('bench-files', [play({ name: 'files', hosts: 'all', roles: [filesRole] })]);

if (isMain(import.meta.url)) await main(files);
