// Who owns the stacks (issue 14, item 2), against the lab: Portainer by default, as the seed's
// "Architectural Flow" says; `swarm.deployStacksWith: 'docker'` as an option; a stack deployed
// with docker handed to Portainer when the inventory says so (swarm.migrateDockerStacks), its
// named volumes (the data) kept.
//   1. 'docker': site deploys with `docker stack deploy` (records on the manager), a second run
//      changes 0; `phoenix sync` refuses such a stack, naming both settings, and changes nothing.
//   2. migrateDockerStacks: site (Portainer the owner) hands both stacks to Portainer, Portainer's
//      own through the one-off on its data volume; Qdrant's points survive; sync then changes 0.
//   3. The seed's flow on a fresh swarm: site.ts, then `phoenix sync all` exits 0, and a second
//      one changes 0.
//   4. A rotated Qdrant key under Portainer: the new secret, the stack updated, the old secret
//      removed; back to the lab's key the same way.
// Test setup removes the stacks (and Portainer's database) with docker itself (stacks-lab.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formed, leaks, manager, msgOf, phoenix, portainerKnows, QDRANT_KEY, removeStacks, ROOT, tasks, type Report } from './stacks-lab.ts';
import { retryRead } from './helpers.ts';

const E = suite('stack owners');
const WORK = join(ROOT, 'tmp', `owners-e2e-${process.pid}`);
mkdirSync(WORK, { recursive: true });
const transcripts: string[] = [];

/** The lab's inventory with these vars changed (a .ts file inside the repo: the same module graph). */
function inventory(name: string, change: string): string {
  const f = join(WORK, `${name}.ts`);
  writeFileSync(f, `import { labInventory } from '../../lab/inventory.ts';\nimport { secret } from '../../runner/index.ts';\nvoid secret;\nconst inv = labInventory();\nconst v = inv.vars!;\n${change}\nexport default inv;\n`);
  return f;
}
const DOCKER = inventory('docker', `v.swarm = { ...v.swarm!, deployStacksWith: 'docker', migrateDockerStacks: false };`);
const NO_MIGRATION = inventory('no-migration', `v.swarm = { ...v.swarm!, migrateDockerStacks: false };`);
const ROTATED_KEY = 'rotated-qdrant-key-for-the-owners-e2e-0123456789';
const ROTATED = inventory('rotated', `v.qdrant = { ...v.qdrant!, apiKey: secret(${JSON.stringify(ROTATED_KEY)}, 'rotated key') };`);

async function cli(args: string[]): Promise<{ code: number; out: string; rep: Report }> {
  const json = join(WORK, `run-${transcripts.length}.json`);
  const r = await phoenix([...args, '--plain', '--json', json]);
  let text = '';
  try {
    text = readFileSync(json, 'utf8');
  } catch {
    /* no report (a usage error): the output says why */
  }
  transcripts.push(r.out, text);
  return { ...r, rep: text ? (JSON.parse(text) as Report) : ({ plays: [], recap: {} } as unknown as Report) };
}
const stacksSite = (inv: string, extra: string[] = []) => cli(['site', '--inventory', inv, '--limit', 'vm1001', '--tags', 'portainer,qdrant', ...extra]);
const changed = (rep: Report) => rep.recap.vm1001?.changed;
const secrets = () => manager(`docker secret ls --format '{{.Name}}' | sort | tr '\\n' ' '`);
const versions = () => manager(`docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' $(docker service ls -q) | sort`);

/** Qdrant REST from the manager over TLS (verified with the manager's trust store: the step-ca root); the key goes to curl on stdin (a here-document), never an argument. */
const qdrant = (key: string, method: string, path: string, body?: unknown) =>
  manager(
    `K=$(cat <<'EOF'\n${key}\nEOF\n)\nprintf 'api-key: %s\\n' "$K" | curl -sS --max-time 10 -H @- -H 'Content-Type: application/json' -X ${method} ${body ? `--data-raw '${JSON.stringify(body)}' ` : ''}https://vm1002.internal.thinkheads.ai:6333${path}`,
  );
