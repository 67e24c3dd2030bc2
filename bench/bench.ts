// `npm run bench`: the same workloads through `ansible-playbook` and through phoenix
// (`npx zx` and `node --import=tsx`), alternating A B C A B C, whole-process wall time and
// peak RSS of each run, medians and ratios, written to bench/RESULTS.md with the raw figures.
//
// Environment (all optional):
//   BENCH_RUNS=5            timed runs per tool for workloads 1-3
//   BENCH_SCALE_RUNS=3      timed runs per tool for each scale size, or one count per size: 3,3,1
//   BENCH_SCALE_WARMUP=1    warm-up runs per tool per scale size (default BENCH_WARMUP)
//   BENCH_SCALE=5,50,200    host counts of the scale workload (loopback sshd servers)
//   BENCH_WARMUP=1          untimed runs per tool before each workload (workload 2 needs >= 1)
//   BENCH_ONLY=lab|scale    run only the lab workloads (1-3) or only the scale workload (4);
//   BENCH_ONLY=report       measure nothing, re-render RESULTS.md from RESULTS.json
//   BENCH_TOOLS=ansible,zx,tsx
//   BENCH_SPLIT_RUNS=3      runs of each phoenix breakdown probe (list-tasks, 1 task, 20 tasks)
//   BENCH_OUT=bench/RESULTS.md   (the raw samples also go to the same name with .json)
// With BENCH_ONLY, the other part's figures are kept from the previous RESULTS .json, so the
// lab part and the scale part can be measured at different times; each row says when.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, 'bench');
const WORK = join(BENCH, '.work');
const LAB_JSON = join(ROOT, '.lab/lab.json');
const CP_DIR = '/tmp/phx-bench-cp'; // ansible.cfg control_path_dir
const TIME = '/usr/bin/time';

