// apt waits for the dpkg lock for a bounded, configurable time (Ansible's lock_timeout)
// instead of failing at once (issue 10, item 1). The loopback sshd "host" is this machine,
// so a tiny package built here is removed through apt while a process holds
// /var/lib/dpkg/lock-frontend the way apt, dpkg and unattended-upgrades do (fcntl lock).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { apt, play, playbook, role, run, task } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const A = suite('apt lock wait');
const PKG = 'phx-lock-dummy';
let lab: SshdLab;
const dir = mkdtempSync(join(tmpdir(), 'phx-apt-'));
const deb = join(dir, `${PKG}.deb`);
let holder: ChildProcess | undefined;

function installed(): boolean {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', PKG], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) === 'install ok installed';
  } catch {
    return false;
  }
}

function installDummy() {
  // apt's own lock wait: other work on this machine may be using apt right now.
  execFileSync('apt-get', ['install', '-y', '-q', '-o', 'DPkg::Lock::Timeout=300', deb], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  assert.ok(installed());
}

/** Holds the dpkg frontend lock until killed or `seconds` pass; resolves once it holds it. */
function holdLock(seconds: number): Promise<ChildProcess> {
  const py = `import fcntl, sys, time\nf = open('/var/lib/dpkg/lock-frontend', 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(${seconds})\n`;
  const child = spawn('/usr/bin/python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
  holder = child;
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve(child));
    child.on('exit', (c) => reject(new Error(`lock holder exited ${c} before locking`)));
  });
}

A.before(async () => {
  lab = await hosts(1);
  mkdirSync(join(dir, 'pkg', 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(dir, 'pkg', 'DEBIAN', 'control'),
    `Package: ${PKG}\nVersion: 1.0\nArchitecture: all\nMaintainer: phoenix tests <root@localhost>\nDescription: empty package for phoenix's apt lock test\n`,
  );
  execFileSync('dpkg-deb', ['--build', join(dir, 'pkg'), deb], { stdio: 'ignore' });
});
A.after(async () => {
  holder?.kill('SIGKILL');
  if (installed()) execFileSync('apt-get', ['remove', '-y', '-q', '-o', 'DPkg::Lock::Timeout=300', PKG], { stdio: 'ignore' });
  await lab?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const removeBook = (lockTimeout?: number) =>
  playbook<TestVars>('apt', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'a', tasks: [task({ name: 'remove dummy', do: apt({ name: PKG, state: 'absent', lockTimeout }) })] })] })]);

A('a held dpkg lock is waited for, then the removal goes ahead', async () => {
  installDummy();
  const h = await holdLock(3);
  assert.is(h.exitCode, null, 'the lock holder must still hold the lock when the run starts');
  const r = await run(removeBook(120), { inventory: inventoryFor(lab), out: capture().out });
  assert.is(r.exitCode, 0, JSON.stringify(r.plays[0]!.hosts.host0!.tasks[0]!.error));
  assert.is(r.recap.host0!.changed, 1);
  assert.not.ok(installed());
});

A('a lock held past lockTimeout fails with a message naming the holder; the package is untouched', async () => {
  installDummy();
  const h = await holdLock(600);
  try {
    const r = await run(removeBook(2), { inventory: inventoryFor(lab), out: capture().out });
    assert.is(r.exitCode, 2);
    const e = r.plays[0]!.hosts.host0!.tasks[0]!.error!;
    assert.match(e.message, /the dpkg\/apt lock is still held \(held by process \d+ \(python3\)\) after waiting 2s \(lockTimeout\)/);
    assert.ok(installed(), 'the package was removed although the lock was held');
  } finally {
    h.kill('SIGKILL');
  }
});

A('a version pin (name=version, globs allowed) is checked against the installed version', async () => {
  if (!installed()) installDummy();
  const pin = (name: string) =>
    run(playbook<TestVars>('pin', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'p', tasks: [task({ name: 'pinned', do: apt({ name }) })] })] })]), {
      inventory: inventoryFor(lab),
      out: capture().out,
    });
  for (const name of [`${PKG}=1.0`, `${PKG}=1.*`]) {
    const r = await pin(name);
    assert.equal([r.exitCode, r.recap.host0!.changed, r.recap.host0!.ok], [0, 0, 1], name);
  }
  const other = await pin(`${PKG}=9.9`);
  assert.is(other.exitCode, 2);
  assert.match(other.plays[0]!.hosts.host0!.tasks[0]!.error!.stderr!, /Version '9\.9' for 'phx-lock-dummy' was not found/);
});

A.run();
