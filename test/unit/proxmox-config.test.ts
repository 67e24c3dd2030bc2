import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePropString, parseStartup, parseSshKeys, encodeSshKeys, sizeGb, planGuest, planLines, lxcCreateBody, managedKeys } from '../../roles/proxmox/config.ts';
import { guestDefaults, guestProblems, apiProblems, type LxcGuest, type VmGuest } from '../../roles/proxmox/vars.ts';
import { secret } from '../../runner/secret.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ2vW5l0T0ZmFrZWtleWZvcnRlc3RzMTIzNDU2Nzg phoenix@test';
const G = guestDefaults(
  { domain: 'internal.thinkheads.ai', gateway: '10.0.0.1', bridge: 'vmbr0', prefix: 24, nameserver: '10.0.0.1', sshPublicKeys: [KEY] },
  { lxc103: '10.0.0.10', lxc101: '10.0.0.153', lxc102: '10.0.0.12', vm1001: '10.0.0.111', vm1002: '10.0.0.102' },
);
const lxc = G.lxc102 as LxcGuest;
const vm = G.vm1001 as VmGuest;

/** What Proxmox returns for a container phoenix made from `lxc`: other key order, encodings and defaults. */
const pveLxc = (): Record<string, unknown> => ({
  arch: 'amd64',
  cores: 1,
  description: 'managed by phoenix (created from local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst)\n',
  digest: 'abc',
  features: 'nesting=1',
  hostname: 'Traefik-Internal',
  memory: 1024,
  nameserver: '10.0.0.1',
  net0: 'name=eth0,bridge=vmbr0,firewall=0,gw=10.0.0.1,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.12/24,type=veth',
  onboot: 1,
  ostype: 'debian',
  rootfs: 'local-lvm:vm-102-disk-0,size=8G',
  searchdomain: 'internal.thinkheads.ai',
  startup: 'order=2',
  swap: 512,
  tags: 'phoenix',
  unprivileged: 1,
});

test('property strings: default key, order, whitespace', () => {
  assert.equal(parsePropString('local-lvm:vm-1-disk-0,size=8G', 'volume'), { volume: 'local-lvm:vm-1-disk-0', size: '8G' });
  assert.equal(parsePropString('name=eth0, bridge=vmbr0,ip=10.0.0.1/24'), { name: 'eth0', bridge: 'vmbr0', ip: '10.0.0.1/24' });
  assert.equal(parseStartup('3,up=10'), { order: 3, up: 10, down: undefined });
  assert.equal(parseStartup('up=10,order=3'), { order: 3, up: 10, down: undefined });
  assert.throws(() => parsePropString('bare'), /has no key/);
  assert.is(sizeGb('8192M'), 8);
  assert.is(sizeGb('1T'), 1024);
  assert.is(sizeGb('32'), 32);
});

test('sshkeys: URL-encoded or plain, order and comments do not matter', () => {
  const enc = encodeSshKeys([KEY, 'ssh-rsa AAAAB3Nza x@y']);
  assert.ok(!enc.includes(' '));
  assert.equal(parseSshKeys(enc), parseSshKeys(`ssh-rsa AAAAB3Nza other-comment\n${KEY}\n`));
});

test('an unchanged container: key order, defaults, 1/true, extra keys never show as a change', () => {
  const p = planGuest('lxc102', 102, lxc, 'lxc', pveLxc());
  assert.equal(p.changes, []);
  assert.equal(p.put, {});
  assert.equal(p.refusals, []);
  const reordered = { ...pveLxc(), net0: 'ip=10.0.0.12/24,type=veth,hwaddr=bc:24:11:aa:bb:cc,gw=10.0.0.1,bridge=vmbr0,name=eth0', onboot: 'true', startup: '2', rootfs: 'local-lvm:vm-102-disk-0,size=8192M', features: 'nesting=true', tags: 'phoenix' };
  assert.equal(planGuest('lxc102', 102, lxc, 'lxc', reordered).changes, []);
});

test('memory and net0.ip: per-key plan, net0 written whole keeping hwaddr', () => {
  const want: LxcGuest = { ...lxc, memory: 2048, net0: { ...lxc.net0, ip: '10.0.0.22/24' } };
  const p = planGuest('lxc102', 102, want, 'lxc', pveLxc());
  assert.equal(planLines(p), ['memory: 1024 → 2048', 'net0.ip: 10.0.0.12/24 → 10.0.0.22/24']);
  assert.is(p.put.memory, 2048);
  assert.ok(String(p.put.net0).includes('hwaddr=BC:24:11:AA:BB:CC'));
  assert.ok(String(p.put.net0).includes('ip=10.0.0.22/24'));
  assert.equal(Object.keys(p.put).sort(), ['memory', 'net0']);
});

