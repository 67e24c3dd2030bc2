// `npx phoenix sync all` against the lab (acceptance 7 and 8 of issue 8): on a fresh swarm (no
// stacks, no Portainer yet) it creates both stacks through the Portainer API stand-in
// (portainer-standin, lab/standins/portainer/), which deploys them on the real swarm; a second
// sync changes nothing; an edited stack is updated by PUT, keeping its Id; no password, API key
// or token shows in the output, --json, --diff or any guest's process list.
// Needs a lab where site.ts has run (swarm formed, step-ca root exported, Portainer's certificate
// on vm1001): it says so when that is missing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_ROOT } from '../../lab/inventory.ts';
import { compileShapes } from '../contract/fake-portainer.ts';
import { client, formed, leaks, manager, msgOf, phoenix, PASSWORD, QDRANT_KEY, removeStacks, report, ROOT, ssh, tasks, watchProcesses } from './stacks-lab.ts';
import { retryRead } from './helpers.ts';

const E = suite('sync');
const WORK = join(ROOT, 'tmp', `sync-e2e-${process.pid}`);
mkdirSync(WORK, { recursive: true });

let ids: Record<string, number> = {};
const transcripts: string[] = [];
const psSamples: string[] = [];

E('the lab is ready for sync: a swarm of vm1001 and vm1002, step-ca root exported, Portainer certificate on vm1001', async () => {
  assert.ok(existsSync(LAB_ROOT), `${LAB_ROOT} missing: run site.ts against the lab first`);
  // Other suites reset the swarm (swarm.test.ts does, to test forming it): when it is not formed,
  // form it the product's way, with site.ts's swarm plays.
  if (!(await formed())) {
    const r = await phoenix(['site', '--inventory', 'lab', '--limit', 'vm1001,vm1002', '--tags', 'swarm', '--plain']);
    assert.is(r.code, 0, r.out);
  }
  assert.ok(await formed(), 'vm1001 manager, vm1002 worker, both Ready');
  if ((await ssh('vm1001', 'test -s /etc/letsencrypt/live/portainer/fullchain.pem')).code !== 0) {
    // Portainer's step-ca certificate comes with the portainer role (which also deploys the
    // stack; the next test removes it for a fresh start).
    const r = await phoenix(['site', '--inventory', 'lab', '--limit', 'vm1001', '--tags', 'portainer', '--plain']);
    assert.is(r.code, 0, r.out);
  }
  assert.is(await manager('test -s /etc/letsencrypt/live/portainer/fullchain.pem && echo yes'), 'yes', "Portainer's step-ca certificate");
});

E('fresh swarm: sync all creates both stacks through the stand-in, placed where they belong', async () => {
  // A fresh swarm for the stacks: none of them, no Portainer, no Portainer database.
  await removeStacks(true);
  // --check first: it says what it would do and starts, creates and writes nothing.
  const snapshot = () => manager(`docker stack ls --format '{{.Name}}'; docker ps -a --format '{{.Names}}' | grep -c portainer-bootstrap; docker secret ls -q | sort; docker volume ls -q | grep -x portainer_data || true`);
  const before = await snapshot();
  const check = await phoenix(['sync', 'all', '--inventory', 'lab', '--plain', '--check', '--diff']);
  transcripts.push(check.out);
  assert.is(check.code, 0, check.out);
  assert.match(check.out, /would start a one-off Portainer on :9444/);
  assert.match(check.out, /stack portainer_service would be created/);
  assert.match(check.out, /stack qdrant_service would be created/);
  assert.is(await snapshot(), before, '--check changed nothing on the manager');

  const json = join(WORK, 'create.json');
  const { result: r, ps } = await watchProcesses(() => phoenix(['sync', 'all', '--inventory', 'lab', '--plain', '--diff', '--json', json]));
  transcripts.push(r.out, readFileSync(json, 'utf8'));
  psSamples.push(ps);
  assert.is(r.code, 0, r.out);
  const rep = report(json);
  assert.match(msgOf(rep, 'portainer API (a one-off Portainer on a fresh swarm)'), /started a one-off Portainer/);
  const p = /created stack portainer_service \(Id (\d+)\)/.exec(msgOf(rep, 'portainer stack via the Portainer API'));
  const q = /created stack qdrant_service \(Id (\d+)\); ready/.exec(msgOf(rep, 'qdrant stack via the Portainer API'));
  assert.ok(p && q, r.out);
  ids = { portainer_service: Number(p![1]), qdrant_service: Number(q![1]) };
  assert.match(tasks(rep).find((t) => t.handler)?.msg ?? '', /one-off Portainer removed; stack portainer_service ready/);
  assert.match(r.out, /\+\+\+ portainer:qdrant_service\/docker-compose.yml \(after\)/, '--diff shows the compose file');
  // Where the swarm runs them: the server on the manager, the agent everywhere, Qdrant on the worker.
  const where = await manager(`for s in portainer_service_portainer portainer_service_agent qdrant_service_qdrant; do docker service ps --filter desired-state=running --format "$s {{.Node}} {{.CurrentState}}" $s; done`);
  assert.match(where, /^portainer_service_portainer vm1001 Running/m);
  assert.match(where, /^portainer_service_agent vm1001 Running/m);
  assert.match(where, /^portainer_service_agent vm1002 Running/m);
  assert.match(where, /^qdrant_service_qdrant vm1002 Running/m);
  assert.is(await manager('docker ps -aq --filter name=portainer-bootstrap'), '', 'the one-off Portainer is gone');
});

