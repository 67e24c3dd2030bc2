// End to end: the runner against the lab's five real guests (npm run lab:up), host keys
// verified, as the non-root user `phoenix` with sudo, and site.ts's nginx role for real.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copy, play, playbook, role, run, shell, task, type RunResult } from '../../runner/index.ts';
import { labInventory, readLabState } from '../../lab/inventory.ts';
import { site } from '../../playbooks/site.ts';
import nginx from '../../roles/nginx/index.ts';
import { curl, DOMAIN } from './helpers.ts';

const E = suite('lab');
const GUESTS = ['lxc101', 'lxc102', 'lxc103', 'vm1001', 'vm1002'];
const quiet = () => {
  const chunks: string[] = [];
  return { out: { write: (s: string) => void chunks.push(s) }, text: () => chunks.join('') };
};
const registered = (r: RunResult, host: string, task: string) =>
  (r.plays.flatMap((p) => p.hosts[host]?.tasks ?? []).find((t) => t.task === task)?.msg ?? '').trim();

E('all five guests answer over ssh with their host keys verified', async () => {
  const inv = labInventory();
  const ping = role({ name: 'ping', tasks: [task({ name: 'hostname', do: shell('hostname', { readOnly: true }) })] });
  const o = quiet();
  // The guests (the inventory's 'all' also holds the proxmox host, this machine).
  const r = await run(playbook('ping', [play({ hosts: GUESTS, roles: [ping] })]), { inventory: inv, out: o.out });
  assert.is(r.exitCode, 0, o.text());
  assert.equal(Object.keys(r.recap).sort(), GUESTS);
  for (const g of GUESTS) assert.is(registered(r, g, 'hostname'), g);
  // A known_hosts file without the guests' keys is refused: verification is really on.
  const state = readLabState();
  const bad = labInventory({ ...state, knownHosts: '/dev/null' });
  const r2 = await run(playbook('ping', [play({ hosts: 'lxc101', roles: [ping] })]), { inventory: bad, out: quiet().out });
  assert.is(r2.exitCode, 3);
});

E('sudo works as the non-root user', async () => {
  const who = role({
    name: 'who',
    tasks: [
      task({ name: 'login user', become: false, do: shell('id -un', { readOnly: true }) }),
      task({ name: 'sudo user', do: shell('id -u', { readOnly: true }) }),
    ],
  });
  const r = await run(playbook('who', [play({ hosts: 'all', roles: [who] })]), { inventory: labInventory(), out: quiet().out });
  assert.is(r.exitCode, 0);
  for (const g of GUESTS) {
    assert.is(registered(r, g, 'login user'), 'phoenix', g);
    assert.is(registered(r, g, 'sudo user'), '0', g);
  }
});

E('a file written on one guest is not visible on another', async () => {
  const path = `/root/phx-isolation-${randomBytes(4).toString('hex')}`;
  const write = role({ name: 'w', tasks: [task({ name: 'write', do: copy({ dest: path, content: 'only on lxc101\n' }) })] });
  const look = role({ name: 'l', tasks: [task({ name: 'look', do: shell(`test -e ${path} && echo present || echo absent`, { readOnly: true }) })] });
  const cleanup = role({ name: 'c', tasks: [task({ name: 'rm', do: shell(`rm -f ${path}`) })] });
  const inv = labInventory();
  assert.is((await run(playbook('w', [play({ hosts: 'lxc101', roles: [write] })]), { inventory: inv, out: quiet().out })).exitCode, 0);
  const r = await run(playbook('l', [play({ hosts: 'all', roles: [look] })]), { inventory: inv, out: quiet().out });
  assert.is(registered(r, 'lxc101', 'look'), 'present');
  for (const g of GUESTS.filter((x) => x !== 'lxc101')) assert.is(registered(r, g, 'look'), 'absent', g);
  await run(playbook('c', [play({ hosts: 'lxc101', roles: [cleanup] })]), { inventory: inv, out: quiet().out });
});

