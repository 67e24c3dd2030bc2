// Contract: every request shape the proxmox role sends validates against Proxmox VE's own API
// schema (roles/proxmox/schema/pve-api-subset.json, pve-docs 9.1.3), property strings included,
// through the adapter from Proxmox's schema dialect to ajv. Deliberately wrong requests fail.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PveAjv, loadPveApi, wire, describe, splitPropString } from '../../roles/proxmox/schema/adapter.ts';
import { req, type PveRequest } from '../../roles/proxmox/api.ts';
import { lxcCreateBody, vmCloneBody, managedKeys, planGuest } from '../../roles/proxmox/config.ts';
import { guestDefaults, type LxcGuest, type VmGuest } from '../../roles/proxmox/vars.ts';

const api = loadPveApi();
const pve = new PveAjv();
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ2vW5l0T0ZmFrZWtleWZvcnRlc3RzMTIzNDU2Nzg phoenix@test';
const G = guestDefaults(
  { domain: 'internal.thinkheads.ai', gateway: '10.0.0.1', bridge: 'vmbr0', prefix: 24, nameserver: '10.0.0.1', sshPublicKeys: [KEY, 'ssh-rsa AAAAB3NzaC1yc2E= other'] },
  { lxc103: '10.0.0.10', lxc101: '10.0.0.153', lxc102: '10.0.0.12', vm1001: '10.0.0.111', vm1002: '10.0.0.102' },
);
const lxc = { ...(G.lxc102 as LxcGuest), net0: { ...(G.lxc102 as LxcGuest).net0, hwaddr: 'BC:24:11:00:00:01', firewall: true }, features: { nesting: true, keyctl: true } };
const vm = G.vm1001 as VmGuest;
const UPID = 'UPID:pve:0000A1B2:0001C3D4:6745A1B2:vzcreate:104:phoenix@pve!site:';

function check(q: PveRequest): string | undefined {
  const v = pve.request(api, q.path, q.method);
  return v(wire({ ...q.pathParams, ...q.params })) ? undefined : describe(v.errors);
}

/** Every request shape phoenix produces, for both kinds of guest. */
function shapes(): [string, PveRequest][] {
  const out: [string, PveRequest][] = [['resources', req.resources()]];
  for (const [kind, g, vmid] of [['lxc', lxc, 102], ['qemu', vm, 1001]] as const) {
    out.push([`${kind} config`, req.config('pve', kind, vmid)]);
    out.push([`${kind} pending`, req.pending('pve', kind, vmid)]);
    out.push([`${kind} status`, req.status('pve', kind, vmid)]);
    out.push([`${kind} put every managed key`, req.putConfig('pve', kind, vmid, managedKeys(g), 'a'.repeat(40))]);
    out.push([`${kind} start`, req.start('pve', kind, vmid)]);
    out.push([`${kind} reboot`, req.reboot('pve', kind, vmid)]);
  }
  out.push(['lxc resize', req.resize('pve', 'lxc', 102, 'rootfs', 12, 'b'.repeat(40))]);
  out.push(['qemu resize', req.resize('pve', 'qemu', 1001, 'scsi0', 40, 'b'.repeat(40))]);
  out.push(['create lxc', req.createLxc('pve', lxcCreateBody(104, lxc))]);
  out.push(['create lxc, no optional keys', req.createLxc('pve', lxcCreateBody(105, { ...lxc, nameserver: undefined, searchdomain: undefined, tags: [], features: {}, sshPublicKeys: [KEY] }))]);
  out.push(['clone vm', req.clone('pve', 9000, vmCloneBody(1003, vm))]);
  out.push(['clone vm to a storage', req.clone('pve', 9000, vmCloneBody(1003, { ...vm, storage: 'local-lvm' }))]);
  out.push(['task status', req.taskStatus('pve', UPID)]);
  out.push(['task log', req.taskLog('pve', UPID)]);
  // The plan's own PUT (net0 merged with what Proxmox reported).
  const plan = planGuest('lxc102', 102, { ...lxc, memory: 2048, net0: { ...lxc.net0, ip: '10.0.0.22/24' } }, 'lxc', {
    net0: 'name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.12/24,type=veth', memory: 1024, rootfs: 'local-lvm:vm-102-disk-0,size=8G', unprivileged: 1,
  });
  out.push(['planned put', req.putConfig('pve', 'lxc', 102, plan.put, 'c'.repeat(40))]);
  return out;
}

test('every request shape phoenix sends validates against the Proxmox schema', () => {
  const bad = shapes().map(([n, q]) => [n, check(q)]).filter(([, e]) => e);
  assert.equal(bad, []);
});

test('the shapes cover every path and method of the vendored subset', () => {
  const sent = new Set(shapes().map(([, q]) => `${q.method} ${q.path}`));
  const all = Object.entries(api.paths).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m} ${p}`));
  assert.equal(all.filter((k) => !sent.has(k)), []);
});

test('deliberately wrong requests fail, naming the key', () => {
  const wrong: [PveRequest, RegExp][] = [
    [req.putConfig('pve', 'lxc', 102, { net0: 'name=eth0,bridge=vmbr0,ip=10.0.0.300/24' }, 'a'), /net0/],
    [req.putConfig('pve', 'lxc', 102, { net0: 'name=eth0,bridge=vmbr0,colour=blue' }, 'a'), /colour/],
    [req.putConfig('pve', 'lxc', 102, { startup: 'order=1,up=soon' }, 'a'), /startup/],
    [req.putConfig('pve', 'lxc', 102, { memory: 8 }, 'a'), /memory.*>= 16/],
    [req.putConfig('pve', 'lxc', 102, { features: 'nesting=maybe' }, 'a'), /features/],
    [req.putConfig('pve', 'qemu', 1001, { sshkeys: KEY }, 'a'), /sshkeys/],
    [req.putConfig('pve', 'qemu', 1001, { ipconfig0: 'ip=10.0.0.5' }, 'a'), /ipconfig0/],
    [req.putConfig('pve', 'lxc', 102, { memroy: 1024 }, 'a'), /memroy/],
    [req.createLxc('pve', { ...lxcCreateBody(104, lxc), ostemplate: undefined as never }), /ostemplate/],
    [req.resize('pve', 'lxc', 102, 'rootfs', 12, 'x'.repeat(41)), /digest/],
    [req.clone('pve', 9000, { ...vmCloneBody(1003, vm), newid: 42 }), /newid/],
  ];
  for (const [q, re] of wrong) {
    const e = check({ ...q, params: Object.fromEntries(Object.entries(q.params).filter(([, v]) => v !== undefined)) });
    assert.ok(e, `${q.method} ${q.path} ${JSON.stringify(q.params)} should fail`);
    assert.match(e!, re);
  }
});

test('adapter: property strings with a default key, duplicates refused', () => {
  assert.equal(splitPropString('local-lvm:8,size=8G', 'volume'), { volume: 'local-lvm:8', size: '8G' });
  assert.is(splitPropString('a=1,a=2', undefined), 'key "a" given twice');
});

test.run();
