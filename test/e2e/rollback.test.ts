// End to end, the runner's `replace` (docs/rollback.md) in its three users on the lab: a config
// that passes every static check but that the service refuses when it starts (a port sshd
// holds) fails the run naming the service's own error and saying it rolled back; the previous
// file is back byte for byte (sha256), the service answers again as before, and the next run
// with the lab inventory changes nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { run, type RunResult, type Inventory } from '../../runner/index.ts';
import { labInventory } from '../../lab/inventory.ts';
import type { PhoenixVars } from '../../inventory.ts';
import { site } from '../../playbooks/site.ts';
import { address, curl, DOMAIN, onGuests, quiet, labWith } from './helpers.ts';

const R = suite('rollback');

const failedTask = (r: RunResult, host: string) => r.plays.flatMap((p) => p.hosts[host]?.tasks ?? []).find((t) => t.status === 'failed');
const changed = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === 'changed').map((t) => `${h.host}: ${t.task}`)));
const sha = async (guest: string, path: string) => (await onGuests(guest, `sha256sum ${path} | cut -c1-64`))[guest]!.trim();
const prevLeft = async (guest: string, path: string) => (await onGuests(guest, `ls -d ${path}.phx-prev 2>/dev/null; true`))[guest]!.trim();

async function refused(guest: string, path: string, inventory: Inventory<PhoenixVars>, tags: string[]) {
  const before = await sha(guest, path);
  const o = quiet();
  const r = await run(site, { inventory, tags, out: o.out });
  assert.is(r.exitCode, 2, o.text());
  const failed = failedTask(r, guest);
  assert.ok(failed, `a task failed on ${guest}: ${o.text()}`);
  assert.is(await sha(guest, path), before, `${path} is the previous file again`);
  assert.is(await prevLeft(guest, path), '', 'no .phx-prev copy is left behind');
  return { failed: failed!, text: o.text() };
}

R('traefik: a static config Traefik cannot start on (ping entrypoint on :22) is rolled back, with Traefik\'s own error; /ping and TLS answer again', async () => {
  const { failed, text } = await refused('lxc102', '/etc/traefik/traefik.yml', labWith((v) => void (v.traefik.entryPoints.traefik!.address = ':22')), ['traefik']);
  assert.is(failed.task, 'static config');
  assert.match(failed.error!.message, /^traefik on lxc102 did not come back after \/etc\/traefik\/traefik\.yml changed: /);
  assert.match(failed.error!.message, /:22/, "Traefik's own words about the address");
  assert.match(failed.error!.message, /rolled back: the previous \/etc\/traefik\/traefik\.yml is back; traefik answers http:\/\/127\.0\.0\.1:8080\/ping again/);
  assert.match(text, /rolled back/);
  const ping = await onGuests('lxc102', "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/ping");
  assert.is(ping.lxc102, '200');
  assert.is(curl(`https://traefik.${DOMAIN}/phoenix-tls-check`, 'lxc102').status, 404, 'TLS served as before');
  const again = await run(site, { inventory: labInventory(), tags: ['traefik'], out: quiet().out });
  assert.is(again.exitCode, 0);
  assert.equal(changed(again), []);
});

R('Docker API: a daemon.json dockerd cannot start on (TLS API on :22) is rolled back, with dockerd\'s own error; the API answers again', async () => {
  const { failed } = await refused('vm1001', '/etc/docker/daemon.json', labWith((v) => void (v.swarm.tlsApi.port = 22)), ['docker-api']);
  assert.is(failed.task, 'daemon.json: TLS API with client verification');
  assert.match(failed.error!.message, /^dockerd on vm1001 did not come back after \/etc\/docker\/daemon\.json changed: /);
  assert.match(failed.error!.message, /:22.*address already in use|address already in use.*:22/i, "dockerd's own words");
  assert.match(failed.error!.message, /rolled back: the previous \/etc\/docker\/daemon\.json is back; dockerd accepts [\d.]+:2376 and passes `docker info >\/dev\/null` again/);
  const up = await onGuests('vm1001', `docker info --format '{{.Swarm.LocalNodeState}}'; timeout 3 bash -c 'exec 3<>/dev/tcp/${address('vm1001')}/2376' && echo listening`);
  assert.match(up.vm1001!, /active\nlistening/);
  // The API self-test (client CA served, others refused) passes, and nothing is left to change.
  const again = await run(site, { inventory: labInventory(), tags: ['docker-api'], out: quiet().out });
  assert.is(again.exitCode, 0);
  assert.equal(changed(again), []);
});

R('step-ca: a ca.json the trial accepts but the live step-ca cannot serve on (:22) is rolled back, with step-ca\'s own error; /health answers again', async () => {
  const { failed } = await refused('lxc103', '/etc/step-ca/config/ca.json', labWith((v) => void (v.stepCa.port = 22)), ['step-ca']);
  assert.is(failed.task, 'ca.json');
  assert.match(failed.error!.message, /^step-ca on lxc103 did not come back after \/etc\/step-ca\/config\/ca\.json changed: .*address already in use/i);
  assert.match(failed.error!.message, /rolled back: the previous \/etc\/step-ca\/config\/ca\.json is back; step-ca answers https:\/\/localhost:9000\/health again/);
  assert.is(curl(`https://ca.${DOMAIN}:9000/health`, 'lxc103').status, 200);
  const again = await run(site, { inventory: labInventory(), tags: ['step-ca'], out: quiet().out });
  assert.equal(changed(again), []);
});

R.run();