const int = (name: string, dflt: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: expected a whole number, got "${v}"`);
  return n;
};
const RUNS = int('BENCH_RUNS', 5);
const SCALE = (process.env.BENCH_SCALE ?? '5,50,200').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
/** One count for every size, or one per size ("3,3,1" with BENCH_SCALE=5,50,200). */
const SCALE_RUNS = (process.env.BENCH_SCALE_RUNS ?? '3').split(',').map((s) => Number(s.trim()));
const scaleRuns = (i: number) => SCALE_RUNS[Math.min(i, SCALE_RUNS.length - 1)]!;
const SCALE_WARMUP = int('BENCH_SCALE_WARMUP', int('BENCH_WARMUP', 1));
const WARMUP = int('BENCH_WARMUP', 1);
const SPLIT_RUNS = int('BENCH_SPLIT_RUNS', 3);
const ONLY = process.env.BENCH_ONLY ?? '';
const TOOLS = (process.env.BENCH_TOOLS ?? 'ansible,zx,tsx').split(',').map((s) => s.trim()) as ToolId[];
const OUT = resolve(ROOT, process.env.BENCH_OUT ?? 'bench/RESULTS.md');
/** Every child is bounded: a run that takes longer than this is killed and reported. */
const RUN_TIMEOUT_MS = int('BENCH_RUN_TIMEOUT', 1800) * 1000;

type ToolId = 'ansible' | 'zx' | 'tsx';
const TOOL_LABEL: Record<ToolId, string> = { ansible: 'ansible-playbook', zx: 'phoenix (npx zx)', tsx: 'phoenix (node --import=tsx)' };

type WorkloadId = 'noop' | 'files-steady' | 'files-changed';

interface Target {
  label: string;
  hosts: string[];
  phoenixInventory: string;
  ansibleInventory: string;
}

interface Sample {
  workload: string;
  target: string;
  hosts: number;
  tool: ToolId;
  round: number; // -1 = warm-up (not in the medians)
  at: string; // ISO time the run started
  commit?: string; // HEAD when the run started, "+dirty" when runner/ had uncommitted changes
  wallMs: number;
  maxRssKb: number;
  treePeakKb: number;
  treeMaxProcs: number;
  userS: number;
  sysS: number;
  exitCode: number;
  changed: number;
  failed: number;
  unreachable: number;
  hostsInRecap: number;
  /** 1-minute load average when the run started: other work on the machine shows here. */
  load: number;
  note?: string;
}

interface Split {
  target: string;
  hosts: number;
  probe: string;
  wallMs: number[];
}
interface Saved {
  samples: Sample[];
  splits: Split[];
  notes: { part: 'lab' | 'scale'; text: string }[];
  parts: { lab: string; scale: string };
  machine: { lab?: string[]; scale?: string[] };
}
const samples: Sample[] = [];
const splits: Split[] = [];
const notes: Saved['notes'] = [];
let part: 'lab' | 'scale' = 'lab';
const note = (text: string) => notes.push({ part, text });
const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ------------------------------------------------------------------ measuring one run

const PAGE_KB = 4;

/** pid -> [ppid, rss kB] for every process, from /proc. */
function procTable(): Map<number, [number, number]> {
  const t = new Map<number, [number, number]>();
  for (const e of readdirSync('/proc')) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after comm: state(0) ppid(1) ... rss is field 24 of stat = rest[21]
      t.set(Number(e), [Number(rest[1]), Number(rest[21]) * PAGE_KB]);
    } catch {
      /* exited meanwhile */
    }
  }
  return t;
}

/** Sum of RSS over `root` and its descendants (shared pages counted once per process). */
function treeRss(root: number): { kb: number; procs: number } {
  const t = procTable();
  const inTree = new Set<number>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, [ppid]] of t) if (!inTree.has(pid) && inTree.has(ppid)) (inTree.add(pid), (grew = true));
  }
  let kb = 0;
  let procs = 0;
  for (const p of inTree) {
    const r = t.get(p);
    if (r) (kb += r[1]), procs++;
  }
  return { kb, procs };
}

interface RunOut {
  wallMs: number;
  maxRssKb: number;
  userS: number;
  sysS: number;
  exitCode: number;
  stdout: string;
  treePeakKb: number;
  treeMaxProcs: number;
}

/** One whole-process run under GNU time; stdout kept for the recap, the tree's RSS sampled. */
function timed(argv: string[], env: Record<string, string>, logFile: string): Promise<RunOut> {
  const timeFile = join(WORK, 'time.out');
  rmSync(timeFile, { force: true });
  return new Promise((res, rej) => {
    const start = process.hrtime.bigint();
    const child = spawn(TIME, ['-f', '%e %M %U %S', '-o', timeFile, '--', ...argv], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let peak = 0;
    let peakProcs = 0;
    // Sampling costs a few ms of CPU every 250 ms, the same for every tool.
    const sampler = setInterval(() => {
      if (!child.pid) return;
      const r = treeRss(child.pid);
      if (r.kb > peak) peak = r.kb;
      if (r.procs > peakProcs) peakProcs = r.procs;
    }, 250);
    const killer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', rej);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      clearInterval(sampler);
      clearTimeout(killer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      writeFileSync(logFile, `$ ${argv.join(' ')}\n${Object.entries(env).map(([k, v]) => `  ${k}=${v}`).join('\n')}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
      let t = ['0', '0', '0', '0'];
      try {
        // GNU time writes "Command exited with non-zero status N" first when it fails.
        const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
        t = lines[lines.length - 1]!.trim().split(/\s+/);
      } catch {
        /* killed */
      }
      res({
        wallMs,
        maxRssKb: Number(t[1]),
        userS: Number(t[2]),
        sysS: Number(t[3]),
        exitCode: code ?? -1,
        stdout,
        treePeakKb: peak,
        treeMaxProcs: peakProcs,
      });
    });
  });
}

/** Totals from the recap of either tool: "name ok=N changed=N ... failed=N ... unreachable=N". */
function parseRecap(stdout: string): { hosts: number; changed: number; failed: number; unreachable: number } {
  const i = Math.max(stdout.lastIndexOf('PLAY RECAP'), stdout.lastIndexOf('\nRECAP'));
  const text = i >= 0 ? stdout.slice(i) : '';
  let hosts = 0;
  let changed = 0;
  let failed = 0;
  let unreachable = 0;
  for (const line of text.split('\n')) {
    if (!/\bok=\d+/.test(line)) continue;
    const n = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(line)?.[1] ?? 0);
    hosts++;
    changed += n('changed');
    failed += n('failed');
    unreachable += n('unreachable');
  }
  return { hosts, changed, failed, unreachable };
}

