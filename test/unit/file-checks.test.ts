// The file checks' shell (runner/facts.ts fileState, runner/modules/attrs.ts pathState) run
// through /bin/sh here: the content hash as sha256sum gives it, whichever tool made it (openssl
// dgst over 1 MiB), for odd names, through a link, and none for what is not a regular file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileState } from '../../runner/facts.ts';
import { pathState } from '../../runner/modules/attrs.ts';
import type { ActionContext } from '../../runner/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'phx-file-checks-'));
const ctx = {
  probe: async (cmd: string) => ({ code: 0, stdout: execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }), stderr: '' }),
} as unknown as ActionContext;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

const files: Record<string, Buffer> = {
  small: Buffer.from('hello\n'),
  empty: Buffer.alloc(0),
  'big, over 1 MiB': randomBytes(1024 * 1024 + 7),
  '-leading dash': Buffer.from('x'),
  'two  spaces|and a bar': Buffer.from('y'),
};
for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
symlinkSync(join(dir, 'small'), join(dir, 'link'));
mkdirSync(join(dir, 'sub'));

test('the hash of a regular file is its sha256, small, empty, over 1 MiB, with odd names', async () => {
  for (const [name, body] of Object.entries(files)) {
    const p = join(dir, name);
    const st = await pathState(ctx, p);
    assert.is(st.type, 'file', name);
    assert.is(st.size, body.length, name);
    assert.is(st.sha256, sha(body), `pathState ${name}`);
    assert.is((await fileState(ctx, p)).sha256, sha(body), `fileState ${name}`);
  }
});

test('a link is a link (its target resolved and hashed by whoever follows it); a directory has no hash', async () => {
  const l = await pathState(ctx, join(dir, 'link'));
  assert.is(l.type, 'link');
  assert.is(l.resolved?.path, join(dir, 'small'));
  assert.is(l.sha256, undefined);
  const d = await pathState(ctx, join(dir, 'sub'));
  assert.is(d.type, 'directory');
  assert.is(d.sha256, undefined);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
