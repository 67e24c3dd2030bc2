// Ctrl-C and command timeouts against real sshd hosts (issue 10, item 1). The long command
// runs as root through sudo (become), in the background and the foreground, so a kill that
// reached only the shell, or only the login user's processes, would leave it running.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { run, shell, task, role, play, playbook } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

/** NO_COLOR without the runner's FORCE_COLOR: Node 24 warns on stderr when both are set. */
function plainEnv(): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _, ...env } = process.env;
  return { ...env, NO_COLOR: '1' };
}

const I = suite('interrupts and timeouts');
let lab: SshdLab;
let inv: string;
I.before(async () => {
  lab = await hosts(2);
  inv = join(lab.dir, 'inv.json');
  writeFileSync(inv, JSON.stringify(inventoryFor(lab)));
});
I.after(async () => {
  await lab?.stop();
});

/** Processes whose command line is exactly `sleep <arg>`, with their user: what `ps` on the host shows. */
function sleeps(arg: string): { pid: number; user: string }[] {
  const r = spawnSync('ps', ['-eo', 'pid=,user=,args='], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[2] === 'sleep' && f[3] === arg && f.length === 4)
    .map((f) => ({ pid: Number(f[0]), user: f[1]! }));
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, seconds = 60) {
  const end = Date.now() + seconds * 1000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await wait(100);
  }
}

function start(sleep: string): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn('node', ['--import=tsx', 'test/fixtures/interrupt.ts', '--inventory', inv], {
    env: { ...plainEnv(), PHX_TEST_SLEEP: sleep },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, out: () => out, err: () => err, exit };
}

I('first Ctrl-C: running commands finish, no new task starts, recap marks the hosts, exit 130', async () => {
  const p = start('4.0713');
  await until('the long command on both hosts', () => sleeps('4.0713').length === 2);
  p.child.kill('SIGINT');
  const code = await p.exit;
  assert.is(code, 130, p.err() + p.out());
  assert.match(p.err(), 'interrupted: waiting for 2 running tasks (Ctrl-C again to abort)');
  for (const [i, h] of lab.hosts.entries()) {
    assert.ok(existsSync(join(h.root, 'long-done')), `host${i}: the running command was let finish`);
    assert.not.ok(existsSync(join(h.root, 'after')), `host${i}: no task started after Ctrl-C`);
    assert.not.ok(existsSync(join(h.root, 'second-play')), `host${i}: no play started after Ctrl-C`);
    assert.not.ok(existsSync(join(h.root, 'handler-ran')), `host${i}: handlers do not start after Ctrl-C`);
  }
  assert.match(p.out(), /host0\s+ok=0\s+changed=2\s+failed=0\s+skipped=0\s+unreachable=0\s+INTERRUPTED/);
  assert.match(p.out(), 'host1: stopped before "after" (play "slow on all"); notified handlers not run: note');
  assert.match(p.out(), 'plays not started: second');
});

I('second Ctrl-C: the commands\' whole process groups are killed on the hosts (as root), and it says where', async () => {
  const p = start('3007');
  await until('the long command on both hosts', () => sleeps('3007').length === 2 && sleeps('30071').length === 2);
  assert.equal([...new Set(sleeps('3007').map((s) => s.user))], ['root'], 'the command runs as root through sudo');
  p.child.kill('SIGINT');
  await until('the first notice', () => p.err().includes('interrupted: waiting for 2 running tasks'));
  p.child.kill('SIGINT');
  const code = await p.exit;
  assert.is(code, 130, p.err() + p.out());
  assert.match(p.err(), /aborted: killed the commands of host\d \("long"\), host\d \("long"\); these hosts may be left half-done/);
  assert.match(p.out(), 'host0: aborted during "long" (play "slow on all"): its commands were killed; the host may be left half-done\n');
  assert.match(p.out(), /failed\s+host1 \| slow \| long\n\s+error: aborted by a second Ctrl-C/);
  assert.equal(sleeps('3007'), [], 'the foreground command is gone');
  assert.equal(sleeps('30071'), [], 'its background child is gone too');
  for (const h of lab.hosts) assert.not.ok(existsSync(join(h.root, 'after')));
});

// Through npm (`npm exec`, as `npx phoenix` runs): npm passes the terminal's Ctrl-C on too. (`npx zx x.ts`
// needs Node >= 22.18 since phoenix's .npmrc sets no node option.)
I('one Ctrl-C on a real terminal through npm exec is one interrupt, not an abort', async () => {
  for (const h of lab.hosts) rmSync(join(h.root, 'long-done'), { force: true });
  const { FORCE_COLOR: _, ...env } = process.env;
  const cmd = `stty cols 100 rows 40; exec npm exec -- node --import=phoenix/boot test/fixtures/interrupt.ts --inventory ${inv}`;
  const p = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { ...env, NO_COLOR: '1', PHX_TEST_SLEEP: '5.0719' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  const closed = new Promise((r) => p.once('close', r));
  await until('the long command on both hosts', () => sleeps('5.0719').length === 2);
  p.stdin!.write('\x03'); // the terminal's Ctrl-C: SIGINT to npx and the playbook alike
  await closed;
  const text = out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  assert.is(text.split('interrupted: waiting for 2 running tasks (Ctrl-C again to abort)').length - 1, 1, text);
  assert.not.match(text, 'aborting');
  assert.match(text, /host0\s+ok=\d+\s+changed=\d+\s+failed=0\s+skipped=0\s+unreachable=0\s+INTERRUPTED/);
  for (const h of lab.hosts) assert.ok(existsSync(join(h.root, 'long-done')), 'the running command was let finish');
});

I('a command that times out has its whole process group killed on the host', async () => {
  const book = playbook<TestVars>('timeout', [
    play({ hosts: 'test', roles: [role<TestVars>({ name: 't', tasks: [task({ name: 'slow', do: shell('sleep 30231 & sleep 3023', { timeout: 2 }) }), task({ name: 'next', do: shell('true') })] })] }),
  ]);
  const c = capture();
  const res = await run(book, { inventory: inventoryFor(lab), limit: ['host0'], out: c.out });
  assert.is(res.exitCode, 2);
  assert.match(c.text(), 'error: host0: command timed out after 2s; its process group on the host was killed');
  assert.equal(sleeps('3023'), []);
  assert.equal(sleeps('30231'), []);
});

I.run();
