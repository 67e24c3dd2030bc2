// Issue 10, item 5, against real sshd hosts: listr2's task count includes handlers, a
// terminal of 0 columns gets plain lines, wait_for in check mode after unapplied changes is
// "unknown", and --diff of secret-bearing content says so in one line.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { copy, play, playbook, role, run, secret, task, waitFor } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, snapshot, type TestVars } from './helpers.ts';

const S = suite('small things');
let lab: SshdLab;
let inv: string;
S.before(async () => {
  lab = await hosts(2);
  inv = join(lab.dir, 'inv.json');
  writeFileSync(inv, JSON.stringify(inventoryFor(lab)));
});
S.after(async () => {
  await lab?.stop();
});

/** The fixture playbook on a real pseudo-terminal of the given width (util-linux `script`). */
function onTerminal(cols: number, limit: string) {
  const cmd = `stty cols ${cols} rows 40; exec node --import=tsx test/fixtures/interrupt.ts --inventory ${inv} --limit ${limit}`;
  const { FORCE_COLOR: _, ...env } = process.env; // set by the test runner; node warns when both are set
  const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000, env: { ...env, NO_COLOR: '1', PHX_TEST_SLEEP: '0.1' } });
  return { code: r.status, out: r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '') };
}

S('listr2 counts the handlers that ran in the total: 4/4, never 4/3', () => {
  const r = onTerminal(100, 'host0');
  assert.is(r.code, 0, r.out);
  const counts = [...r.out.matchAll(/host0 {2}(\d+)\/(\d+) tasks/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.ok(counts.length > 0, r.out);
  for (const [n, total] of counts) assert.ok(n! <= total!, `listr2 showed ${n}/${total} tasks`);
  assert.match(r.out, 'host0  4/4 tasks (1 handler), 4 changed'); // 3 tasks + the handler "note"
});

S('a terminal that reports 0 columns gets plain lines, not one character per line', () => {
  const r = onTerminal(0, 'host1');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'PLAY [slow on all] host1\nchanged     host1 | slow | first (created)\n');
  assert.match(r.out, /host1\s+ok=0\s+changed=5/);
});

S('check mode: wait_for after unapplied changes is unknown, not ok', async () => {
  const book = playbook<TestVars>('wait', [
    play({
      hosts: 'test',
      roles: [
        role<TestVars>({
          name: 'w',
          tasks: [
            task({ name: 'install', do: ({ vars }) => copy({ dest: `${vars.root}/service.conf`, content: 'listen 1\n' }) }),
            // Nothing listens on port 1: in a real run the service above would.
            task({ name: 'service answers', do: waitFor({ port: 1, timeout: 1 }) }),
            task({ name: 'service answers (from control)', do: waitFor({ port: 1, timeout: 1, from: 'control' }) }),
          ],
        }),
      ],
    }),
  ]);
  const before = snapshot(lab.hosts[0]!.root);
  const res = await run(book, { inventory: inventoryFor(lab), limit: ['host0'], check: true, out: capture().out });
  assert.is(res.exitCode, 0);
  const tasks = res.plays[0]!.hosts.host0!.tasks;
  assert.equal(tasks.map((t) => t.status), ['changed', 'unknown', 'unknown']);
  assert.match(tasks[1]!.msg!, 'not ready yet (earlier changes not applied in check mode)');
  assert.is(res.recap.host0!.unknown, 2);
  assert.equal(snapshot(lab.hosts[0]!.root), before);
});

S('--diff of secret-bearing content prints one line saying it changed', async () => {
  const token = secret('s3cr3t-token-for-diff-test');
  const book = (content: ReturnType<typeof secret>) =>
    playbook<TestVars>('s', [play({ hosts: 'test', roles: [role<TestVars>({ name: 's', tasks: [task({ name: 'token', do: ({ vars }) => copy({ dest: `${vars.root}/token`, content }) })] })] })]);
  assert.is((await run(book(token), { inventory: inventoryFor(lab), limit: ['host1'], out: capture().out })).exitCode, 0);
  const c = capture();
  const res = await run(book(secret('a-rotated-token-value-99')), { inventory: inventoryFor(lab), limit: ['host1'], check: true, diff: true, out: c.out });
  assert.is(res.exitCode, 0);
  const path = join(lab.hosts[1]!.root, 'token');
  assert.match(c.text(), `changed     host1 | s | token (content changed)\n--- ${path}: content changed; not shown (it holds a secret)\n`);
  assert.not.match(c.text(), /rotated-token|s3cr3t/);
});

S('--diff of one changed line in a 3,000-line file on a host is one small hunk', async () => {
  const lines = Array.from({ length: 3000 }, (_, i) => `option_${i} = ${i}`);
  const path = join(lab.hosts[0]!.root, 'big.conf');
  writeFileSync(path, `${lines.join('\n')}\n`);
  lines[1500] = 'option_1500 = tuned';
  const content = `${lines.join('\n')}\n`;
  const book = playbook<TestVars>('big', [play({ hosts: 'test', roles: [role<TestVars>({ name: 'b', tasks: [task({ name: 'big config', do: ({ vars }) => copy({ dest: `${vars.root}/big.conf`, content }) })] })] })]);
  const c = capture();
  const res = await run(book, { inventory: inventoryFor(lab), limit: ['host0'], check: true, diff: true, out: c.out });
  assert.is(res.exitCode, 0);
  const diff = c.text().slice(c.text().indexOf(`--- ${path}`), c.text().indexOf('\nRECAP'));
  assert.is(
    diff.trim(),
    `--- ${path} (before)\n+++ ${path} (after)\n@@ -1498,7 +1498,7 @@\n option_1497 = 1497\n option_1498 = 1498\n option_1499 = 1499\n-option_1500 = 1500\n+option_1500 = tuned\n option_1501 = 1501\n option_1502 = 1502\n option_1503 = 1503`,
  );
});

S.run();