const count = (key = QDRANT_KEY) => retryRead(async () => JSON.parse(await qdrant(key, 'POST', '/collections/phoenix_docs/points/count', { exact: true })).result.count as number);

E('the lab has a formed swarm (site.ts has run)', async () => {
  assert.ok(await formed(), 'vm1001 manager, vm1002 worker, both Ready: run site.ts against the lab first');
});

E("deployStacksWith 'docker': site deploys with docker stack deploy, a second run changes 0; sync refuses such a stack, naming both settings, and changes nothing", async () => {
  await removeStacks(true); // no stacks, no Portainer database
  const first = await stacksSite(DOCKER);
  assert.is(first.code, 0, first.out);
  assert.equal(tasks(first.rep).filter((t) => / stack$/.test(t.task)).map((t) => `${t.task} ${t.module} ${t.status}`), ['portainer stack docker_stack changed', 'qdrant stack docker_stack changed']);
  assert.match(msgOf(first.rep, 'qdrant stack'), /^deployed \((?:secret\(s\) to create: qdrant_service_api_key_[0-9a-f]{10}; )?not deployed\); 1 service\(s\) running; qdrant \/readyz ok/, msgOf(first.rep, 'qdrant stack'));
  assert.match(await manager('ls /etc/phoenix/stacks'), /portainer_service\.yml\s+qdrant_service\.yml/, "docker_stack's records on the manager");
  const again = await stacksSite(DOCKER);
  assert.is(again.code, 0, again.out);
  assert.is(changed(again.rep), 0, again.out);
  assert.is(await portainerKnows('qdrant_service'), false, 'Portainer answers and does not know the stack docker deployed');

  const before = await versions();
  const r = await cli(['sync', 'qdrant', '--inventory', NO_MIGRATION]);
  assert.is(r.code, 2, r.out);
  assert.match(r.out, /stack qdrant_service runs in swarm \S+ \(1 service\) but Portainer at https:\/\/vm1001\.internal\.thinkheads\.ai:9443 does not manage it/);
  assert.match(r.out, /swarm\.deployStacksWith: 'docker'/);
  assert.match(r.out, /swarm\.migrateDockerStacks: true/);
  assert.is(await versions(), before, 'no service was touched');
  // site with Portainer as the owner but no migration refuses the same way (Portainer's own stack first).
  const s = await stacksSite(NO_MIGRATION);
  assert.is(s.code, 2, s.out);
  assert.match(s.out, /stack portainer_service runs in swarm \S+ \(2 services\) but Portainer .* does not manage it/);
  assert.is(await versions(), before, 'no service was touched');
});

E('migrateDockerStacks: site hands both stacks to Portainer (its own through the one-off, on its data volume); Qdrant\'s points and the secrets are kept; sync all then changes 0', async () => {
  assert.match(await qdrant(QDRANT_KEY, 'PUT', '/collections/phoenix_docs/points?wait=true', { points: [{ id: 41, vector: [0.1, 0.2, 0.3, 0.4], payload: { owner: 'docker' } }] }), /"completed"/);
  const points = await count();
  const keptSecrets = await secrets();
  // --check first: it says so and changes nothing.
  const check = await stacksSite('lab', ['--check']);
  assert.is(check.code, 0, check.out);
  assert.match(check.out, /portainer_service runs outside Portainer: would remove it \(docker stack rm, data volume kept\) and would start a one-off Portainer/);
  const before = await versions();
  assert.is(await manager('ls /etc/phoenix/stacks | tr "\\n" " "'), 'portainer_service.yml qdrant_service.yml', '--check removed no record');

  const r = await stacksSite('lab'); // the lab inventory sets migrateDockerStacks: true
  assert.is(r.code, 0, r.out);
  assert.match(msgOf(r.rep, 'portainer API (a one-off Portainer on a fresh swarm)'), /^docker stack portainer_service removed for the hand-over \(data volume kept\); started a one-off Portainer/);
  assert.match(msgOf(r.rep, 'portainer stack'), /^created stack portainer_service \(Id \d+\); readiness after the hand-over/);
  assert.match(msgOf(r.rep, 'qdrant stack'), /^created stack qdrant_service \(Id \d+\); docker stack qdrant_service removed for the hand-over to Portainer \(named volumes kept\); ready/);
  assert.match(tasks(r.rep).find((t) => t.handler)?.msg ?? '', /one-off Portainer removed; stack portainer_service ready/);
  assert.is.not(await versions(), before);
  assert.is(await portainerKnows('qdrant_service'), true);
  assert.is(await portainerKnows('portainer_service'), true);
  assert.is(await count(), points, "Qdrant's named volume kept its points");
  assert.is(await secrets(), keptSecrets, 'the same secrets (none made again, none lost)');
  assert.is(await manager('ls /etc/phoenix/stacks | wc -l'), '0', "docker_stack's records removed: the stacks are Portainer's");

  const s1 = await cli(['sync', 'all', '--inventory', 'lab']);
  assert.is(s1.code, 0, s1.out);
  assert.is(changed(s1.rep), 0, s1.out);
  const again = await stacksSite('lab');
  assert.is(changed(again.rep), 0, again.out);
});

