// A service is back before the run says so (issue 16, item 4), in the lab: a handler or hook
// that restarts a service is followed by a bounded wait until the service answers with the new
// certificate, so a run's exit 0 means the endpoint answers.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { run, type RunResult } from '../../runner/index.ts';
import { labInventory } from '../../lab/inventory.ts';
import { site } from '../../playbooks/site.ts';
import { curl, DOMAIN, onGuests, quiet } from './helpers.ts';

const T = suite('restarts');
const errors = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.error).map((t) => `${h.host}: ${t.task}: ${t.error!.message}`)));
const changed = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === 'changed').map((t) => `${h.host}: ${t.task}`)));
const on = async (guest: string, cmd: string) => (await onGuests(guest, cmd))[guest]!;

T("Portainer's certificate replaced by a self-signed one: one site run (--tags portainer: nothing after it to hide a slow restart), and portainer.<domain> answers 200 through the gateway as soon as it has exited", async () => {
  const gateway = () => curl(`https://portainer.${DOMAIN}/api/system/status`, 'lxc101');
  assert.is(gateway().status, 200, 'Portainer answers through the gateway before the test');
  // The files certbot's live/ links point to, overwritten with a self-signed pair (Portainer re-reads them).
  await on(
    'vm1001',
    `set -e; cd /etc/letsencrypt/live/portainer; c=$(readlink -f cert.pem); f=$(readlink -f fullchain.pem); k=$(readlink -f privkey.pem); t=$(mktemp -d); ` +
      `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=portainer.${DOMAIN} -days 2 -keyout $t/k -out $t/c 2>/dev/null; ` +
      `cp $t/c "$c"; cp $t/c "$f"; cp $t/k "$k"; rm -rf $t; ` +
      // Portainer restarted on them (Traefik keeps its upstream connections alive otherwise).
      'docker service update --force --detach=false portainer_service_portainer >/dev/null 2>&1',
  );
  const end = Date.now() + 30_000;
  while (gateway().status !== 502 && Date.now() < end) await new Promise((r) => setTimeout(r, 500));
  assert.is(gateway().status, 502, 'the gateway refuses the self-signed upstream (Traefik verifies it)');
  const q = quiet();
  const r = await run(site, { inventory: labInventory(), tags: ['portainer'], out: q.out });
  const right = gateway();
  assert.is(r.exitCode, 0, `${q.text()}\n${errors(r).join('\n')}`);
  assert.is(right.status, 200, `right after the run: ${right.status} ${right.body} ${right.stderr}`);
  assert.match(right.body, /"InstanceID":"portainer-standin"/);
  assert.ok(changed(r).includes('vm1001: certificate portainer'), changed(r).join('\n'));
  // ...and stays up: no restart left running behind the run's back (the hook's task update).
  const seen: number[] = [];
  for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) seen.push(gateway().status);
  assert.equal([...new Set(seen)], [200], `answers in the 20 s after the run: ${seen.join(' ')}`);
});


T('the lab left converged: a full site run exits 0', async () => {
  const q = quiet();
  const r = await run(site, { inventory: labInventory(), out: q.out });
  assert.is(r.exitCode, 0, q.text());
});

T.run();
