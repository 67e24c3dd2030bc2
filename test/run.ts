// Runs the uvu suites in order and ends with one line CI can read: "tests: N passed, N failed".
//   node --import=tsx test/run.ts unit integration e2e
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const stages = process.argv.slice(2);
if (!stages.length) stages.push('unit', 'integration', 'e2e');
let passed = 0;
let failed = 0;
let skipped = 0;
let broken = false;
let broughtUp = false;
for (const stage of stages) {
  if (stage === 'integration' && (!existsSync('/usr/sbin/sshd') || !existsSync('/usr/bin/sudo')) && process.getuid?.() === 0) {
    // The integration suite starts real OpenSSH servers: install them the way lab:up installs its own.
    process.stdout.write('\n== integration: installing openssh-server and sudo (apt) ==\n');
    spawnSync('sh', ['-c', 'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server sudo >/dev/null'], { stdio: 'inherit' });
  }
  if (stage === 'e2e' && !existsSync('.lab/lab.json')) {
    // The e2e tests need the lab; never skip them silently: bring it up, and down afterwards.
    process.stdout.write('\n== e2e: the lab is not up; npm run lab:up ==\n');
    const up = spawnSync('bash', ['lab/up.sh'], { stdio: 'inherit' });
    if (up.status !== 0) {
      process.stderr.write('e2e: lab:up failed\n');
      broken = true;
      continue;
    }
    broughtUp = true;
  }
  // The e2e suite starts with test/e2e/fresh (--check on a fresh lab), then the rest.
  const runs: [string, string[]][] =
    stage === 'e2e' ? [['e2e (fresh lab)', ['test/e2e/fresh', '\\.test\\.ts$']], ['e2e', ['test/e2e', '\\.test\\.ts$', '-i', 'fresh']]] : [[stage, [`test/${stage}`, '\\.test\\.ts$']]];
  for (const [label, args] of runs) {
    process.stdout.write(`\n== ${label} tests ==\n`);
    const r = spawnSync('node', ['--import=tsx', 'node_modules/uvu/bin.js', ...args], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.stdout.write(r.stdout);
    const plain = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    const num = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(plain)?.[1] ?? NaN);
    const total = num('Total');
    const ok = num('Passed');
    if (Number.isNaN(total) || Number.isNaN(ok)) {
      process.stderr.write(`${label}: the suite did not report its totals (exit ${r.status})\n`);
      broken = true;
      continue;
    }
    passed += ok;
    skipped += num('Skipped') || 0;
    failed += total - ok - (num('Skipped') || 0);
    if (r.status !== 0 && total === ok) broken = true; // an error outside any test
  }
}
if (broughtUp) spawnSync('bash', ['lab/down.sh'], { stdio: 'inherit' });
process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed || broken ? 1 : 0;
