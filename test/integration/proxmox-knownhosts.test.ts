// A connection whose handshake started before the host's key was in known_hosts verifies
// against the file as it is when the server's key arrives. This is what lets the proxmox role
// write a freshly created guest's key (learned through the hypervisor) while the engine is
// already warming up the connection to that guest for a later play.
// A TCP proxy holds the server's first bytes until the key has been written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectionPool } from '../../runner/connection/index.ts';
import { resolveInventory } from '../../runner/inventory.ts';
import { hosts } from './helpers.ts';
import { sessionPids } from '../harness/sshd.ts';

test('known_hosts is read when the server key arrives, not when the attempt began', async () => {
  const lab = await hosts(1);
  const h = lab.hosts[0]!;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const socks: Socket[] = [];
  const proxy = createServer(async (c) => {
    socks.push(c);
    await gate;
    const up = connect(h.port, '127.0.0.1');
    socks.push(up);
    c.pipe(up);
    up.pipe(c);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as AddressInfo).port;
  const kh = join(lab.dir, 'known_hosts.late');
  writeFileSync(kh, '');
  const host = resolveInventory({ hosts: { g: { address: '127.0.0.1', port, user: lab.user, key: lab.clientKey } } }).hosts.get('g')!;
  const pool = new ConnectionPool({ knownHosts: kh, acceptNewHostKeys: false });
  try {
    const pending = pool.get(host);
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(kh, `[127.0.0.1]:${port} ssh-ed25519 ${h.hostKeyBase64}\n`);
    release();
    const c = await pending;
    const r = await c.exec('echo verified');
    assert.is(r.stdout.trim(), 'verified');
  } finally {
    await pool.closeAll();
    for (const s of socks) s.destroy();
    proxy.close();
    await lab.stop();
  }
});

test('a warmed-up connection the host closed before its first use is opened again (a guest restarted by the proxmox play)', async () => {
  const lab = await hosts(1);
  const host = resolveInventory({ hosts: { g: { address: '127.0.0.1', port: lab.hosts[0]!.port, user: lab.user, key: lab.clientKey } } }).hosts.get('g')!;
  const pool = new ConnectionPool({ knownHosts: lab.knownHosts, acceptNewHostKeys: false });
  try {
    await pool.warm(host);
    const pids = sessionPids(lab.hosts[0]!);
    assert.ok(pids.length > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone with its parent */
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    const c = await pool.get(host);
    assert.is((await c.exec('echo again')).stdout.trim(), 'again');
  } finally {
    await pool.closeAll();
    await lab.stop();
  }
});

test.run();
