// The scale workload's floor on this machine: N loopback sshd servers (test/harness/sshd.ts) and
// one phoenix run of 20 × `true` on all of them, with the CPU of both sides: the control
// process (GNU time, user + sys) and the servers (the listening sshd's reaped children: every
// connection's sshd, sudo and shell, from /proc/PID/stat cutime + cstime). Both sides share the
// machine's cores, so (client CPU + server CPU) / cores is a lower bound of the wall time here.
//   node --import=tsx bench/scale-probe.ts [HOSTS=200] [RUNS=3] [LAUNCHER=boot|tsx] [ab-native]
// With `ab-native`, each round runs twice, with ssh2's native addons (sshcrypto.node, built by
// its install script, and cpu-features) and without them (their build folders renamed for that
// run, restored at the end): what npm 11's allowScripts for ssh2 and cpu-features is worth.
// With `ab-jobs`, each round runs twice, with each command a job of the long-lived bash and with
// PHOENIX_SHELL_JOBS=0 (a setsid exec per command): issue 18, item 4.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSshd } from '../test/harness/sshd.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const n = Number(process.argv[2] ?? 200);
const runs = Number(process.argv[3] ?? 3);
const launcher = process.argv[4] ?? 'boot';
const abNative = process.argv[5] === 'ab-native';
const abJobs = process.argv[5] === 'ab-jobs';
const NATIVE = ['node_modules/ssh2/lib/protocol/crypto/build', 'node_modules/cpu-features/build'].map((d) => join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), d));
const native = (on: boolean) => {
  for (const d of NATIVE) {
    if (on && existsSync(`${d}.off`)) renameSync(`${d}.off`, d);
    if (!on && existsSync(d)) renameSync(d, `${d}.off`);
  }
};
const TICK = 100; // USER_HZ

const childCpu = (pid: number) => {
  const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(rest[13]) + Number(rest[14])) / TICK; // cutime + cstime (fields 16, 17)
};

const lab = await startSshd({ count: n });
const work = join(ROOT, 'bench/.work');
mkdirSync(work, { recursive: true });
const inv = join(work, `scale-probe-${n}.json`);
writeFileSync(
  inv,
  JSON.stringify({
    knownHosts: lab.knownHosts,
    hosts: Object.fromEntries(lab.hosts.map((h, i) => [`h${i}`, { address: h.address, port: h.port, user: lab.user, key: lab.clientKey, become: true }])),
  }),
);
const timeOut = join(work, 'scale-probe.time');
try {
  const rows: string[] = [];
  for (let r = -1; r < runs; r++) for (const mode of abNative ? ['native', 'no native'] : abJobs ? ['jobs', 'setsid'] : ['']) {
    if (abNative) native(mode === 'native');
    const before = lab.hosts.reduce((a, h) => a + childCpu(h.pid), 0);
    const t0 = performance.now();
    const p = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeOut, 'node', `--import=${launcher === 'tsx' ? 'tsx' : 'phoenix/boot'}`, 'bench/noop.ts', '--inventory', inv, '--forks', String(n), '--plain'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '', ...(abJobs ? { PHOENIX_SHELL_JOBS: mode === 'jobs' ? '1' : '0' } : {}) },
    });
    const wall = (performance.now() - t0) / 1000;
    const server = lab.hosts.reduce((a, h) => a + childCpu(h.pid), 0) - before;
    const [, rssKb, u, s] = readFileSync(timeOut, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
    const client = u! + s!;
    const ok = p.status === 0 && /changed=20/.test(p.stdout);
    const row = `${r < 0 ? 'warm-up' : `run ${r + 1}`}${mode ? ` (${mode})` : ''}: wall ${wall.toFixed(2)} s, max RSS ${Math.round(rssKb! / 1024)} MB, client CPU ${client.toFixed(2)} s, server CPU ${server.toFixed(2)} s, (client + server) / ${availableParallelism()} cores = ${((client + server) / availableParallelism()).toFixed(2)} s${ok ? '' : `  FAILED (exit ${p.status})`}`;
    console.log(row);
    if (r >= 0) rows.push(row);
  }
  console.log(`load average now: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  if (abNative) native(true);
  await lab.stop();
  rmSync(inv, { force: true });
}
