// The warm-connection agent (docs/agent.md) against the lab's five guests: a second run leases
// every guest's connection (no new SSH connection is made: the agent's own count), sudo works
// through the held shells, and `phoenix agent stop` ends it. Run under the lab lock.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { play, playbook, role, run, shell, task } from '../../runner/index.ts';
import { labInventory } from '../../lab/inventory.ts';
import { request } from '../../runner/agent/client.ts';
import { GUESTS, quiet, registered } from './helpers.ts';

const E = suite('agent on the lab');
const base = mkdtempSync(join(tmpdir(), 'phx-agent-e2e-'));
const dir = join(base, 'agent');
const sock = join(dir, 'agent.sock');
E.before(() => {
  process.env.PHOENIX_AGENT_DIR = dir;
});
E.after(async () => {
  await request(sock, { op: 'stop' }).catch(() => undefined);
  delete process.env.PHOENIX_AGENT_DIR;
  rmSync(base, { recursive: true, force: true });
});

const whoami = playbook('whoami', [play({ hosts: GUESTS, roles: [role({ name: 'w', tasks: [task({ name: 'id', do: shell('echo "$(id -un)@$(hostname)"', { readOnly: true }) })] })] })]);

E('the second run reuses all five guests: no new SSH connection, root through the held sudo shells', async () => {
  const o1 = quiet();
  const first = await run(whoami, { inventory: labInventory(), out: o1.out, agent: true });
  assert.is(first.exitCode, 0, o1.text());
  assert.match(o1.text(), /warm: none/);
  const s1 = await request(sock, { op: 'status' });
  assert.is(s1.handshakes, GUESTS.length);
  const o2 = quiet();
  const second = await run(whoami, { inventory: labInventory(), out: o2.out, agent: true, check: true });
  assert.is(second.exitCode, 0, o2.text());
  assert.match(o2.text(), `warm: ${[...GUESTS].sort().join(', ')} (connections reused from the agent)`);
  for (const g of GUESTS) assert.is(registered(second, g, 'id'), `root@${g}`);
  const s2 = await request(sock, { op: 'status' });
  assert.is(s2.handshakes, GUESTS.length, 'no new SSH connection in the second run');
  assert.is(s2.reuses, GUESTS.length);
});

E.run();