E("the stand-in's answers have the shapes of the notes; it knows both stacks, in this swarm", async () => {
  const shapes = compileShapes();
  const ok = (id: string, data: unknown) => {
    const s = shapes.find((x) => x.id === id)!;
    assert.ok(s.vResponse(data), `${id}: ${s.msg(s.vResponse)}`);
  };
  const c = client();
  const eps = await c.endpoints();
  ok('endpoints', eps);
  const swarmId = await c.swarmId(eps[0]!.Id);
  assert.is(swarmId, await manager(`docker info -f '{{.Swarm.Cluster.ID}}'`));
  const stacks = await c.stacks({ SwarmID: swarmId, EndpointID: eps[0]!.Id });
  ok('stacks', stacks);
  assert.equal(stacks.map((s) => [s.Name, s.Id, s.SwarmId, s.Type]).sort(), [
    ['portainer_service', ids.portainer_service, swarmId, 1],
    ['qdrant_service', ids.qdrant_service, swarmId, 1],
  ]);
  const file = await c.stackFile(ids.qdrant_service!);
  ok('stackFile', { StackFileContent: file });
  assert.match(file, /image: phoenix\/qdrant-standin:lab/);
  ok('systemStatus', await c.systemStatus());
  // Its errors: Portainer's {message}, named in the client's error with the HTTP status.
  const e = (await c.createSwarmStack(eps[0]!.Id, { Name: 'qdrant_service', SwarmID: swarmId, StackFileContent: file, Env: [], FromAppTemplate: false }).catch((x: Error) => x)) as Error;
  assert.match(e.message, /POST https:\/\/vm1001\.internal\.thinkheads\.ai:9443\/api\/stacks\/create\/swarm\/string\?endpointId=1: HTTP 409: A stack with the normalized name 'qdrant_service' already exists/);
});

E('a second sync changes nothing', async () => {
  const json = join(WORK, 'again.json');
  const r = await phoenix(['sync', 'all', '--inventory', 'lab', '--plain', '--json', json]);
  transcripts.push(r.out, readFileSync(json, 'utf8'));
  assert.is(r.code, 0, r.out);
  assert.is(report(json).recap.vm1001!.changed, 0, r.out);
  assert.match(r.out, /stack qdrant_service \(Id \d+\) up to date; ready/);
});

