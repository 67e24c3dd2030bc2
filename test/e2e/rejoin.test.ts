// Swarm housekeeping (issue 16, item 5), in the lab: after a worker leaves and joins again, the
// manager's stale `Down` entry for the same hostname is removed (never a node that is merely down).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { run, type RunResult } from '../../runner/index.ts';
import { labInventory } from '../../lab/inventory.ts';
import { site } from '../../playbooks/site.ts';
import { onGuests, quiet } from './helpers.ts';

const T = suite('rejoin');
const errors = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.error).map((t) => `${h.host}: ${t.task}: ${t.error!.message}`)));
const on = async (guest: string, cmd: string) => (await onGuests(guest, cmd))[guest]!;
const nodes = async () => (await on('vm1001', "docker node ls --format '{{.Hostname}} {{.Status}}' | sort")).trim().split('\n');
const swarm = async (o: { check?: boolean } = {}) => {
  const q = quiet();
  const r = await run(site, { inventory: labInventory(), tags: ['swarm'], limit: ['vm1001', 'vm1002'], out: q.out, ...o });
  return { r, text: q.text() };
};

T('a worker leaves and joins again: docker node ls lists exactly two nodes, both Ready', async () => {
  // (after a restart of the manager's dockerd, node states read Unknown for a while)
  for (const end = Date.now() + 60_000; (await nodes()).join() !== 'vm1001 Ready,vm1002 Ready' && Date.now() < end; ) await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await nodes(), ['vm1001 Ready', 'vm1002 Ready'], 'the lab starts converged');
  // (a worker's leave can time out with dockerd's swarm agent stuck until dockerd restarts, as in swarm.test.ts)
  const left = await on('vm1002', "for i in 1 2 3; do [ \"$(docker info --format '{{.Swarm.LocalNodeState}}')\" = inactive ] && break; docker swarm leave >/dev/null 2>&1 || systemctl restart docker; done; docker info --format '{{.Swarm.LocalNodeState}}'");
  assert.is(left.trim(), 'inactive');
  // The manager notices (its entry of vm1002 goes Down).
  const end = Date.now() + 60_000;
  while (!(await nodes()).includes('vm1002 Down') && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await nodes(), ['vm1001 Ready', 'vm1002 Down']);
  // A node that is merely down is left alone (no Ready entry of its hostname).
  const c = await swarm({ check: true });
  assert.not.match(c.text, /would remove/);

  const { r, text } = await swarm();
  assert.is(r.exitCode, 0, `${text}\n${errors(r).join('\n')}`);
  // (a run that restarted the manager's dockerd, e.g. for its TLS API, leaves states Unknown for a while)
  for (const end = Date.now() + 60_000; (await nodes()).some((l) => l.endsWith('Unknown')) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await nodes(), ['vm1001 Ready', 'vm1002 Ready']);
  const t = r.plays.flatMap((p) => p.hosts.vm1001?.tasks ?? []).find((x) => x.task === 'stale node entries removed');
  assert.match(t?.msg ?? '', /^removed vm1002 /);
  const again = await swarm();
  assert.is(again.r.exitCode, 0, again.text);
  assert.equal(again.r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((x) => x.status === 'changed').map((x) => x.task))), []);
});

T('the lab left converged: a full site run exits 0', async () => {
  const q = quiet();
  const r = await run(site, { inventory: labInventory(), out: q.out });
  assert.is(r.exitCode, 0, `${q.text()}\n${errors(r).join('\n')}`);
});

T.run();
