// Issue 9 (connect once, early): the hosts of later plays are connected while the first play
// runs (Engine.prefetch), against real sshd hosts. Checked by order of events, never by time:
// the first play's task watches the second host's sshd log for our key being accepted.
// And what must not change: a later play's unreachable host is reported in that play, with
// the same exit code, and the first play is unaffected.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SshdLab } from '../harness/sshd.ts';
import { play, playbook, role, run, shell, task, type Action } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const S = suite('prefetch');
let lab: SshdLab;
S.before(async () => {
  lab = await hosts(2);
});
S.after(async () => {
  await lab?.stop();
});

const accepted = (i: number) => (lab.hosts[i]!.logs().match(/Accepted publickey/g) ?? []).length;

/** A task (on host0, in the first play) that waits, bounded, for host1's sshd to accept a login. */
function watchHost1(before: number): Action<TestVars> {
  return {
    module: 'watch',
    summary: 'watch host1',
    async run() {
      const end = Date.now() + 20_000; // a bound, not a speed: without prefetch it runs out
      while (accepted(1) === before && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      return { changed: false, msg: accepted(1) > before ? 'host1 was connected during the first play' : 'host1 was not connected during the first play' };
    },
  };
}

S("a later play's host is connected while the first play still runs, once", async () => {
  const before = accepted(1);
  const book = playbook<TestVars>('two plays', [
    play({ name: 'first', hosts: 'host0', roles: [role<TestVars>({ name: 'a', tasks: [task({ name: 'watch', do: watchHost1(before) })] })] }),
    play({ name: 'second', hosts: 'host1', roles: [role<TestVars>({ name: 'b', tasks: [task({ name: 'one', do: shell('true', { readOnly: true }) }), task({ name: 'two', do: shell('true', { readOnly: true }) })] })] }),
  ]);
  const c = capture();
  const r = await run(book, { inventory: inventoryFor(lab), out: c.out });
  assert.is(r.exitCode, 0, c.text());
  assert.is(r.plays[0]!.hosts.host0!.tasks[0]!.msg, 'host1 was connected during the first play', c.text());
  assert.is(r.recap.host1!.ok, 2);
  assert.is(accepted(1) - before, 1, 'one connection to host1 for the whole run');
});

S("a later play's unreachable host is reported in that play; the first play is unaffected", async () => {
  const inv = inventoryFor(lab);
  // Nothing listens on port 1.
  inv.hosts.ghost = { address: '127.0.0.1', port: 1, user: lab.hosts[0]!.user, key: lab.hosts[0]!.key, become: true, groups: ['test'], vars: { root: lab.hosts[0]!.root } };
  const book = playbook<TestVars>('two plays', [
    play({ name: 'first', hosts: 'host0', roles: [role<TestVars>({ name: 'a', tasks: [task({ name: 'one', do: shell('true', { readOnly: true }) })] })] }),
    play({ name: 'second', hosts: ['host1', 'ghost'], roles: [role<TestVars>({ name: 'b', tasks: [task({ name: 'two', do: shell('true', { readOnly: true }) })] })] }),
  ]);
  const c = capture();
  const r = await run(book, { inventory: inv, out: c.out });
  assert.is(r.exitCode, 3, c.text());
  assert.is(r.plays[0]!.hosts.host0!.status, 'ok');
  assert.not.ok('ghost' in r.plays[0]!.hosts, 'ghost is not in the first play');
  assert.is(r.plays[1]!.hosts.ghost!.status, 'unreachable');
  assert.is(r.recap.ghost!.unreachable, 1);
  assert.is(r.recap.host1!.ok, 1);
});

S.run();
