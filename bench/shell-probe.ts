// Issue 18, item 4: what one command costs on the long-lived shell, with each command a job of
// bash (`set -m`, the default where there is bash) and with a setsid exec per command
// (PHOENIX_SHELL_JOBS=0). The local connection, so only the shell's side is measured: N
// sequential `true`, then one 3 MiB file on stdin, in a child process per mode (alternating,
// RUNS rounds), with the CPU of that process and everything it started (GNU time: user + sys).
//   node --import=tsx bench/shell-probe.ts [N=1000] [RUNS=3]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const n = Number(process.argv[2] ?? 1000);
const runs = Number(process.argv[3] ?? 3);

if (process.env.SHELL_PROBE_CHILD) {
  const { LocalConnection } = await import('../runner/connection/local.ts');
  const c = new LocalConnection('probe');
  await c.exec('true');
  let t0 = performance.now();
  for (let i = 0; i < n; i++) await c.exec('true');
  const seq = performance.now() - t0;
  const data = Buffer.alloc(3 * 1024 * 1024, 'x');
  t0 = performance.now();
  const r = await c.exec('wc -c', { stdin: data });
  const file = performance.now() - t0;
  if (r.stdout.trim() !== String(data.length)) throw new Error(`stdin arrived short: ${r.stdout}`);
  await c.close();
  await new Promise((r) => setTimeout(r, 500)); // the shell exits and is reaped: its CPU counts
  console.log(JSON.stringify({ seq, file }));
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'phx-shell-probe-'));
try {
  for (let r = 0; r < runs; r++) {
    for (const mode of ['jobs', 'setsid']) {
      const out = join(work, 'time');
      const p = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', out, 'node', '--import=tsx', fileURLToPath(import.meta.url), String(n)], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, SHELL_PROBE_CHILD: '1', PHOENIX_SHELL_JOBS: mode === 'jobs' ? '1' : '0' },
      });
      if (p.status !== 0) throw new Error(p.stderr);
      const { seq, file } = JSON.parse(p.stdout.trim().split('\n').pop()!) as { seq: number; file: number };
      const [u, s] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
      console.log(`round ${r + 1} ${mode.padEnd(6)}: ${n} × true ${(seq / n).toFixed(2)} ms each (wall); 3 MiB on stdin ${file.toFixed(0)} ms; CPU of the whole process tree ${(u! + s!).toFixed(2)} s`);
    }
  }
  console.log(`load average now: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
