// Issue 17 item 8: apt in check mode fails for a package apt's lists do not know, as the real
// run would (Ansible's check does too), instead of saying "changed". The lists answer without
// a refresh. The loopback sshd "host" is this machine: its apt lists are Debian's.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import type { SshdLab } from '../harness/sshd.ts';
import { apt, play, playbook, role, run, shell, task } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const A = suite('apt --check and unknown packages');
let lab: SshdLab;
A.before(async () => {
  lab = await hosts(1);
});
A.after(async () => {
  await lab?.stop();
});

const installed = (p: string) => {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) === 'install ok installed';
  } catch {
    return false;
  }
};
/** A package apt's lists know and this machine has not installed. */
const KNOWN = ['hello', 'sl', 'cowsay', 'figlet'].find((p) => !installed(p) && execFileSync('apt-cache', ['policy', p], { encoding: 'utf8' }).includes('Candidate: '))!;

async function check(tasks: ReturnType<typeof task<TestVars>>[]) {
  const pb = playbook<TestVars>('apt', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'apt', tasks })] })]);
  const r = await run(pb, { inventory: inventoryFor(lab), check: true, out: capture().out });
  return { code: r.exitCode, tasks: r.plays[0]!.hosts.host0!.tasks };
}

A('an unknown package fails the check; a known one would be installed; nothing is installed', async () => {
  assert.ok(KNOWN, 'no known, uninstalled package to test with');
  const ok = await check([task({ name: 'known', do: apt({ name: KNOWN }) })]);
  assert.is(ok.code, 0);
  assert.is(ok.tasks[0]!.status, 'changed');
  assert.is(ok.tasks[0]!.msg, `install ${KNOWN}`);
  const r = await check([task({ name: 'typo', do: apt({ name: ['nginx-phx-nosuch', KNOWN] }) })]);
  assert.is(r.code, 2);
  assert.is(r.tasks[0]!.status, 'failed');
  assert.match(r.tasks[0]!.error!.message, /no package "nginx-phx-nosuch" in apt's lists: the real run would fail/);
  assert.not.match(r.tasks[0]!.error!.message, new RegExp(`"${KNOWN}"`));
  assert.not.ok(installed(KNOWN));
});

A('a version pin apt does not have fails; after an unapplied earlier change an unknown package is "unknown"', async () => {
  const r = await check([task({ name: 'pin', do: apt({ name: 'bash=0.0.1*' }) })]);
  assert.is(r.tasks[0]!.status, 'failed');
  assert.match(r.tasks[0]!.error!.message, /no version of "bash" matching "0\.0\.1\*" in apt's lists \(has /);
  // An earlier task (e.g. one adding an apt source) would have changed something: cannot tell.
  const later = await check([task({ name: 'repo', do: shell('true') }), task({ name: 'from the new repo', do: apt({ name: 'docker-ce-phx-nosuch' }) })]);
  assert.is(later.code, 0);
  assert.is(later.tasks[1]!.status, 'unknown');
});

A.run();
