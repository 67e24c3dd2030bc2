// The long-lived shell protocol, on the local connection (same code as over SSH).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalConnection } from '../../runner/connection/local.ts';
import { Secret } from '../../runner/index.ts';

const c = new LocalConnection('local');

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

test.after(() => c.close());
test.run();