// ------------------------------------------------------------------ the tools' commands

function command(tool: ToolId, w: WorkloadId, t: Target, runId: string | undefined, extraEnv: Record<string, string> = {}): { argv: string[]; env: Record<string, string> } {
  const n = String(t.hosts.length);
  const book = w === 'noop' ? 'noop' : 'files';
  if (tool === 'ansible') {
    const argv = ['ansible-playbook', '-i', t.ansibleInventory, '-f', n, join(BENCH, 'ansible', `${book}.yml`)];
    if (runId) argv.push('-e', `run_id=${runId}`);
    return { argv, env: { ANSIBLE_CONFIG: join(BENCH, 'ansible/ansible.cfg'), ...extraEnv } };
  }
  const script = `bench/${book}.ts`;
  const pre = tool === 'zx' ? ['npx', 'zx', script] : ['node', '--import=tsx', script];
  return { argv: [...pre, '--inventory', t.phoenixInventory, '--forks', n], env: { ...(runId ? { PHX_BENCH_RUN: runId } : {}), ...extraEnv } };
}

function expectedChanged(w: WorkloadId, hosts: number): number {
  return w === 'files-steady' ? 0 : 20 * hosts;
}

async function measure(w: WorkloadId, t: Target, tool: ToolId, round: number, runId?: string): Promise<Sample> {
  const { argv, env } = command(tool, w, t, runId);
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  // Other engineers commit to runner/ while the bench runs: record what each run measured.
  const commit = `${sh('git rev-parse --short HEAD')}${sh('git status --porcelain runner lab/inventory.ts | head -1') ? '+dirty' : ''}`;
  const logFile = join(WORK, 'logs', `${t.label}-${w}-${tool}-${round < 0 ? 'warmup' : round}.log`.replace(/[^\w.-]+/g, '_'));
  const r = await timed(argv, env, logFile);
  const rc = parseRecap(r.stdout);
  const s: Sample = {
    workload: w,
    target: t.label,
    hosts: t.hosts.length,
    tool,
    round,
    wallMs: r.wallMs,
    maxRssKb: r.maxRssKb,
    treePeakKb: r.treePeakKb,
    treeMaxProcs: r.treeMaxProcs,
    userS: r.userS,
    sysS: r.sysS,
    exitCode: r.exitCode,
    changed: rc.changed,
    failed: rc.failed,
    unreachable: rc.unreachable,
    hostsInRecap: rc.hosts,
    load,
    at: new Date().toISOString(),
    commit,
  };
  const problems: string[] = [];
  if (r.exitCode !== 0) problems.push(`exit ${r.exitCode}`);
  if (rc.hosts !== t.hosts.length) problems.push(`recap lists ${rc.hosts} of ${t.hosts.length} hosts`);
  if (rc.failed || rc.unreachable) problems.push(`${rc.failed} failed, ${rc.unreachable} unreachable`);
  // Warm-ups of the file workloads may change anything; timed runs must match the workload.
  if (round >= 0 && rc.changed !== expectedChanged(w, t.hosts.length)) problems.push(`changed=${rc.changed}, expected ${expectedChanged(w, t.hosts.length)}`);
  if (problems.length) s.note = `INVALID: ${problems.join('; ')} (log ${logFile.slice(ROOT.length + 1)})`;
  samples.push(s);
  log(`${w} ${t.label} ${TOOL_LABEL[tool]} ${round < 0 ? 'warm-up' : `#${round + 1}`}: ${(r.wallMs / 1000).toFixed(2)} s, ${Math.round(r.maxRssKb / 1024)} MB, changed=${rc.changed}${s.note ? `  ${s.note}` : ''}`);
  return s;
}

/** Warm-ups, then rounds of A B C; `runIdFor` gives the run id of each run (files workloads). */
async function workload(w: WorkloadId, t: Target, runs: number, runIdFor: (tool: ToolId, round: number) => string | undefined, warmup = WARMUP) {
  for (let k = 0; k < warmup; k++) for (const tool of TOOLS) await measure(w, t, tool, -1, runIdFor(tool, -1));
  for (let i = 0; i < runs; i++) for (const tool of TOOLS) await measure(w, t, tool, i, runIdFor(tool, i));
}

/** phoenix alone: startup only (--list-tasks), 1 task, 20 tasks: where its time goes. */
async function breakdown(t: Target) {
  if (!TOOLS.includes('tsx') || SPLIT_RUNS === 0) return;
  const probes: [string, string[], Record<string, string>][] = [
    ['load + plan, no connection (--list-tasks)', ['--list-tasks'], {}],
    ['connect + 1 task', [], { PHX_BENCH_TASKS: '1' }],
    ['connect + 20 tasks', [], { PHX_BENCH_TASKS: '20' }],
  ];
  for (const [probe, extra, env] of probes) {
    const wall: number[] = [];
    for (let i = 0; i < SPLIT_RUNS; i++) {
      const c = command('tsx', 'noop', t, undefined, env);
      const r = await timed([...c.argv, ...extra], c.env, join(WORK, 'logs', `${t.label}-split-${i}.log`));
      if (r.exitCode !== 0) note(`breakdown probe "${probe}" on ${t.label} exited ${r.exitCode}`);
      wall.push(r.wallMs);
    }
    splits.push({ target: t.label, hosts: t.hosts.length, probe, wallMs: wall });
    log(`breakdown ${t.label} ${probe}: median ${(median(wall) / 1000).toFixed(2)} s`);
  }
}

// ------------------------------------------------------------------ targets

interface LabState {
  user: string;
  key: string;
  knownHosts: string;
  hosts: Record<string, { address: string; port: number }>;
}

function ansibleInventory(file: string, hosts: { name: string; address: string; port: number }[], user: string, key: string, knownHosts: string) {
  const lines = ['[bench]', ...hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port}`), '', '[bench:vars]'];
  lines.push(
    `ansible_user=${user}`,
    `ansible_ssh_private_key_file=${key}`,
    'ansible_become=true',
    'ansible_python_interpreter=/usr/bin/python3',
    `ansible_ssh_common_args='-o UserKnownHostsFile=${knownHosts}'`,
  );
  writeFileSync(file, `${lines.join('\n')}\n`);
}

function labTarget(): Target {
  const st = JSON.parse(readFileSync(LAB_JSON, 'utf8')) as LabState;
  const resolveLab = (p: string) => resolve(dirname(LAB_JSON), '..', p);
  const key = existsSync(st.key) ? st.key : resolveLab(st.key);
  const kh = existsSync(st.knownHosts) ? st.knownHosts : resolveLab(st.knownHosts);
  const hosts = Object.entries(st.hosts).map(([name, h]) => ({ name, address: h.address, port: h.port ?? 22 }));
  const ini = join(WORK, 'lab.ini');
  ansibleInventory(ini, hosts, st.user, key, kh);
  return { label: 'lab', hosts: hosts.map((h) => h.name), phoenixInventory: 'lab', ansibleInventory: ini };
}

/** Runs one of the bench's own phoenix helper playbooks (not timed). */
function helper(script: string, inventory: string, env: Record<string, string>): void {
  const r = spawnSync('node', ['--import=tsx', script, '--inventory', inventory], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${script} ${JSON.stringify(env)} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

/** Ends the ControlPersist masters Ansible left behind (by their sockets, nothing else). */
function closeControlMasters() {
  if (!existsSync(CP_DIR)) return;
  for (const s of readdirSync(CP_DIR)) {
    spawnSync('ssh', ['-o', `ControlPath=${join(CP_DIR, s)}`, '-O', 'exit', 'phx-bench'], { stdio: 'ignore', timeout: 10_000 });
  }
}

// ------------------------------------------------------------------ report

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sec = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '—');
const mb = (kb: number) => (Number.isFinite(kb) && kb > 0 ? `${Math.round(kb / 1024)} MB` : '—');

function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim();
}

function machine(): string[] {
  const ansible = sh('ansible-playbook --version 2>/dev/null | head -1');
  const py = sh('python3 --version');
  return [
    `- date: ${new Date().toISOString()}`,
    `- cpu: ${cpus()[0]?.model ?? '?'}, nproc ${sh('nproc')}`,
    `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- kernel: ${sh('uname -sr')}`,
    `- os: ${sh('. /etc/os-release && echo "$PRETTY_NAME"')}`,
    `- node: ${process.version}; zx ${sh('node -p "require(\'./node_modules/zx/package.json\').version"')}; tsx ${sh('node -p "require(\'./node_modules/tsx/package.json\').version"')}; ssh2 ${sh('node -p "require(\'./node_modules/ssh2/package.json\').version"')}`,
    `- ansible: ${ansible} (Debian package ${sh("dpkg-query -W -f='${Version}' ansible-core")}), ${py}`,
    `- OpenSSH: ${sh('ssh -V 2>&1')}`,
    `- phoenix commit: ${sh('git rev-parse --short HEAD')}${sh('git status --porcelain runner | head -1') ? ' (runner/ has uncommitted changes by other engineers at run time)' : ''}`,
  ];
}

function report(extra: { lab: string; scale: string }, machineBy: Saved['machine']) {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = `${s.workload}|${s.target}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  const names: Record<string, string> = {
    noop: '1. 20 × `true`',
    'files-steady': '2. 20 file/template tasks, nothing to change',
    'files-changed': '3. 20 file/template tasks, every file changed',
  };
  const order = ['noop', 'files-steady', 'files-changed'];
  const sorted = [...groups.entries()].sort(([, a], [, b]) =>
    (a[0]!.target === 'lab' ? 0 : 1) - (b[0]!.target === 'lab' ? 0 : 1) || a[0]!.hosts - b[0]!.hosts || order.indexOf(a[0]!.workload) - order.indexOf(b[0]!.workload),
  );
  groups.clear();
  for (const [k, v] of sorted) groups.set(k, v);
  const med = (xs: Sample[], tool: ToolId, f: (s: Sample) => number) => median(xs.filter((s) => s.tool === tool && s.round >= 0 && !s.note).map(f));
  const rows: string[] = [];
  rows.push('| workload | hosts | ansible-playbook | phoenix (npx zx) | phoenix (tsx) | ansible ÷ zx | ansible ÷ tsx | max RSS ansible | max RSS zx | max RSS tsx | tree peak ansible | tree peak tsx | valid runs |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const [k, xs] of groups) {
    const [w, target] = k.split('|') as [WorkloadId, string];
    const a = med(xs, 'ansible', (s) => s.wallMs);
    const z = med(xs, 'zx', (s) => s.wallMs);
    const t = med(xs, 'tsx', (s) => s.wallMs);
    const valid = TOOLS.map((tool) => `${tool} ${xs.filter((s) => s.tool === tool && s.round >= 0 && !s.note).length}/${xs.filter((s) => s.tool === tool && s.round >= 0).length}`).join(', ');
    const label = target === 'lab' ? names[w] : `4. scale: 20 × \`true\` (loopback sshd)`;
    rows.push(
      `| ${label} | ${xs[0]!.hosts} | ${sec(a)} | ${sec(z)} | ${sec(t)} | ${(a / z).toFixed(1)}× | ${(a / t).toFixed(1)}× | ${mb(med(xs, 'ansible', (s) => s.maxRssKb))} | ${mb(med(xs, 'zx', (s) => s.maxRssKb))} | ${mb(med(xs, 'tsx', (s) => s.maxRssKb))} | ${mb(med(xs, 'ansible', (s) => s.treePeakKb))} | ${mb(med(xs, 'tsx', (s) => s.treePeakKb))} | ${valid} |`,
    );
  }

  // Cost per added host, from the scale workload.
  const scaleRows: string[] = [];
  const sc = [...groups.entries()].filter(([k]) => !k.endsWith('|lab')).map(([, xs]) => xs).sort((a, b) => a[0]!.hosts - b[0]!.hosts);
  if (sc.length >= 2) {
    scaleRows.push('| tool | from → to hosts | median wall from → to | added time per added host | time ratio vs host ratio |');
    scaleRows.push('|---|---|---|---:|---|');
    for (const tool of TOOLS) {
      for (let i = 1; i < sc.length; i++) {
        const a = sc[i - 1]!;
        const b = sc[i]!;
        const ta = med(a, tool, (s) => s.wallMs);
        const tb = med(b, tool, (s) => s.wallMs);
        const ha = a[0]!.hosts;
        const hb = b[0]!.hosts;
        scaleRows.push(`| ${TOOL_LABEL[tool]} | ${ha} → ${hb} | ${sec(ta)} → ${sec(tb)} | ${((tb - ta) / (hb - ha)).toFixed(1)} ms | ${(tb / ta).toFixed(2)}× time for ${(hb / ha).toFixed(1)}× hosts |`);
      }
    }
  }

  const splitRows: string[] = [];
  if (splits.length) {
    splitRows.push('| target | hosts | probe (phoenix, node --import=tsx) | median wall | runs (s) |');
    splitRows.push('|---|---:|---|---:|---|');
    for (const s of splits) splitRows.push(`| ${s.target} | ${s.hosts} | ${s.probe} | ${sec(median(s.wallMs))} | ${s.wallMs.map((x) => (x / 1000).toFixed(2)).join(', ')} |`);
  }

  const raw: string[] = [];
  raw.push('| workload | target | hosts | tool | run | wall s | max RSS MB | tree peak MB (procs) | user s | sys s | exit | changed | load | commit | note |');
  raw.push('|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const s of samples)
    raw.push(
      `| ${s.workload} | ${s.target} | ${s.hosts} | ${s.tool} | ${s.round < 0 ? 'warm-up' : s.round + 1} | ${(s.wallMs / 1000).toFixed(3)} | ${(s.maxRssKb / 1024).toFixed(1)} | ${(s.treePeakKb / 1024).toFixed(0)} (${s.treeMaxProcs}) | ${s.userS.toFixed(2)} | ${s.sysS.toFixed(2)} | ${s.exitCode} | ${s.changed} | ${s.load.toFixed(2)} | ${s.commit ?? s.at.slice(11, 19)} | ${s.note ?? ''} |`,
    );

  const analysisFile = join(BENCH, 'ANALYSIS.md');
  const analysis = existsSync(analysisFile) ? readFileSync(analysisFile, 'utf8').trim() : '';

  const md = [
    '# phoenix vs ansible-playbook — bench results',
    '',
    'Generated by `npm run bench` (bench/run.sh → bench/bench.ts). Do not edit by hand; the analysis',
    'below is bench/ANALYSIS.md, written after looking at these figures and the profiles.',
    '',
    '## Machine',
    '',
    ...(machineBy.lab && machineBy.scale && machineBy.lab.join() !== machineBy.scale.join()
      ? ['Workloads 1–3 (lab):', '', ...machineBy.lab, '', 'Workload 4 (scale):', '', ...machineBy.scale]
      : (machineBy.lab ?? machineBy.scale ?? machine())),
    '',
    '## Method',
    '',
    `- Whole-process wall time of the real CLI, spawned by the bench: \`ansible-playbook -i INV -f HOSTS bench/ansible/X.yml\`, \`npx zx bench/X.ts --inventory INV --forks HOSTS\`, \`node --import=tsx bench/X.ts --inventory INV --forks HOSTS\`, each under GNU \`/usr/bin/time -f '%e %M %U %S'\`.`,
    `- Runs alternate A B C A B C. ${WARMUP} untimed warm-up run(s) per tool before each workload (workload 2 is by definition the second run; for Ansible the warm-up also leaves ControlPersist masters, so its timed runs reuse SSH connections — Ansible at its fastest). ${RUNS} timed runs per tool for workloads 1–3; for the scale sizes ${SCALE.join(', ')}: ${SCALE.map((_, i) => scaleRuns(i)).join(', ')} timed run(s) per tool after ${SCALE_WARMUP} warm-up(s). Medians over the valid timed runs.`,
    '- A run is valid only when it exits 0, its recap lists every host with no failure, and the number of changes is what the workload means (20 per host for `true` and for changed files, 0 for the second run of the file tasks). Invalid runs stay in the raw figures, marked, and out of the medians.',
    '- Ansible (bench/ansible/ansible.cfg): pipelining on, ControlMaster/ControlPersist 900 s, `gathering = explicit`, forks = number of hosts, `interpreter_python` fixed (no discovery), `become: true` via sudo, host keys checked (StrictHostKeyChecking=yes, the target\'s known_hosts). Strategy: linear (the default).',
    '- phoenix: the same user, key and known_hosts; one ssh2 connection per host, `become` through one `sudo -n /bin/sh` per host; `--forks` = number of hosts.',
    '- "max RSS" is GNU time\'s %M: the peak RSS of the largest single process of the run (for phoenix that is the playbook\'s node process; for Ansible the controller or one of its forks, which are copies of it). "tree peak" is the sum of RSS over the whole process tree, sampled every 250 ms (Ansible\'s forks and ssh processes included; shared pages counted once per process, so it overstates real use).',
    '- Workload 1–3 targets: the five lab guests (`.lab/lab.json`; phoenix `--inventory lab`, Ansible an INI inventory generated from the same file). Files go to /tmp/phx-bench/{phoenix,ansible} on the guests (made and removed by bench/prep.ts, not timed). Workload 4: real OpenSSH sshd servers on 127.0.0.1 ports started by test/harness/sshd.ts, each with its own host key, one client key, a non-root user with sudo; they run on this same machine, so their CPU competes with the control process.',
    '',
    '## Results (medians)',
    '',
    `Lab workloads: ${extra.lab}. Scale workload: ${extra.scale}.`,
    '',
    ...rows,
    '',
    ...(scaleRows.length ? ['### Cost per added host (scale workload)', '', ...scaleRows, ''] : []),
    ...(splitRows.length ? ['### Where phoenix\'s time goes (20 × `true`, node --import=tsx)', '', ...splitRows, ''] : []),
    ...(notes.length ? ['### Notes', '', ...notes.map((n) => `- ${n.text}`), ''] : []),
    ...(analysis ? [analysis, ''] : []),
    '## Raw figures',
    '',
    ...raw,
    '',
  ];
  writeFileSync(OUT, md.join('\n'));
  log(`wrote ${OUT}`);
}

// ------------------------------------------------------------------ main

async function labWorkloads(): Promise<string> {
  if (!existsSync(LAB_JSON)) return `skipped: ${LAB_JSON} not found (the lab is not up: \`npm run lab:up\`)`;
  const t = labTarget();
  log(`lab: ${t.hosts.join(', ')}`);
  helper('bench/prep.ts', 'lab', { PHX_BENCH_PREP: 'setup' });
  try {
    await workload('noop', t, RUNS, () => undefined);
    // Second run: the warm-up writes the files, the timed runs find them in place.
    await workload('files-steady', t, RUNS, () => 'steady');
    const diff = spawnSync('sh', ['-c', `ssh -i ${JSON.parse(readFileSync(LAB_JSON, 'utf8')).key} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${JSON.parse(readFileSync(LAB_JSON, 'utf8')).knownHosts} -o StrictHostKeyChecking=yes phoenix@$(sed -n 's/^\\(\\S*\\) ansible_host=\\(\\S*\\).*/\\2/p' ${t.ansibleInventory} | head -1) sudo diff -r /tmp/phx-bench/phoenix /tmp/phx-bench/ansible`], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    note(
      diff.status === 0
        ? `Equivalence check: after workload 2 the 20 files phoenix wrote and the 20 Ansible wrote on ${t.hosts[0]} are byte-identical (\`diff -r\` exit 0).`
        : `Equivalence check FAILED: \`diff -r\` of the two tools' files on ${t.hosts[0]} exited ${diff.status}: ${(diff.stdout + diff.stderr).slice(0, 500)}`,
    );
    // Every run its own id, so all twenty files change on every host.
    await workload('files-changed', t, RUNS, (tool, i) => `${tool}-${i}-${Date.now()}`);
    await breakdown(t);
  } finally {
    closeControlMasters();
    helper('bench/prep.ts', 'lab', { PHX_BENCH_PREP: 'clean' });
  }
  return `${t.hosts.length} lab guests (${t.hosts.join(', ')})`;
}

async function scaleWorkload(): Promise<string> {
  if (!SCALE.length) return 'skipped (BENCH_SCALE empty)';
  const { startSshd } = await import('../test/harness/sshd.ts');
  const max = Math.max(...SCALE);
  log(`starting ${max} sshd servers on 127.0.0.1`);
  const t0 = Date.now();
  const lab = await startSshd({ count: max });
  log(`${max} sshd servers up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    for (const [idx, n] of SCALE.entries()) {
      const hs = lab.hosts.slice(0, n).map((h, i) => ({ name: `h${String(i).padStart(3, '0')}`, address: h.address, port: h.port }));
      const json = join(WORK, `loop-${n}.json`);
      const inv = {
        knownHosts: lab.knownHosts,
        hosts: Object.fromEntries(hs.map((h) => [h.name, { address: h.address, port: h.port, user: lab.user, key: lab.clientKey, become: true }])),
      };
      writeFileSync(json, JSON.stringify(inv, null, 1));
      const ini = join(WORK, `loop-${n}.ini`);
      ansibleInventory(ini, hs, lab.user, lab.clientKey, lab.knownHosts);
      const t: Target = { label: `loopback-${n}`, hosts: hs.map((h) => h.name), phoenixInventory: json, ansibleInventory: ini };
      await workload('noop', t, scaleRuns(idx), () => undefined, SCALE_WARMUP);
      await breakdown(t);
      closeControlMasters();
    }
  } finally {
    closeControlMasters();
    await lab.stop();
  }
  return `${SCALE.join(', ')} hosts: real sshd servers on 127.0.0.1 (test/harness/sshd.ts), user ${lab.user} with sudo`;
}

async function mainBench() {
  mkdirSync(join(WORK, 'logs'), { recursive: true });
  for (const tool of TOOLS) if (!TOOL_LABEL[tool]) throw new Error(`BENCH_TOOLS: unknown tool ${tool} (ansible, zx, tsx)`);
  if (!existsSync(TIME)) throw new Error(`${TIME} missing: apt-get install -y time`);
  let lab = 'not run (BENCH_ONLY=scale)';
  let scale = 'not run (BENCH_ONLY=lab)';
  const machineBy: Saved['machine'] = {};
  const jsonOut = OUT.replace(/\.md$/, '') + '.json';
  if (ONLY === 'report') {
    // Re-render RESULTS.md from the saved figures (after editing ANALYSIS.md), measuring nothing.
    const old = JSON.parse(readFileSync(jsonOut, 'utf8')) as Saved;
    samples.push(...old.samples);
    splits.push(...old.splits);
    notes.push(...old.notes);
    report(old.parts, old.machine);
    return;
  }
  if (ONLY && existsSync(jsonOut)) {
    // Keep the part not being measured now.
    const old = JSON.parse(readFileSync(jsonOut, 'utf8')) as Saved;
    const keep = ONLY === 'lab' ? 'scale' : 'lab';
    const isKept = (target: string) => (keep === 'lab') === (target === 'lab');
    samples.push(...old.samples.filter((s) => isKept(s.target)));
    splits.push(...old.splits.filter((s) => isKept(s.target)));
    notes.push(...old.notes.filter((n) => n.part === keep));
    if (keep === 'lab') (lab = old.parts.lab), (machineBy.lab = old.machine.lab);
    else (scale = old.parts.scale), (machineBy.scale = old.machine.scale);
  }
  try {
    if (ONLY !== 'scale') {
      part = 'lab';
      machineBy.lab = machine();
      lab = await labWorkloads();
    }
    if (ONLY !== 'lab') {
      part = 'scale';
      machineBy.scale = machine();
      scale = await scaleWorkload();
    }
  } finally {
    report({ lab, scale }, machineBy);
    const saved: Saved = { samples, splits, notes, parts: { lab, scale }, machine: machineBy };
    writeFileSync(jsonOut, `${JSON.stringify(saved, null, 1)}\n`);
  }
  const bad = samples.filter((s) => s.note);
  if (bad.length) log(`${bad.length} invalid run(s); see the raw figures`);
}

await mainBench();
