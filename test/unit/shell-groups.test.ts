// Each command runs in a process group of its own; a timeout or an abort kills the whole
// group (issue 10, item 1), here on the local connection (the SSH one: test/integration/interrupt.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { LocalConnection } from '../../runner/connection/local.ts';
import { AbortedError } from '../../runner/connection/index.ts';

const c = new LocalConnection('local');
const alive = (arg: string) => spawnSync('pgrep', ['-xf', `sleep ${arg}`]).status === 0;
// Durations unique to this run: other checkouts on the same machine run these tests too.
const u = `.${process.pid}`;

/** The process groups of this process and of the long-lived shells it started (its children). */
function ownGroups(): number[] {
  const kids = spawnSync('ps', ['-o', 'pgid=', '--ppid', String(process.pid)], { encoding: 'utf8' }).stdout;
  const self = spawnSync('ps', ['-o', 'pgid=', '-p', String(process.pid)], { encoding: 'utf8' }).stdout;
  return `${kids}\n${self}`.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}

test('a command runs in a process group of its own, not the shell\'s', async () => {
  const r = await c.exec('ps -o pid=,pgid= -p $$; echo $$');
  const [pid, pgid] = r.stdout.trim().split('\n')[0]!.trim().split(/\s+/).map(Number);
  assert.is(pgid, pid);
  assert.not.ok(ownGroups().includes(pgid!), `group ${pgid} is the shell's or this process's: ${ownGroups()}`);
});

test('with bash on the host, a command is a job of the long-lived bash: no setsid exec, the session stays the shell\'s', async () => {
  if (spawnSync('sh', ['-c', 'command -v bash']).status !== 0 || process.env.PHOENIX_SHELL_JOBS === '0') return;
  const r = await c.exec('ps -o sid=,pgid= -p $$; ps -o comm= -p $PPID');
  const [ids, parent] = r.stdout.trim().split('\n').map((l) => l.trim());
  const [sid, pgid] = ids!.split(/\s+/).map(Number);
  assert.is.not(sid, pgid, 'a session of its own: setsid ran');
  assert.is(parent, 'bash');
});

test('a command longer than an environment string may be (128 KiB) still runs, in its own group', async () => {
  const big = `x=${'a'.repeat(200 * 1024)}; echo \${#x}; ps -o pgid= -p $$`;
  const r = await c.exec(big, { stdin: 'in' });
  assert.is(r.code, 0, r.stderr);
  const [len, pgid] = r.stdout.trim().split('\n').map((l) => l.trim());
  assert.is(len, String(200 * 1024));
  assert.not.ok(ownGroups().includes(Number(pgid)), `group ${pgid} is the shell's or this process's`);
  assert.is((await c.exec(big)).code, 0);
});

test('a timeout kills the background children too, and says so', async () => {
  const err = await c.exec(`sleep 4061${u} & sleep 406${u}`, { timeout: 0.5 }).then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', 'command timed out after 0.5s; its process group on the host was killed');
  assert.not.ok(alive(`406${u}`));
  assert.not.ok(alive(`4061${u}`));
  assert.is((await c.exec('echo next')).stdout, 'next\n');
});

test('abort kills the running command\'s group and fails it with AbortedError', async () => {
  const running = c.exec(`sleep 4071${u} & sleep 407${u}`);
  const end = Date.now() + 10_000;
  while (!alive(`407${u}`) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.ok(await c.abort());
  const err = await running.then(() => undefined, (e: Error) => e);
  assert.instance(err, AbortedError);
  assert.not.ok(alive(`407${u}`));
  assert.not.ok(alive(`4071${u}`));
  assert.not.ok(await c.abort(), 'nothing left running');
});

test.after(() => c.close());
test.run();
