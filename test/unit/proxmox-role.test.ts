// The proxmox role's pieces that need no lab: declarations gathered from the inventory's hosts
// (errors name host and field, startup order), known_hosts replacement, and the API client
// against a local HTTPS server (token header, TLS verified against the CA file only, a failed
// task shows its log, a 403 names the token).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { declaredGuests, replaceKnownHost, withPending, waitingKeys } from '../../roles/proxmox/index.ts';
import { planGuest } from '../../roles/proxmox/config.ts';
import { PveClient, req } from '../../roles/proxmox/api.ts';
import { guestDefaults } from '../../roles/proxmox/vars.ts';
import { resolveInventory } from '../../runner/inventory.ts';
import { lookupKnownHosts } from '../../runner/connection/knownhosts.ts';
import { secret } from '../../runner/secret.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ2vW5l0T0ZmFrZWtleWZvcnRlc3RzMTIzNDU2Nzg phoenix@test';
const G = guestDefaults(
  { domain: 'x.lan', gateway: '10.0.0.1', bridge: 'vmbr0', prefix: 24, nameserver: '10.0.0.1', sshPublicKeys: [KEY] },
  { lxc103: '10.0.0.10', lxc101: '10.0.0.153', lxc102: '10.0.0.12', vm1001: '10.0.0.111', vm1002: '10.0.0.102' },
);
const dir = mkdtempSync(join(tmpdir(), 'phx-pve-'));

test('declarations come from every host, in startup order; problems name host and field', () => {
  const inv = resolveInventory({
    hosts: Object.fromEntries(
      Object.entries(G).map(([h, g]) => [h, { address: h, vars: { guestId: Number(h.replace(/\D/g, '')), guest: g } }]),
    ),
  });
  assert.equal(declaredGuests(inv.hosts.values()).map((d) => d.host.name), ['lxc103', 'lxc102', 'lxc101', 'vm1001', 'vm1002']);
  const bad = resolveInventory({
    hosts: { a: { address: 'a', vars: { guestId: 101, guest: G.lxc101 } }, b: { address: 'b', vars: { guestId: 101, guest: { ...G.lxc102, cores: 0 } } } },
  });
  assert.throws(() => declaredGuests(bad.hosts.values()), (e: Error) =>
    e.message === 'invalid Proxmox declarations:\n  - host "b": field "guest.cores": must be an integer 1 … 8192\n  - host "b": field "guestId": 101 is also the guestId of host "a"',
  );
});

test('known_hosts: the address\'s old key is replaced (hashed), others kept, file rewritten whole', () => {
  const kh = join(dir, 'known_hosts');
  const other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey01';
  writeFileSync(kh, `10.0.0.9 ${other}\n10.0.0.10 ${other}\n`);
  assert.ok(replaceKnownHost(kh, '10.0.0.10', KEY));
  const keys = lookupKnownHosts(kh, '10.0.0.10', 22);
  assert.is(keys.length, 1);
  assert.ok(keys[0]!.blob.equals(Buffer.from(KEY.split(' ')[1]!, 'base64')));
  assert.is(lookupKnownHosts(kh, '10.0.0.9', 22).length, 1);
  assert.not.ok(readFileSync(kh, 'utf8').includes('10.0.0.10'), 'hashed');
  assert.not.ok(replaceKnownHost(kh, '10.0.0.10', KEY), 'same key again: no change');
  assert.throws(() => replaceKnownHost(kh, '10.0.0.11', 'not a key'), /not an SSH public key/);
});

function certs() {
  const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'other']) o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.crt`);
  o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=pve', '-keyout', 'srv.key', '-out', 'srv.csr');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  o('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext', '-out', 'srv.crt');
}

test('client: token header, TLS against the CA file only, failed task log, 403 names the token', async () => {
  certs();
  const TOKEN = 'aaaabbbb-cccc-dddd-eeee-ffff00001111';
  const seen: string[] = [];
  const srv = createServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.crt')) }, (q, res) => {
    seen.push(`${q.method} ${q.url} ${q.headers.authorization}`);
    const send = (s: number, b: unknown) => {
      res.writeHead(s, { 'content-type': 'application/json' });
      res.end(JSON.stringify(b));
    };
    if (q.url!.includes('/tasks/') && q.url!.endsWith('/status')) return send(200, { data: { status: 'stopped', exitstatus: "storage 'x' does not exist" } });
    if (q.url!.includes('/tasks/') && q.url!.includes('/log')) return send(200, { data: [{ n: 1, t: 'starting' }, { n: 2, t: "TASK ERROR: storage 'x' does not exist" }] });
    if (q.url!.includes('/lxc/101/config')) return send(403, { data: null, message: 'Permission check failed (/vms/101, VM.Audit)' });
    send(200, { data: [] });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const c = new PveClient({ url, tokenId: 'phoenix@pve!t', tokenSecret: secret(TOKEN), caFile: join(dir, 'ca.crt') });
  try {
    assert.equal(await c.send(req.resources()), []);
    assert.is(seen[0], `GET /api2/json/cluster/resources?type=vm PVEAPIToken=phoenix@pve!t=${TOKEN}`);
    const err = await c.waitTask('pve', 'UPID:pve:1:2:3:vzcreate:105:x:', 'create lxc 105').then(() => undefined, (e: Error) => e);
    assert.match(err!.message, /create lxc 105 failed: task UPID:pve:1:2:3:vzcreate:105:x: ended with "storage 'x' does not exist"; its log ends:\n    starting\n    TASK ERROR: storage 'x' does not exist/);
    const denied = await c.send(req.config('pve', 'lxc', 101)).then(() => undefined, (e: Error) => e);
    assert.match(denied!.message, /HTTP 403 Permission check failed \(\/vms\/101, VM\.Audit\) \(the API token phoenix@pve!t lacks a privilege here/);
    assert.not.ok(denied!.message.includes(TOKEN));
    const wrong = new PveClient({ url, tokenId: 'phoenix@pve!t', tokenSecret: secret(TOKEN), caFile: join(dir, 'other.crt') });
    const tlsErr = await wrong.send(req.resources()).then(() => undefined, (e: Error) => e);
    wrong.close();
    assert.match(tlsErr!.message, /TLS verification against .*other\.crt failed/);
  } finally {
    c.close();
    srv.close();
  }
});

test('a change already pending is compared as made: not written again, reported as waiting', () => {
  const cur = { features: 'nesting=1', memory: 1024, swap: 512, hostname: 'Traefik-Internal', rootfs: 'local-lvm:vm-102-disk-0,size=8G', unprivileged: 1 };
  const pend = [{ key: 'features', value: 'nesting=1', pending: 'nesting=1,keyctl=1' }, { key: 'memory', value: 1024 }, { key: 'tags', value: 'x', delete: 1 }];
  const eff = withPending(cur, pend);
  assert.is(eff.features, 'nesting=1,keyctl=1');
  assert.equal(waitingKeys(pend), ['features', 'tags']);
  const g = { ...(G.lxc102 as any), features: { nesting: true, keyctl: true } };
  assert.not.ok('features' in planGuest('lxc102', 102, g, 'lxc', eff).put);
  assert.ok('features' in planGuest('lxc102', 102, g, 'lxc', cur).put);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