E('--check of the nginx role on a guest without nginx: no failure, nothing installed or written', async () => {
  const inv = labInventory();
  const state = role({
    name: 'state',
    tasks: [task({ name: 'state', do: shell('{ dpkg-query -W -f="\\${Status}" nginx 2>/dev/null || echo no-nginx; ls -d /etc/nginx /var/www/phoenix 2>&1; } | tr "\\n" " "', { readOnly: true }) })],
  });
  const stateOf = async () => registered(await run(playbook('st', [play({ hosts: 'lxc102', roles: [state] })]), { inventory: inv, out: quiet().out }), 'lxc102', 'state');
  const before = await stateOf();
  assert.match(before, /no-nginx/);
  const o = quiet();
  const r = await run(playbook('check-nginx', [play({ hosts: 'lxc102', roles: [nginx] })]), { inventory: inv, check: true, out: o.out });
  assert.is(r.exitCode, 0, o.text());
  assert.is(r.recap.lxc102!.failed, 0);
  assert.ok(r.recap.lxc102!.changed >= 1, o.text());
  assert.match(o.text(), /changed\s+lxc102 \| nginx \| install nginx \(install nginx\)/);
  assert.is(await stateOf(), before);
});

E('site.ts through the CLI: nginx serves the inventory page over TLS, reachable from this machine', async () => {
  const p = spawnSync('npx', ['phoenix', 'site', '--inventory', 'lab'], { encoding: 'utf8', timeout: 900_000, env: { ...process.env, NO_COLOR: '1' } });
  assert.is(p.status, 0, `${p.stdout}\n${p.stderr}`);
  assert.match(p.stdout, /lxc101\s+ok=\d+\s+changed=\d+\s+failed=0/);
  const res = curl(`https://${DOMAIN}/`, 'lxc101');
  assert.is(res.status, 200, res.stderr);
  const body = res.body;
  assert.match(body, /<title>Phoenix Hypervisor<\/title>/);
  assert.match(body, /Gateway for internal\.thinkheads\.ai \(phoenix lab\)/);
  assert.match(body, /Served by lxc101 \(guest 101\)/);
});

E('a second run of the role changes nothing; --check after drift changes nothing and reports it', async () => {
  const inv = labInventory();
  const ao = quiet();
  const again = await run(site, { inventory: inv, out: ao.out });
  assert.is(again.exitCode, 0, ao.text());
  assert.is(again.recap.lxc101!.changed, 0);
  // Drift: someone edits the page by hand.
  const edit = role({ name: 'e', tasks: [task({ name: 'edit', do: shell("echo 'hand edit' >> /var/www/phoenix/index.html") })] });
  await run(playbook('e', [play({ hosts: 'lxc101', roles: [edit] })]), { inventory: inv, out: quiet().out });
  const sum = role({ name: 's', tasks: [task({ name: 'sum', do: shell('sha256sum /var/www/phoenix/index.html /etc/nginx/sites-available/phoenix-*.conf | cut -c1-64 | tr "\\n" " "', { readOnly: true }) })] });
  const sumOf = async () => registered(await run(playbook('s', [play({ hosts: 'lxc101', roles: [sum] })]), { inventory: inv, out: quiet().out }), 'lxc101', 'sum');
  const before = await sumOf();
  const o = quiet();
  const check = await run(site, { inventory: inv, check: true, diff: true, out: o.out });
  assert.is(check.exitCode, 0, o.text());
  assert.is(await sumOf(), before, 'check mode changed a file on lxc101');
  assert.match(o.text(), /changed\s+lxc101 \| nginx \| landing page/);
  assert.match(o.text(), /-hand edit/);
  const fix = await run(site, { inventory: inv, out: quiet().out });
  assert.equal(
    fix.plays.flatMap((p) => (p.hosts.lxc101?.tasks ?? []).filter((t) => t.status === 'changed').map((t) => t.task)),
    check.plays.flatMap((p) => (p.hosts.lxc101?.tasks ?? []).filter((t) => t.status === 'changed').map((t) => t.task)),
  );
  assert.not.match(curl(`https://${DOMAIN}/`, 'lxc101').body, /hand edit/);
});

E.run();
