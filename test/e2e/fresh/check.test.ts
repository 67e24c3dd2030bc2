// --check on a fresh lab (runs first in `npm test`'s e2e stage): the whole site playbook in
// check mode changes nothing on any guest — files, packages, services, swarm state — and asks
// the CA for no certificate. A lab that site.ts already ran on is recreated first.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { run } from '../../../runner/index.ts';
import { labInventory } from '../../../lab/inventory.ts';
import { site } from '../../../playbooks/site.ts';
import { GUESTS, onGuests, quiet, SNAPSHOT } from '../helpers.ts';

const F = suite('fresh lab');

F('--check on a fresh lab changes nothing on any guest and issues no certificate', async () => {
  const used = await onGuests(GUESTS, 'ls -d /etc/step-ca /etc/letsencrypt /etc/nginx /etc/traefik /var/lib/phoenix 2>/dev/null; docker info --format "{{.Swarm.LocalNodeState}}" 2>/dev/null | grep -v inactive; true');
  if (Object.values(used).some((s) => s.trim() !== '')) {
    // Fresh guests: lab:down && lab:up (images and the step-ca build stay cached).
    for (const step of ['down', 'up']) {
      const p = spawnSync('bash', [`lab/${step}.sh`], { encoding: 'utf8', timeout: 900_000 });
      assert.is(p.status, 0, `lab ${step}: ${p.stdout}\n${p.stderr}`);
    }
  }
  const before = await onGuests(GUESTS, SNAPSHOT);
  // The snapshot itself is stable (nothing else moves these files on an idle guest).
  assert.equal(await onGuests(GUESTS, SNAPSHOT), before);
  const o = quiet();
  const r = await run(site, { inventory: labInventory(), check: true, diff: true, out: o.out });
  assert.is(r.exitCode, 0, o.text());
  const changed = Object.values(r.recap).reduce((n, c) => n + c.changed + c.unknown, 0);
  assert.ok(changed > 20, `a fresh lab has a lot to do; check mode reported only ${changed}:\n${o.text()}`);
  for (const g of GUESTS) assert.is(r.recap[g]!.failed, 0, `${g}\n${o.text()}`);
  const after = await onGuests(GUESTS, SNAPSHOT);
  for (const g of GUESTS) assert.is(after[g], before[g], `check mode changed ${g}`);
  // No certificate was asked for: no certbot state anywhere, no step-ca (so no issuance).
  const certs = await onGuests(GUESTS, 'ls -d /etc/letsencrypt /etc/step-ca 2>/dev/null; true');
  for (const g of GUESTS) assert.is(certs[g]!.trim(), '', `${g}: ${certs[g]}`);
});

F.run();