test('a missing guest: create from the template', () => {
  const p = planGuest('lxc104', 104, lxc, undefined, undefined);
  assert.equal(planLines(p), ['create lxc 104 from local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst']);
  const b = lxcCreateBody(104, lxc);
  assert.is(b.rootfs, 'local-lvm:8');
  assert.is(b['ssh-public-keys'], KEY);
  assert.is(b.unprivileged, 1);
});

test('grow a disk with resize; shrinking is refused', () => {
  const grow = planGuest('lxc102', 102, { ...lxc, rootfs: { storage: 'local-lvm', sizeGb: 12 } }, 'lxc', pveLxc());
  assert.equal(grow.resize, [{ disk: 'rootfs', fromGb: 8, toGb: 12 }]);
  assert.equal(grow.put, {});
  const shrink = planGuest('lxc102', 102, { ...lxc, rootfs: { storage: 'local-lvm', sizeGb: 4 } }, 'lxc', pveLxc());
  assert.is(shrink.refusals.length, 1);
  assert.match(shrink.refusals[0], /rootfs\.size: the disk is 8G, the inventory says 4G; disks are never shrunk/);
  assert.equal(shrink.resize, []);
});

test('refusals name the key and why, and empty the plan', () => {
  const cases: [LxcGuest, RegExp][] = [
    [{ ...lxc, ostemplate: 'local:vztmpl/alpine-3.20.tar.xz', memory: 4096 }, /ostemplate: the guest was created from local:vztmpl\/debian-12/],
    [{ ...lxc, unprivileged: false }, /unprivileged: the container is unprivileged, the inventory says privileged/],
    [{ ...lxc, rootfs: { storage: 'zfs', sizeGb: 8 } }, /rootfs\.storage: the root disk is on storage "local-lvm"/],
  ];
  for (const [g, re] of cases) {
    const p = planGuest('lxc102', 102, g, 'lxc', pveLxc());
    assert.match(p.refusals.join('\n'), re);
    assert.equal(p.put, {});
  }
  const other = planGuest('vm1001', 1001, vm, 'lxc', pveLxc());
  assert.match(other.refusals[0], /vmid: 1001 exists as an LXC container but is declared as a VM/);
  assert.not.ok(other.create);
});

test('a VM: sshkeys encoded, agent property string, disk size', () => {
  const cur: Record<string, unknown> = {
    name: 'Portainer', cores: 2, memory: '4096', onboot: 1, startup: 'order=4,up=30', tags: 'swarm;phoenix',
    ipconfig0: 'gw=10.0.0.1,ip=10.0.0.111/24', nameserver: '10.0.0.1', searchdomain: 'internal.thinkheads.ai', ciuser: 'phoenix',
    sshkeys: encodeURIComponent(`${KEY}\n`), agent: 'enabled=1,fstrim_cloned_disks=0', scsi0: 'local-lvm:vm-1001-disk-0,size=32G',
    description: 'managed by phoenix (created from template 9000)',
  };
  const p = planGuest('vm1001', 1001, vm, 'qemu', cur);
  assert.equal(p.changes, []);
  assert.equal(p.refusals, []);
  assert.equal(planLines(planGuest('vm1001', 1001, { ...vm, cloneFrom: 9001 }, 'qemu', cur)), []);
  assert.match(planGuest('vm1001', 1001, { ...vm, cloneFrom: 9001 }, 'qemu', cur).refusals[0], /cloneFrom: the guest was created from template 9000/);
  assert.equal(Object.keys(managedKeys(vm)).includes('sshkeys'), true);
});

test('declarations: errors name host and field', () => {
  assert.equal(guestProblems('lxc102', 102, lxc), []);
  assert.equal(guestProblems('vm1001', 1001, vm), []);
  const bad = guestProblems('lxc102', 7, { ...lxc, memory: 8, net0: { ...lxc.net0, ip: '10.0.0.300/24' }, sshPublicKeys: ['nope'] });
  assert.equal(bad, [
    'host "lxc102": field "guestId": must be an integer 100 … 999999999 (the Proxmox vmid)',
    'host "lxc102": field "guest.memory": must be an integer >= 16 (MiB)',
    'host "lxc102": field "guest.net0.ip": must be address/prefix (e.g. 10.0.0.12/24) or "dhcp"',
    'host "lxc102": field "guest.sshPublicKeys": must be a list of OpenSSH public keys',
  ]);
  const api = { url: 'https://10.0.0.13:8006', node: 'pve', tokenId: 'phoenix@pve!site', tokenSecret: secret('0000-1111-2222'), caFile: '/x.pem' };
  assert.equal(apiProblems('proxmox', api), []);
  assert.equal(apiProblems('proxmox', { ...api, url: 'http://x:8006', tokenSecret: 'plain' as never }), [
    'host "proxmox": field "proxmox.url": must be an https:// URL (the API is only spoken over verified TLS)',
    'host "proxmox": field "proxmox.tokenSecret": must be a Secret, { env: NAME } or { file: PATH } (never a plain string)',
  ]);
});

test.run();