E("the seed's flow on a fresh swarm: site.ts, then `phoenix sync all` exits 0, and a second one changes 0", async () => {
  await removeStacks(true);
  const site = await cli(['site', '--inventory', 'lab']);
  assert.is(site.code, 0, site.out);
  assert.match(msgOf(site.rep, 'portainer API (a one-off Portainer on a fresh swarm)'), /started a one-off Portainer/);
  assert.equal(tasks(site.rep).filter((t) => / stack$/.test(t.task)).map((t) => t.module), ['portainer_stack', 'portainer_stack']);
  const first = await cli(['sync', 'all', '--inventory', 'lab']);
  assert.is(first.code, 0, first.out);
  const second = await cli(['sync', 'all', '--inventory', 'lab']);
  assert.is(second.code, 0, second.out);
  assert.is(changed(second.rep), 0, second.out);
  assert.is(changed(first.rep), 0, `right after site, sync has nothing to do: ${first.out}`);
});

E("a rotated Qdrant key under Portainer: a new secret, the stack updated through the API, the old secret removed; back to the lab's key the same way", async () => {
  const old = (await secrets()).split(' ').find((n) => n.startsWith('qdrant_service_api_key_'))!;
  assert.ok(old);
  const r = await cli(['site', '--inventory', ROTATED, '--limit', 'vm1001', '--tags', 'qdrant']);
  assert.is(r.code, 0, r.out);
  const q = msgOf(r.rep, 'qdrant stack');
  assert.match(q, /updated stack qdrant_service \(Id \d+\): stack file; secret api_key created; ready; old secret removed: qdrant_service_api_key_[0-9a-f]{10}$/);
  assert.ok(q.endsWith(old), q);
  const now = (await secrets()).split(' ').filter((n) => n.startsWith('qdrant_service_api_key_'));
  assert.is(now.length, 1);
  assert.is.not(now[0], old);
  assert.ok((await count(ROTATED_KEY)) >= 0, 'Qdrant takes the new key');
  const back = await cli(['site', '--inventory', 'lab', '--limit', 'vm1001', '--tags', 'qdrant']);
  assert.is(back.code, 0, back.out);
  assert.match(msgOf(back.rep, 'qdrant stack'), new RegExp(`old secret removed: ${now[0]}$`));
  assert.equal((await secrets()).split(' ').filter((n) => n.startsWith('qdrant_service_api_key_')), [old]);
  const s = await cli(['sync', 'all', '--inventory', 'lab']);
  assert.is(changed(s.rep), 0, s.out);
});

E('no password, API key or token in any output or --json of these runs', () => {
  assert.ok(transcripts.length >= 20);
  for (const t of transcripts) {
    assert.is(leaks(t), 0, 'a secret leaked');
    assert.not.ok(t.includes(ROTATED_KEY), 'the rotated key leaked');
  }
});

E.after(() => rmSync(WORK, { recursive: true, force: true }));

E.run();
