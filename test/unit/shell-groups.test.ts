// Each command runs in a process group of its own; a timeout or an abort kills the whole
// group (issue 10, item 1), here on the local connection (the SSH one: test/integration/interrupt.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { LocalConnection } from '../../runner/connection/local.ts';
import { AbortedError } from '../../runner/connection/index.ts';

const c = new LocalConnection('local');
const alive = (arg: string) => spawnSync('pgrep', ['-xf', `sleep ${arg}`]).status === 0;
// Durations unique to this run (sleep takes fractions), so a stray sleep left by another run
// cannot make a check pass or fail.
const u = (n: number) => `${n}.${process.pid}`;

test('a command runs in a session and process group of its own', async () => {
  const r = await c.exec('ps -o pid=,pgid=,sid= -p $$; echo $$');
  const [pid, pgid, sid] = r.stdout.trim().split('\n')[0]!.trim().split(/\s+/).map(Number);
  assert.is(pgid, pid);
  assert.is(sid, pid);
  assert.is.not(pgid, process.pid);
});

test('a command longer than an environment string may be (128 KiB) still runs, in its own group', async () => {
  const big = `x=${'a'.repeat(200 * 1024)}; echo \${#x}; ps -o pid=,pgid= -p $$`;
  const r = await c.exec(big, { stdin: 'in' });
  assert.is(r.code, 0, r.stderr);
  const [len, ids] = r.stdout.trim().split('\n').map((l) => l.trim());
  assert.is(len, String(200 * 1024));
  const [pid, pgid] = ids!.split(/\s+/);
  assert.is(pgid, pid);
  assert.is((await c.exec(big)).code, 0);
});

test('a timeout kills the background children too, and says so', async () => {
  const err = await c.exec(`sleep ${u(4061)} & sleep ${u(406)}`, { timeout: 0.5 }).then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', 'command timed out after 0.5s; its process group on the host was killed');
  assert.not.ok(alive(u(406)));
  assert.not.ok(alive(u(4061)));
  assert.is((await c.exec('echo next')).stdout, 'next\n');
});

test('abort kills the running command\'s group and fails it with AbortedError', async () => {
  const running = c.exec(`sleep ${u(4071)} & sleep ${u(407)}`);
  const end = Date.now() + 10_000;
  while (!alive(u(407)) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.ok(await c.abort());
  const err = await running.then(() => undefined, (e: Error) => e);
  assert.instance(err, AbortedError);
  assert.not.ok(alive(u(407)));
  assert.not.ok(alive(u(4071)));
  assert.not.ok(await c.abort(), 'nothing left running');
});

test.after(() => c.close());
test.run();