E('an edited stack: --check --diff shows the compose diff and changes nothing; the run updates it by PUT, same Id', async () => {
  // The inventory with one Qdrant setting changed (a .ts inventory inside the repo: same module graph).
  const inv = join(WORK, 'inventory-debug.ts');
  writeFileSync(inv, `import { labInventory } from '../../lab/inventory.ts';\nconst inv = labInventory();\ninv.vars = { ...inv.vars!, qdrant: { ...inv.vars!.qdrant!, logLevel: 'DEBUG' } } as typeof inv.vars;\nexport default inv;\n`);
  const envOf = () => manager(`docker service inspect qdrant_service_qdrant --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'`);
  const before = { env: await envOf(), file: await client().stackFile(ids.qdrant_service!) };
  const check = await phoenix(['sync', 'qdrant', '--inventory', inv, '--plain', '--check', '--diff']);
  transcripts.push(check.out);
  assert.is(check.code, 0, check.out);
  assert.match(check.out, /stack qdrant_service \(Id \d+\) would be updated: stack file differs/);
  assert.match(check.out, /-      QDRANT__LOG_LEVEL: INFO\n\+      QDRANT__LOG_LEVEL: DEBUG/);
  assert.equal({ env: await envOf(), file: await client().stackFile(ids.qdrant_service!) }, before, '--check changed nothing');

  const json = join(WORK, 'edit.json');
  const { result: r, ps } = await watchProcesses(() => phoenix(['sync', 'qdrant', '--inventory', inv, '--plain', '--diff', '--json', json]));
  transcripts.push(r.out, readFileSync(json, 'utf8'));
  psSamples.push(ps);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`updated stack qdrant_service \\(Id ${ids.qdrant_service}\\): stack file; ready`));
  assert.match(await envOf(), /"QDRANT__LOG_LEVEL=DEBUG"/);
  const c = client();
  const eps = await c.endpoints();
  const stacks = await c.stacks({ SwarmID: await c.swarmId(eps[0]!.Id), EndpointID: eps[0]!.Id });
  const q = stacks.filter((s) => s.Name === 'qdrant_service');
  assert.is(q.length, 1, 'not recreated: one qdrant_service');
  assert.is(q[0]!.Id, ids.qdrant_service, 'same stack Id');
  assert.ok((q[0]!.UpdateDate ?? 0) > 0, 'UpdateDate set by the PUT');

  // Back to the inventory's value, then steady again.
  const back = await phoenix(['sync', 'all', '--inventory', 'lab', '--plain']);
  transcripts.push(back.out);
  assert.is(back.code, 0, back.out);
  assert.match(back.out, new RegExp(`updated stack qdrant_service \\(Id ${ids.qdrant_service}\\)`));
  assert.match(await envOf(), /"QDRANT__LOG_LEVEL=INFO"/);
});

E("site (Portainer the default owner) runs sync's tasks, so each finds the other's stacks up to date; an edit through site is a PUT on the same stack", async () => {
  // Inventories inside the repo (same module graph): the lab's (no owner set: Portainer, the default).
  const inv = (name: string, extra = '') => {
    const f = join(WORK, `${name}.ts`);
    writeFileSync(f, `import { labInventory } from '../../lab/inventory.ts';\nconst inv = labInventory();\n` + `inv.vars = { ...inv.vars!${extra} } as typeof inv.vars;\nexport default inv;\n`);
    return f;
  };
  const viaApi = inv('inventory-portainer');
  const viaApiDebug = inv('inventory-portainer-debug', `, qdrant: { ...inv.vars!.qdrant!, logLevel: 'DEBUG' }`);
  const site = async (i: string, extra: string[] = []) => {
    const json = join(WORK, `site-${transcripts.length}.json`);
    const r = await phoenix(['site', '--inventory', i, '--limit', 'vm1001', '--tags', 'portainer,qdrant', '--plain', '--json', json, ...extra]);
    transcripts.push(r.out, readFileSync(json, 'utf8'));
    assert.is(r.code, 0, r.out);
    return { r, rep: report(json) };
  };

  // The stacks sync made: site's stack tasks go through the API (sync's portainer_stack module,
  // not docker_stack: no swarm.deployStacksWith in the inventory) and find them up to date.
  const first = await site(viaApi);
  assert.is(first.rep.recap.vm1001!.changed, 0, first.r.out);
  assert.match(msgOf(first.rep, 'qdrant stack'), new RegExp(`stack qdrant_service \\(Id ${ids.qdrant_service}\\) up to date; ready`));
  assert.match(msgOf(first.rep, 'portainer stack'), new RegExp(`stack portainer_service \\(Id ${ids.portainer_service}\\) up to date`));
  assert.equal(tasks(first.rep).filter((t) => / stack$/.test(t.task)).map((t) => t.module), ['portainer_stack', 'portainer_stack']);

  // An edit through site: --check --diff shows it; the run is a PUT on the same stack Id.
  const check = await site(viaApiDebug, ['--check', '--diff']);
  assert.match(check.r.out, /-      QDRANT__LOG_LEVEL: INFO\n\+      QDRANT__LOG_LEVEL: DEBUG/);
  const edit = await site(viaApiDebug);
  assert.match(msgOf(edit.rep, 'qdrant stack'), new RegExp(`updated stack qdrant_service \\(Id ${ids.qdrant_service}\\): stack file; ready`));
  assert.match(await manager(`docker service inspect qdrant_service_qdrant --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'`), /"QDRANT__LOG_LEVEL=DEBUG"/);

  // ... which sync, given the same inventory, then finds up to date: one owner, one state.
  const json = join(WORK, 'after-site.json');
  const s = await phoenix(['sync', 'all', '--inventory', viaApiDebug, '--plain', '--json', json]);
  transcripts.push(s.out, readFileSync(json, 'utf8'));
  assert.is(s.code, 0, s.out);
  assert.is(report(json).recap.vm1001!.changed, 0, s.out);

  // Back to the lab's value through site; a second site run changes nothing.
  await site(viaApi);
  const again = await site(viaApi);
  assert.is(again.rep.recap.vm1001!.changed, 0, again.r.out);
  const c = client();
  const eps = await c.endpoints();
  const stacks = await c.stacks({ SwarmID: await c.swarmId(eps[0]!.Id), EndpointID: eps[0]!.Id });
  assert.equal(stacks.map((x) => [x.Name, x.Id]).sort(), [
    ['portainer_service', ids.portainer_service],
    ['qdrant_service', ids.qdrant_service],
  ]);
});

