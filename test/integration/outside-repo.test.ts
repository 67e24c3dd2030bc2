// A playbook repo of your own (issue 10, item 4): examples/my-lab is copied to a folder
// OUTSIDE the phoenix repo, phoenix is installed into it the way the README says
// (`npm install`, phoenix as file:../phoenix), and its playbook runs through `npx zx`
// against a real sshd on 127.0.0.1, in a clean environment (no NODE_OPTIONS, no npm config
// inherited from phoenix's own .npmrc).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SshdLab } from '../harness/sshd.ts';
import { hosts } from './helpers.ts';
import { zxHookOption } from '../../runner/launch.mjs';

const O = suite('a playbook repo outside phoenix');
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const base = realpathSync(mkdtempSync(join(tmpdir(), 'phx-outside-')));
const mine = join(base, 'my-lab');
let lab: SshdLab;

/** The environment of a user's shell: nothing phoenix's npm run or .npmrc would add. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) env[k] = v;
  return { ...env, NO_COLOR: '1' };
}

function sh(cmd: string, args: string[], cwd = mine) {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

O.before(async () => {
  assert.ok(relative(REPO, base).startsWith('..'), `${base} must be outside the repo`);
  cpSync(join(REPO, 'examples', 'my-lab'), mine, { recursive: true });
  // The README's layout: phoenix cloned beside your repo.
  symlinkSync(REPO, join(base, 'phoenix'));
  const inst = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund']);
  assert.is(inst.code, 0, `npm install in ${mine} failed:\n${inst.out}`);
  lab = await hosts(1);
  const h = lab.hosts[0]!;
  // An inventory of the user's, importing from 'phoenix' like examples/my-lab/inventory.ts.
  writeFileSync(
    join(mine, 'loopback.ts'),
    `import { defineInventory } from 'phoenix';\nimport type { MyLabVars } from './vars.ts';\n` +
      `export default defineInventory<MyLabVars>({\n  knownHosts: ${JSON.stringify(lab.knownHosts)},\n` +
      `  vars: { motd: { dir: ${JSON.stringify(`${h.root}/etc`)}, text: 'Welcome to the loopback lab.' } },\n` +
      `  hosts: { box1: { address: '127.0.0.1', port: ${h.port}, user: ${JSON.stringify(h.user)}, key: ${JSON.stringify(h.key)}, become: true, groups: ['base'] } },\n});\n`,
  );
});
O.after(async () => {
  await lab?.stop();
  rmSync(base, { recursive: true, force: true });
});

O('phoenix is installed into the copy and importable as "phoenix"', () => {
  assert.ok(existsSync(join(mine, 'node_modules', 'phoenix', 'package.json')));
  assert.ok(existsSync(join(mine, 'node_modules', '.bin', 'zx')));
  // The example's .npmrc is phoenix's zx hook (ZX_HOOK in runner/launch.mjs), line for line: `npx zx`
  // on Node 20 in a repo of your own (phoenix's own .npmrc sets no node option).
  const hook = readFileSync(join(mine, '.npmrc'), 'utf8').split('\n').filter((l) => l.startsWith('node-options='));
  assert.equal(hook, [`node-options=${zxHookOption()}`]);
  const r = sh('node', ['--import=tsx', '-e', "import('phoenix').then((m) => console.log(typeof m.playbook, typeof m.main))"]);
  assert.is(r.stdout.trim(), 'function function', r.out);
});

O('npx zx site.ts runs the playbook against a real sshd; the second run changes nothing', () => {
  const motd = `${lab.hosts[0]!.root}/etc/motd`;
  const first = sh('npx', ['zx', 'site.ts', '-i', 'loopback.ts', '--plain', '--json', 'run1.json']);
  assert.is(first.code, 0, first.out);
  assert.not.match(first.out, /Top-level await|cjs/);
  assert.is(readFileSync(motd, 'utf8'), 'Welcome to the loopback lab.\nThis host (box1) is managed by phoenix from my-lab; local edits are overwritten.\n');
  const second = sh('npx', ['zx', 'site.ts', '-i', 'loopback.ts', '--plain', '--json', 'run2.json']);
  assert.is(second.code, 0, second.out);
  const report = JSON.parse(readFileSync(join(mine, 'run2.json'), 'utf8')) as { plays: Array<{ hosts: Record<string, { tasks: Array<{ task: string; changed: unknown }> }> }> };
  const tasks = report.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks));
  assert.equal(tasks.map((t) => t.task), ['motd directory', 'motd']);
  assert.equal(tasks.filter((t) => t.changed !== false).map((t) => t.task), []);
});

O('--list-tasks and --list-hosts work outside the repo, for your roles and for phoenix\'s (phoenix/roles/nginx)', () => {
  const site = sh('npx', ['zx', 'site.ts', '-i', 'loopback.ts', '--list-tasks']);
  assert.is(site.code, 0, site.out);
  assert.match(site.out, /motd directory/);
  assert.match(site.out, /\bmotd\b/);
  // The example's own inventory (documentation addresses): listing needs no connection.
  const gw = sh('npx', ['zx', 'gateway.ts', '-i', 'inventory.ts', '--list-tasks']);
  assert.is(gw.code, 0, gw.out);
  assert.match(gw.out, /play: gateway\n\s+nginx : install nginx/);
  const hostsOut = sh('npx', ['zx', 'gateway.ts', '-i', 'inventory.ts', '--list-hosts']);
  assert.is(hostsOut.code, 0, hostsOut.out);
  assert.match(hostsOut.out, /hosts \(1\): gw1/);
});

O('tsc checks your repo against phoenix\'s types: the example passes, a misspelt var is an error', () => {
  const ok = sh('npx', ['tsc', '-p', '.']);
  assert.is(ok.code, 0, ok.out);
  writeFileSync(
    join(mine, 'bad.ts'),
    `import { defineInventory } from 'phoenix';\nimport type { MyLabVars } from './vars.ts';\n` +
      `export default defineInventory<MyLabVars>({ vars: { motd: { dir: '/etc', txt: 'typo' } }, hosts: {} });\n`,
  );
  try {
    const bad = sh('npx', ['tsc', '-p', '.']);
    assert.is.not(bad.code, 0, bad.out);
    assert.match(bad.out, /bad\.ts\(3,\d+\): error TS\d+: .*'txt' does not exist/);
  } finally {
    rmSync(join(mine, 'bad.ts'));
  }
});

O.run();
