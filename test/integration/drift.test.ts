// --check --detailed-exitcode for drift checks from cron or CI (issue 10, item 7): 0 when
// nothing would change, 5 when changes are pending, failures (2) and unreachable hosts (3)
// first. Against real sshd hosts, whose files are compared before and after.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { hosts, snapshot } from './helpers.ts';

/** NO_COLOR without the runner's FORCE_COLOR: Node 24 warns on stderr when both are set. */
function plainEnv(): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _, ...env } = process.env;
  return { ...env, NO_COLOR: '1' };
}

const D = suite('drift exit codes');
let lab: SshdLab;
let inv: string;
let withGhost: string;

D.before(async () => {
  lab = await hosts(2);
  const host = (i: number) => ({ address: '127.0.0.1', port: lab.hosts[i]!.port, user: lab.user, key: lab.clientKey, become: true, groups: ['web', 'db'], vars: { root: lab.hosts[i]!.root } });
  const base = { knownHosts: lab.knownHosts, groups: { web: {}, db: {} }, hosts: { alpha: host(0), beta: host(1) } };
  inv = join(lab.dir, 'inv.json');
  writeFileSync(inv, JSON.stringify(base));
  withGhost = join(lab.dir, 'inv-ghost.json');
  // Nothing listens on port 1: "ghost" is unreachable.
  writeFileSync(withGhost, JSON.stringify({ ...base, hosts: { ...base.hosts, ghost: { ...host(0), port: 1, vars: { root: '/nonexistent' } } } }));
});
D.after(async () => {
  await lab?.stop();
});

function phoenix(...args: string[]) {
  const r = spawnSync('node', ['--import=tsx', 'test/fixtures/two-roles.ts', ...args], { encoding: 'utf8', timeout: 120_000, env: plainEnv() });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const both = () => ({ ...snapshot(lab.hosts[0]!.root), ...snapshot(lab.hosts[1]!.root) });

D('fresh hosts: changes pending is 5, and nothing changed', () => {
  const before = both();
  const r = phoenix('--inventory', inv, '--check', '--detailed-exitcode');
  assert.is(r.code, 5, r.err + r.out);
  assert.match(r.out, /alpha\s+ok=0\s+changed=2\s+unknown=2/);
  assert.equal(both(), before);
  // Without the flag a clean dry run is 0, as before.
  assert.is(phoenix('--inventory', inv, '--check').code, 0);
});

D('converged hosts: no drift is 0', () => {
  assert.is(phoenix('--inventory', inv).code, 0);
  const r = phoenix('--inventory', inv, '--check', '--detailed-exitcode');
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /beta\s+ok=4\s+changed=0\s+unknown=0/);
});

D('drift on one host is 5; drift plus an unreachable host is 3', () => {
  writeFileSync(join(lab.hosts[1]!.root, 'web', 'index.html'), 'edited by hand\n');
  const before = both();
  const r = phoenix('--inventory', inv, '--check', '--detailed-exitcode');
  assert.is(r.code, 5, r.err + r.out);
  assert.match(r.out, /changed\s+beta \| web \| web page \(content changed\)/);
  assert.match(r.out, /alpha\s+ok=4\s+changed=0/);
  const g = phoenix('--inventory', withGhost, '--check', '--detailed-exitcode');
  assert.is(g.code, 3, g.err + g.out);
  assert.match(g.out, /ghost\s+ok=0\s+changed=0\s+unknown=0\s+failed=0\s+skipped=0\s+unreachable=1/);
  assert.equal(both(), before);
});

D('--detailed-exitcode without --check is a usage error', () => {
  const r = phoenix('--inventory', inv, '--detailed-exitcode');
  assert.is(r.code, 4);
  assert.match(r.err, '--detailed-exitcode needs --check');
});

D.run();