E("stacks removed behind Portainer's back (docker stack rm, volumes kept): site alone starts the one-off Portainer and deploys both again through the API, same Ids; Qdrant's data survives", async () => {
  const inv = join(WORK, 'inventory-portainer.ts'); // written by the test above
  // A collection's point, to see that Qdrant's named volume outlives the switch.
  // The key reaches curl on stdin (a here-document in the script ssh feeds sudo's shell), never an argument.
  const q = (path: string, extra = '') =>
    manager(`K=$(cat <<'EOF'\n${QDRANT_KEY}\nEOF\n)\nprintf 'api-key: %s\\n' "$K" | curl -sS --max-time 5 -H @- ${extra} https://vm1002.internal.thinkheads.ai:6333${path}`);
  await q('/collections/phoenix_docs/points?wait=true', `-X PUT -H 'Content-Type: application/json' --data '{"points":[{"id":7,"vector":[0.1,0.2,0.3,0.4],"payload":{"switch":"kept"}}]}'`);
  const count = () => retryRead(async () => JSON.parse(await q('/collections/phoenix_docs/points/count', `-X POST -H 'Content-Type: application/json' --data '{"exact":true}'`)).result.count as number);
  const points = await count();
  assert.ok(points >= 1, 'a point to keep');
  await removeStacks(false); // named volumes (Qdrant's data, Portainer's database, which still lists both stacks) kept
  const json = join(WORK, 'site-switch.json');
  const r = await phoenix(['site', '--inventory', inv, '--limit', 'vm1001', '--tags', 'portainer,qdrant', '--plain', '--json', json]);
  transcripts.push(r.out, readFileSync(json, 'utf8'));
  assert.is(r.code, 0, r.out);
  const rep = report(json);
  assert.match(msgOf(rep, 'portainer API (a one-off Portainer on a fresh swarm)'), /started a one-off Portainer/);
  // Portainer's records outlived the services: the live services differ from the file, so a PUT deploys them again.
  assert.match(msgOf(rep, 'portainer stack'), new RegExp(`updated stack portainer_service \\(Id ${ids.portainer_service}\\): live services \\(portainer_service_\\w+: not running`));
  assert.match(msgOf(rep, 'qdrant stack'), new RegExp(`updated stack qdrant_service \\(Id ${ids.qdrant_service}\\): live services \\(qdrant_service_qdrant: not running\\); ready`));
  assert.match(tasks(rep).find((t) => t.handler)?.msg ?? '', /one-off Portainer removed; stack portainer_service ready/);
  assert.is(await count(), points, "Qdrant's volume kept the collection and its points");
  // Steady: site, then sync, with the same inventory, change nothing.
  const again = await phoenix(['site', '--inventory', inv, '--limit', 'vm1001', '--tags', 'portainer,qdrant', '--plain']);
  assert.is(again.code, 0, again.out);
  assert.match(again.out, /vm1001\s+ok=\d+\s+changed=0/);
  const s = await phoenix(['sync', 'all', '--inventory', inv, '--plain']);
  assert.is(s.code, 0, s.out);
  assert.match(s.out, /vm1001\s+ok=\d+\s+changed=0/);
});

E('no password, API key or token in any output, --json, --diff or process list of the run', () => {
  assert.ok(leaks(`x ${PASSWORD} y`) === 1 && leaks(Buffer.from(QDRANT_KEY).toString('base64')) === 1, 'the detector finds a planted secret');
  assert.ok(transcripts.length >= 20);
  for (const t of transcripts) assert.is(leaks(t), 0, 'a secret leaked');
  assert.is(psSamples.length, 2);
  for (const ps of psSamples) {
    // Real process lists of both VMs, taken while sync ran: dockerd, and the stand-in at work.
    assert.match(ps, /dockerd/);
    assert.match(ps, /\/usr\/local\/bin\/portainer-standin -H unix:\/\/\/var\/run\/docker\.sock/);
    assert.is(leaks(ps), 0, 'a secret in a process list');
  }
});

E.after(() => rmSync(WORK, { recursive: true, force: true }));

E.run();
