// `npm run bench:site`: issue 9's fourth target, a full `site.ts` run that changes nothing on
// the five lab guests, through `npx phoenix site` (what the README types) and `node --import=phoenix/boot`,
// cold (connecting) and warm (--agent: issue 18's target).
// Whole-process wall time (medians of BENCH_SITE_RUNS, default 5, alternating the four, after
// one untimed warm-up that also proves there is nothing left to change), and where the time
// goes, from each run's --json: start-up (wall minus the run's own duration), each play (its
// slowest host, when it started and ended: plays overlap as their `after` allows), and the
// slowest tasks. Run it under the lab lock (`flock -o /tmp/phoenix-lab.lock npm run bench:site`).
// Needs the lab up with site applied (the quick start). Writes bench/SITE.md; on demand only.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const RUNS = Number(process.env.BENCH_SITE_RUNS ?? 5);
const OUT = resolve(ROOT, process.env.BENCH_SITE_OUT ?? 'bench/SITE.md');
const work = mkdtempSync(join(tmpdir(), 'phx-bench-site-'));

interface Task {
  task: string;
  role: string;
  module: string;
  status: string;
  durationMs: number;
}
interface Report {
  durationMs: number;
  startedAt: string;
  plays: { play: string; startedAt?: string; endedAt?: string; hosts: Record<string, { tasks: Task[] }> }[];
  recap: Record<string, { changed: number; failed: number; unreachable: number }>;
}
interface Sample {
  via: string;
  wall: number;
  run: number;
  load: number;
  report: Report;
}

// Cold: every run connects. Warm: the agent (docs/agent.md) keeps the connections between runs
// (issue 18's target is the warm one); a bench-private agent directory, stopped at the end.
const AGENT_DIR = join(work, 'agent');
const warm = { PHOENIX_AGENT_DIR: AGENT_DIR };
const VIA: Record<string, { argv: string[]; env: Record<string, string> }> = {
  'npx phoenix site': { argv: ['npx', 'phoenix', 'site'], env: {} },
  'node --import=phoenix/boot': { argv: ['node', '--import=phoenix/boot', 'playbooks/site.ts'], env: { NODE_OPTIONS: '' } },
  'npx phoenix site --agent (warm)': { argv: ['npx', 'phoenix', 'site', '--agent'], env: warm },
  'node --import=phoenix/boot --agent (warm)': { argv: ['node', '--import=phoenix/boot', 'playbooks/site.ts', '--agent'], env: { NODE_OPTIONS: '', ...warm } },
};

