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

// Walks up from the command's shell to the first ancestor outside its process group: that is
// the long-lived shell. Prints the command's group, that group's leader, the shell's group, and
// the shell's command line.
const WHERE = `g=$(ps -o pgid= -p $$); p=$$; while :; do pp=$(ps -o ppid= -p $p); pg=$(ps -o pgid= -p $pp); [ "$pg" != "$g" ] && break; p=$pp; done; echo $g; echo $p; echo $pg; ps -o args= -p $pp`;
const where = (out: string) => {
  const [group, leader, shellGroup, shell] = out.trim().split('\n').slice(-4).map((l) => l.trim());
  return { group: Number(group), leader: Number(leader), shellGroup: Number(shellGroup), shell: shell! };
};

test('a command runs in a process group of its own, a job of the long-lived bash', async () => {
  const w = where((await c.exec(WHERE)).stdout);
  assert.is(w.leader, w.group, 'the group is led by the command (its first process)');
  assert.is.not(w.group, w.shellGroup);
  assert.is.not(w.group, process.pid);
  // The long-lived shell is bash with job control, not a setsid exec per command (issue 18, item 4).
  assert.match(w.shell, /bash --noprofile --norc$/);
  const r = await c.exec('ps -o args= -p $$');
  assert.is(r.stdout.trim(), '/bin/sh -c c=$PHX_CMD; unset PHX_CMD; eval "$c"', 'the command itself still runs under /bin/sh');
});

test('with PHOENIX_SHELL_JOBS=0, each command gets its group (and session) through setsid', async () => {
  process.env.PHOENIX_SHELL_JOBS = '0';
  const plain = new LocalConnection('plain');
  try {
    const r = await plain.exec('ps -o pid=,pgid=,sid= -p $$; ps -o args= -p $PPID');
    const [ids, parent] = r.stdout.trim().split('\n');
    const [pid, pgid, sid] = ids!.trim().split(/\s+/).map(Number);
    assert.is(pgid, pid);
    assert.is(sid, pid);
    assert.not.match(parent!, /bash/);
  } finally {
    delete process.env.PHOENIX_SHELL_JOBS;
    await plain.close();
  }
});

test('a command longer than an environment string may be (128 KiB) still runs, in its own group', async () => {
  const big = `x=${'a'.repeat(200 * 1024)}; echo \${#x}; ${WHERE}`;
  const r = await c.exec(big, { stdin: 'in' });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n')[0], String(200 * 1024));
  const w = where(r.stdout);
  assert.is(w.leader, w.group);
  assert.is.not(w.group, w.shellGroup);
  assert.is((await c.exec(big)).code, 0);
});

test('a file sent on stdin arrives whole, and so does the next command (the block framing holds)', async () => {
  const data = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
  const r = await c.exec('sha256sum', { stdin: data });
  const { createHash } = await import('node:crypto');
  assert.is(r.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'));
  const multi = await c.exec("printf 'a\\nb'; printf 'é%s' \"$1\"", { stdin: 'x' });
  assert.is(multi.stdout, 'a\nbé');
  assert.is((await c.exec('wc -c', { stdin: '' })).stdout.trim(), '0');
  assert.is((await c.exec('echo next')).stdout, 'next\n');
});

test('a command killed by a signal: its status, and nothing from the shell on its stderr', async () => {
  const r = await c.exec('echo out; echo err >&2; kill -TERM $$');
  assert.is(r.code, 143);
  assert.is(r.stdout, 'out\n');
  assert.is(r.stderr, 'err\n');
  assert.is((await c.exec('echo next')).stdout, 'next\n');
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
