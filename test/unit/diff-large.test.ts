// --diff on big files and on secret-bearing content (issue 10, item 5).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileDiff, unifiedDiff } from '../../runner/diff.ts';
import { Secret } from '../../runner/index.ts';

test('one changed line in a 5,000-line file is one small hunk', () => {
  const lines = Array.from({ length: 5000 }, (_, i) => `setting_${i} = ${i}`);
  const before = `${lines.join('\n')}\n`;
  lines[2500] = 'setting_2500 = changed';
  const d = unifiedDiff('/etc/big.conf', before, `${lines.join('\n')}\n`);
  assert.is(
    d,
    '--- /etc/big.conf (before)\n+++ /etc/big.conf (after)\n@@ -2498,7 +2498,7 @@\n setting_2497 = 2497\n setting_2498 = 2498\n setting_2499 = 2499\n-setting_2500 = 2500\n+setting_2500 = changed\n setting_2501 = 2501\n setting_2502 = 2502\n setting_2503 = 2503\n',
  );
});

test('a missing final newline is marked where it is', () => {
  assert.is(unifiedDiff('/f', 'a\nb', 'a\nc\n'), '--- /f (before)\n+++ /f (after)\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n');
});

test('a file emptied, and a file created', () => {
  assert.is(unifiedDiff('/f', 'a\n', ''), '--- /f (before)\n+++ /f (after)\n@@ -1,1 +0,0 @@\n-a\n');
  assert.is(unifiedDiff('/f', '', 'a\n'), '--- /f (before)\n+++ /f (after)\n@@ -0,0 +1,1 @@\n+a\n');
});

test('secret-bearing content: one line saying it changed, never an empty block', () => {
  const marker = '[secret content, not shown]\n';
  assert.is(fileDiff('/etc/app/token', marker, marker).text, '--- /etc/app/token: content changed; not shown (it holds a secret)\n');
  assert.is(fileDiff('/etc/app/token', '', marker).text, '--- /etc/app/token: content changed; not shown (it holds a secret)\n');
  // Two contents that differ only inside secrets would give an empty diff once masked.
  const old = new Secret('old-secret-value-41');
  const s = new Secret('rotated-secret-value-42');
  assert.is(fileDiff('/etc/app/env', `TOKEN=${old.reveal()}\n`, `TOKEN=${s.reveal()}\n`).text, '--- /etc/app/env: content changed; not shown (it holds a secret)\n');
  const e = fileDiff('/etc/app/env', `A=1\nTOKEN=${s.reveal()}\n`, `A=2\nTOKEN=${s.reveal()}\n`);
  assert.match(e.text, /-A=1\n\+A=2\n TOKEN=\*{8}/);
  assert.not.match(JSON.stringify(e), /rotated-secret-value-42/);
});

test.run();