function once(via: string, n: number): Sample {
  const json = join(work, `${via.replace(/\W+/g, '-')}-${n}.json`);
  const v = VIA[via]!;
  const load = loadavg()[0]!;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(v.argv[0]!, [...v.argv.slice(1), '--inventory', 'lab', '--plain', '--json', json], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...v.env },
    encoding: 'utf8',
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${via}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
  const changed = Object.values(report.recap).reduce((a, h) => a + h.changed, 0);
  if (changed) throw new Error(`${via}: the run changed ${changed} thing(s): not a no-change run (apply site first)\n${r.stdout}`);
  process.stderr.write(`[bench:site] ${via} #${n}: ${wall.toFixed(2)} s (run ${(report.durationMs / 1000).toFixed(2)} s, load ${load.toFixed(2)})\n`);
  return { via, wall, run: report.durationMs / 1000, load, report };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

once('npx phoenix site', 0); // warm-up: caches, and proof there is nothing to change
once('npx phoenix site --agent (warm)', 0); // starts the agent: the warm runs reuse its connections
const samples: Sample[] = [];
try {
  for (let i = 1; i <= RUNS; i++) for (const via of Object.keys(VIA)) samples.push(once(via, i));
} finally {
  spawnSync('npx', ['phoenix', 'agent', 'stop'], { cwd: ROOT, env: { ...process.env, ...warm }, encoding: 'utf8' });
}

// Where the time goes, over every timed run: per play its slowest host's task time, when it
// started and ended (plays overlap as their `after` allows); per task its time.
const plays = new Map<string, number[]>();
const spans = new Map<string, [number, number][]>();
for (const s of samples) {
  const t0 = Date.parse(s.report.startedAt);
  for (const p of s.report.plays) if (p.startedAt && p.endedAt) spans.set(p.play, [...(spans.get(p.play) ?? []), [Date.parse(p.startedAt) - t0, Date.parse(p.endedAt) - t0]]);
}
const tasks = new Map<string, number[]>();
for (const s of samples) {
  for (const p of s.report.plays) {
    let slowest = 0;
    for (const [host, h] of Object.entries(p.hosts)) {
      slowest = Math.max(slowest, h.tasks.reduce((a, t) => a + t.durationMs, 0));
      for (const t of h.tasks) {
        const k = `${host} | ${t.role} | ${t.task} (${t.module})`;
        tasks.set(k, [...(tasks.get(k) ?? []), t.durationMs]);
      }
    }
    plays.set(p.play, [...(plays.get(p.play) ?? []), slowest]);
  }
}

const lines: string[] = [];
const f = (x: number) => x.toFixed(2);
lines.push('# phoenix: a full site.ts run that changes nothing (issue 9, fourth target; issue 18: warm, <= 2.0 s)', '');
lines.push('Generated by `npm run bench:site` (bench/site.ts). Do not edit by hand; the analysis is in bench/ANALYSIS.md.', '');
lines.push(
  `- date: ${new Date().toISOString()}; cpu: ${cpus()[0]?.model ?? '?'} x${cpus().length}; node ${process.version}; commit ${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()}`,
);
lines.push(`- target: the five lab guests (\`--inventory lab\`), site already applied: every timed run reported 0 changed; ${RUNS} timed runs each, alternating, after one warm-up (and one that starts the agent).`);
lines.push(`- 1-minute load average during the runs: ${f(Math.min(...samples.map((s) => s.load)))}–${f(Math.max(...samples.map((s) => s.load)))}.`, '');
lines.push('| via | median wall | median run (inside the process) | start-up (wall − run) | runs (s) |', '|---|---:|---:|---:|---|');
for (const via of Object.keys(VIA)) {
  const ss = samples.filter((s) => s.via === via);
  lines.push(`| ${via} | ${f(median(ss.map((s) => s.wall)))} s | ${f(median(ss.map((s) => s.run)))} s | ${f(median(ss.map((s) => s.wall - s.run)))} s | ${ss.map((s) => f(s.wall)).join(', ')} |`);
}
lines.push(
  '',
  '## Per play (medians over all timed runs: the slowest host\'s task time, and when the play started and ended, ms from the start of the run)',
  '',
  'Plays overlap as their `after` allows (playbooks/site.ts), so the run is the longest chain of plays, not their sum.',
  '',
  '| play | slowest host | started | ended |',
  '|---|---:|---:|---:|',
);
for (const [p, xs] of plays) {
  const sp = spans.get(p) ?? [];
  lines.push(`| ${p} | ${Math.round(median(xs))} ms | ${sp.length ? Math.round(median(sp.map((x) => x[0]))) : '?'} | ${sp.length ? Math.round(median(sp.map((x) => x[1]))) : '?'} |`);
}
lines.push('');
lines.push('## The slowest tasks (median ms; a host\'s first task in a run also pays for its connection)', '', '| host \\| role \\| task (module) | median |', '|---|---:|');
for (const [k, xs] of [...tasks].sort((a, b) => median(b[1]) - median(a[1])).slice(0, 25)) lines.push(`| ${k.replace(/\|/g, '\\|')} | ${Math.round(median(xs))} ms |`);
const all = [...tasks.values()].map(median);
lines.push('', `${tasks.size} task results per run; their median ${Math.round(median(all))} ms; ${all.filter((x) => x < 20).length} under 20 ms.`, '');
writeFileSync(OUT, lines.join('\n'));
rmSync(work, { recursive: true, force: true });
process.stderr.write(`[bench:site] wrote ${OUT}\n`);
