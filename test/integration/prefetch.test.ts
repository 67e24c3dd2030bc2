// Issue 9 (connect once, early): the hosts of later plays are connected while the first play
// runs (Engine.prefetch), against real sshd hosts. Checked by order of events, never by time:
// the first play's task watches the second host's sshd log for our key being accepted.
// And what must not change: a later play's unreachable host is reported in that play, with
// the same exit code, and the first play is unaffected; a host an earlier play makes reachable
// is reachable in its play (a failed warm-up is not kept).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

S('a host that only an earlier play makes reachable: the failed warm-up is forgotten, its play connects', async () => {
  // "late" is a port that first hangs up on every connection (no SSH there), until the first
  // play's task turns it into a relay to host1's sshd: as a play that starts a guest would.
  let relay = false;
  let accepted = 0;
  const socks = new Set<Socket>();
  const server: Server = createServer((c) => {
    accepted++;
    socks.add(c);
    c.on('close', () => socks.delete(c));
    if (!relay) return void c.destroy();
    const up = connect(lab.hosts[1]!.port, '127.0.0.1');
    socks.add(up);
    up.on('close', () => socks.delete(up));
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const inv = inventoryFor(lab);
    inv.hosts.late = { ...inv.hosts.host1!, port };
    // host1's key for the relay's address, so the host key is verified there too.
    const line = lab.hosts[1]!.hostKeyLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${port}`);
    inv.knownHosts = join(lab.dir, 'known_hosts.late');
    writeFileSync(inv.knownHosts, `${lab.hosts.map((h) => h.hostKeyLine).join('\n')}\n${line}\n`);
    const startIt: Action<TestVars> = {
      module: 'start',
      summary: 'start late',
      async run() {
        const end = Date.now() + 20_000; // a bound: the warm-up's attempt comes first
        while (accepted === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        const tried = accepted > 0;
        relay = true;
        return { changed: true, msg: tried ? 'late was tried before it was up' : 'late was not tried before it was up' };
      },
    };
    const book = playbook<TestVars>('start then use', [
      play({ name: 'first', hosts: 'host0', roles: [role<TestVars>({ name: 'a', tasks: [task({ name: 'start late', do: startIt })] })] }),
      play({ name: 'second', hosts: 'late', roles: [role<TestVars>({ name: 'b', tasks: [task({ name: 'two', do: shell('true', { readOnly: true }) })] })] }),
    ]);
    const c = capture();
    const r = await run(book, { inventory: inv, out: c.out });
    assert.is(r.plays[0]!.hosts.host0!.tasks[0]!.msg, 'late was tried before it was up', c.text());
    assert.is(r.exitCode, 0, c.text());
    assert.is(r.plays[1]!.hosts.late!.status, 'ok', c.text());
    assert.ok(accepted >= 2, 'the play connected again after the failed warm-up');
  } finally {
    relay = false;
    for (const x of socks) x.destroy();
    await new Promise((r) => server.close(r));
  }
});

S.run();
