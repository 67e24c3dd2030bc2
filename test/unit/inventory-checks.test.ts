import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAddress, jsonDuplicateKeys, loadInventory, resolveInventory } from '../../runner/inventory.ts';

test('addresses: hostnames and IP literals only', () => {
  for (const a of ['lxc101', 'lxc101.lan', 'example.com.', '192.168.201.153', '::1', 'fe80::1', 'my_host']) assert.ok(isAddress(a), a);
  for (const a of ['192.168.201.153 lxc101.lan', '', 'a..b', '-x', 'x-', '192.168.1.300', 'http://x', 'a/b', 'user@host']) assert.not.ok(isAddress(a), a);
});

test('duplicate JSON keys are found at every level, escapes included', () => {
  assert.equal(jsonDuplicateKeys('{"hosts":{"a":{"vars":{"k":1,"k":[{"x":1},{"x":2}]}},"b\\"":{"s":"\\"a\\":"},"a":{}}}'), [
    { path: ['hosts', 'a', 'vars'], key: 'k' },
    { path: ['hosts'], key: 'a' },
  ]);
  assert.equal(jsonDuplicateKeys('{"a":[{"k":1},{"k":2}]}'), []);
});

test('a TypeScript inventory is held to the same address rule', () => {
  assert.throws(() => resolveInventory({ hosts: { a: { address: '10.0.0.1 a' }, b: { address: 'b', jump: { address: 'j k' } } } }, 'inv.ts'), (e: Error) =>
    e.message === 'invalid inventory inv.ts:\n  - host "a": field "address": "10.0.0.1 a" is not a hostname or an IPv4/IPv6 address\n  - host "b": field "jump.address": "j k" is not a hostname or an IPv4/IPv6 address',
  );
});

test('a TypeScript inventory whose secretFromEnv() variable is unset: an inventory error naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-inv-'));
  try {
    const file = join(dir, 'inv.ts');
    const runner = fileURLToPath(new URL('../../runner/index.ts', import.meta.url));
    writeFileSync(file, `import { secretFromEnv } from ${JSON.stringify(runner)};\nexport default { hosts: { a: { address: 'a', becomePassword: secretFromEnv('PHX_UNSET_TS_PW') } } };\n`);
    const err = await loadInventory(file).then(() => undefined, (e: Error) => e);
    assert.is(err?.name, 'InventoryError');
    assert.is(err?.message, `invalid inventory ${file}: secret: environment variable PHX_UNSET_TS_PW is not set`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
