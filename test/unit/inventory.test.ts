import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, resolveInventory, Secret } from '../../runner/index.ts';
import phoenix from '../../inventory.ts';

const dir = mkdtempSync(join(tmpdir(), 'phx-inv-'));
const put = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

test('YAML: a wrong type names the file, the host and the field', async () => {
  const f = put('bad-port.yaml', 'hosts:\n  web1:\n    address: 10.0.0.5\n    port: "twenty-two"\n');
  const msg = await errorOf(loadInventory(f));
  assert.ok(msg.includes(f), msg);
  assert.match(msg, /host "web1": field "port": must be integer/);
});

test('YAML: a missing address and an unknown field are both reported', async () => {
  const f = put('two-errors.yaml', 'hosts:\n  db1:\n    user: admin\n    adress: 10.0.0.6\n');
  const msg = await errorOf(loadInventory(f));
  assert.match(msg, /host "db1": field "address": is required/);
  assert.match(msg, /host "db1": field "adress": unknown field/);
});

test('JSON: a jump host that does not exist is named', async () => {
  const f = put('jump.json', JSON.stringify({ hosts: { a: { address: '10.0.0.1', jump: 'bastion' } } }));
  const msg = await errorOf(loadInventory(f));
  assert.match(msg, /host "a": field "jump": unknown host "bastion"/);
});

test('JSON: a group listing an unknown host is named', async () => {
  const f = put('group.json', JSON.stringify({ groups: { web: { hosts: ['ghost'] } }, hosts: { a: { address: '10.0.0.1' } } }));
  assert.match(await errorOf(loadInventory(f)), /group "web": field "hosts": unknown host "ghost"/);
});

test('YAML 1.2: "yes" stays a string and a mode stays as written', async () => {
  const f = put('types.yaml', 'vars:\n  flag: yes\n  mode: "0644"\nhosts:\n  a:\n    address: 10.0.0.1\n');
  const inv = await loadInventory(f);
  assert.equal(inv.hosts.get('a')!.vars, { flag: 'yes', mode: '0644' });
});

test('secrets in YAML are references, and become Secret values', async () => {
  process.env.PHX_TEST_PW = 'correct-horse-battery';
  const f = put('secret.yaml', 'hosts:\n  a:\n    address: 10.0.0.1\n    user: ops\n    become: true\n    becomePassword: { $secret: { env: PHX_TEST_PW } }\n');
  const inv = await loadInventory(f);
  const pw = inv.hosts.get('a')!.becomePassword!;
  assert.instance(pw, Secret);
  assert.is(pw.reveal(), 'correct-horse-battery');
  assert.is(String(pw), '********');
  assert.not.match(JSON.stringify(inv.hosts.get('a')), /correct-horse/);
  const missing = put('secret-missing.yaml', 'hosts:\n  a:\n    address: 10.0.0.1\n    becomePassword: { $secret: { env: PHX_NOT_SET_ANYWHERE } }\n');
  assert.match(await errorOf(loadInventory(missing)), /PHX_NOT_SET_ANYWHERE is not set/);
});

test('vars merge: global < group (declaration order) < host; connection settings likewise', () => {
  const inv = resolveInventory<{ a: number; b: number; c: number }>({
    vars: { a: 1, b: 1, c: 1 },
    groups: { first: { vars: { b: 2, c: 2 }, user: 'g1', port: 2222 }, second: { vars: { c: 3 }, user: 'g2' } },
    hosts: { h: { address: '10.0.0.9', groups: ['second', 'first'], vars: { a: 9 }, port: 22 } },
  });
  const h = inv.hosts.get('h')!;
  assert.equal(h.vars, { a: 9, b: 2, c: 3 });
  assert.is(h.user, 'g2');
  assert.is(h.port, 22);
  assert.equal(inv.groups.get('all'), ['h']);
});

test('the default inventory is the Phoenix topology, guests behind the Proxmox jump host', async () => {
  const inv = resolveInventory(phoenix, 'inventory.ts');
  assert.equal([...inv.hosts.keys()].sort(), ['lxc101', 'lxc102', 'lxc103', 'proxmox', 'vm1001', 'vm1002']);
  assert.is(inv.hosts.get('lxc103')!.address, '10.0.0.10');
  assert.is(inv.hosts.get('lxc101')!.address, '10.0.0.153');
  assert.is(inv.hosts.get('vm1001')!.jump!.address, '10.0.0.13');
  assert.is(inv.hosts.get('proxmox')!.jump, undefined);
  assert.equal(inv.groups.get('swarm_workers'), ['vm1002']);
});

test('the compiled validator is generated from the current schema (npm run gen:validator)', async () => {
  const { validatorSource, VALIDATOR_PATH } = await import('../../runner/gen-validator.ts');
  const { readFileSync } = await import('node:fs');
  assert.ok(readFileSync(VALIDATOR_PATH, 'utf8') === validatorSource(), 'runner/inventory-validator.generated.js is stale: run npm run gen:validator');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
