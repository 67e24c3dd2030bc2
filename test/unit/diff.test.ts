import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unifiedDiff, fileDiff } from '../../runner/diff.ts';
import { Secret } from '../../runner/index.ts';

test('equal content has no diff', () => {
  assert.is(unifiedDiff('/f', 'a\n', 'a\n'), '');
});

test('a one-line change with context, in unified format', () => {
  const before = 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\n';
  const after = 'l1\nl2\nl3\nl4\nCHANGED\nl6\nl7\nl8\n';
  assert.is(
    unifiedDiff('/etc/x', before, after),
    '--- /etc/x (before)\n+++ /etc/x (after)\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+CHANGED\n l6\n l7\n l8\n',
  );
});

test('a new file is all additions; far-apart changes make two hunks', () => {
  assert.match(unifiedDiff('/n', '', 'a\nb\n'), /@@ -0,0 \+1,2 @@\n\+a\n\+b\n/);
  const a = Array.from({ length: 20 }, (_, i) => `x${i}`).join('\n') + '\n';
  const b = a.replace('x1\n', 'y1\n').replace('x18\n', 'y18\n');
  assert.is(unifiedDiff('/f', a, b).match(/^@@/gm)!.length, 2);
});

test('fileDiff masks secret values', () => {
  const s = new Secret('top-secret-token');
  const d = fileDiff('/f', 'token=old\n', `token=${s.reveal()}\n`);
  assert.not.match(d.text, /top-secret-token/);
  assert.match(d.text, /\+token=\*\*\*\*\*\*\*\*/);
});

test.run();
