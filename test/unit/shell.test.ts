// The long-lived shell protocol, on the local connection (same code as over SSH), both ways: each
// command a job of bash (the default where there is bash) and a setsid exec per command
// (PHOENIX_SHELL_JOBS=0, and hosts without bash).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalConnection } from '../../runner/connection/local.ts';
import type { Connection } from '../../runner/connection/types.ts';
import { Secret } from '../../runner/index.ts';

for (const mode of ['jobs', 'setsid'] as const) {
const test = suite(`shell (${mode})`);
const local = new LocalConnection(`local-${mode}`);
// The way is chosen when a shell starts (PHOENIX_SHELL_JOBS is read then, synchronously).
const c: Pick<Connection, 'exec'> = {
  exec: (cmd, opts) => {
    process.env.PHOENIX_SHELL_JOBS = mode === 'jobs' ? '1' : '0';
    try {
      return local.exec(cmd, opts);
    } finally {
      delete process.env.PHOENIX_SHELL_JOBS;
    }
  },
};

test('the shell runs commands the way this suite is for', async () => {
  const r = await c.exec('ps -o args= -p $PPID');
  if (mode === 'jobs') assert.match(r.stdout, /bash --noprofile --norc/);
  else assert.not.match(r.stdout, /bash/);
});

test('exit status, stdout and stderr are kept apart', async () => {
  const r = await c.exec('echo out; echo err >&2; exit 3');
  assert.equal([r.code, r.stdout, r.stderr], [3, 'out\n', 'err\n']);
});

test('output without a final newline is exact', async () => {
  assert.is((await c.exec("printf 'abc'")).stdout, 'abc');
});

test('a syntax error, exit or cd in one command does not harm the next', async () => {
  assert.is((await c.exec('if then fi')).code, 2);
  assert.is((await c.exec('cd /; exit 7')).code, 7);
  const r = await c.exec('echo alive; pwd');
  assert.is(r.stdout, `alive\n${process.cwd()}\n`);
});

test('binary stdin round-trips exactly', async () => {
  const data = Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 256));
  const r = await c.exec('cat', { stdin: data });
  assert.ok(r.stdoutBuffer.equals(data));
});

test('a Secret passed as env or stdin appears in no process argument list', async () => {
  const s = new Secret('argv-must-not-see-this-7731');
  const r = await c.exec('sleep 0.2 & ps -eo args; wait; printf %s "$TOKEN" | wc -c; cat', { env: { TOKEN: s }, stdin: s });
  const ps = r.stdout.split('\n').slice(0, -2).join('\n');
  assert.match(ps, /sleep 0\.2/); // ps really listed the processes running beside the secret
  assert.not.match(ps, /argv-must-not-see-this/);
  assert.match(r.stdout, /27\nargv-must-not-see-this-7731$/);
});

test('a timeout gives a clear error and the next command gets a fresh shell', async () => {
  try {
    await c.exec('sleep 5', { timeout: 0.3 });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /timed out after 0.3s/);
  }
  assert.is((await c.exec('echo ok')).stdout, 'ok\n');
});

test('Secret env values arrive byte for byte (0x01, 0x7f, UTF-8), trailing newlines dropped as before', async () => {
  const v = 'q\x01\x7fz\x01\x01 é\n\n';
  const r = await c.exec('printf %s "$A" | od -An -tx1 | tr -d " \\n"', { env: { A: new Secret(v), B: 'plain\x01' } });
  assert.is(r.stdout, Buffer.from(v.replace(/\n+$/, '')).toString('hex'));
});

test('a NUL byte in an env value or a long command is refused before anything runs', async () => {
  const e1 = await c.exec('true', { env: { A: new Secret('a\0b') } }).then(() => undefined, (e: Error) => e);
  assert.match(e1?.message ?? '', 'environment variable A: a value cannot contain a NUL byte');
  const e2 = await c.exec(`: ${'x'.repeat(70 * 1024)}\0`).then(() => undefined, (e: Error) => e);
  assert.match(e2?.message ?? '', 'NUL');
  assert.is((await c.exec('echo next')).stdout, 'next\n');
});

test('a command over 64 KiB with stdin and a Secret env: all three arrive', async () => {
  const cmd = `x='${'y'.repeat(80 * 1024)}'; printf '%s %s ' "\${#x}" "$T"; cat`;
  const r = await c.exec(cmd, { stdin: 'in\x01put', env: { T: new Secret('tok') } });
  assert.is(r.stdout, `${80 * 1024} tok in\x01put`);
});

test('a command that exits without reading a large stdin leaves the next command intact', async () => {
  const data = Buffer.from(`0000000010\necho pwned\n${'z'.repeat(4 * 1024 * 1024)}`);
  assert.is((await c.exec('exit 0', { stdin: data })).code, 0);
  const r = await c.exec('echo next');
  assert.equal([r.code, r.stdout, r.stderr], [0, 'next\n', '']);
});

if (mode === 'jobs')
  test('a command that stops itself is killed, not left stopped with its children', async () => {
    const tag = `${process.pid}.${Date.now() % 100000}`;
    const r = await c.exec(`sleep 3${tag} & kill -STOP $$`, { timeout: 20 });
    assert.is(r.code, 128 + 19);
    const left = await c.exec(`pgrep -f 'sleep 3${tag}' || echo none`);
    assert.is(left.stdout, 'none\n');
  });

test.after(() => local.close());
test.run();
}
