// End to end: the traefik role on lxc102 (the lab's Traefik guest), with the lab's stand-in
// (lab/standins/traefik/) installed where Traefik goes. Needs step-ca and trust in place
// (site.ts's first plays; run here when the CA is not serving yet). Checks from this machine:
// TLS on :443 verified with the exported root for traefik.<domain>, /ping, routing by Host with
// the dynamic config the role rendered (and re-rendered), the redirect on :80, idempotence,
// --check on a fresh guest, and that a bad inventory changes nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { play, playbook, role, run, shell, task, type Inventory, type RunResult } from '../../runner/index.ts';
import { labInventory, readLabState, LAB_ROOT } from '../../lab/inventory.ts';
import type { PhoenixVars } from '../../inventory.ts';
import traefik from '../../roles/traefik/index.ts';
import stepCa from '../../roles/step-ca/index.ts';
import trust from '../../roles/trust/index.ts';

const E = suite('traefik');
const HOST = 'lxc102';
const state = readLabState();
const IP = state.hosts[HOST]!.address;
const base = labInventory();
const D = (base.vars as PhoenixVars).domain;
const NAME = `traefik.${D}`;

const quiet = () => {
  const chunks: string[] = [];
  return { out: { write: (s: string) => void chunks.push(s) }, text: () => chunks.join('') };
};
const book = playbook<PhoenixVars>('traefik', [play({ hosts: HOST, roles: [traefik] })]);
const runTraefik = async (opts: { inventory?: Inventory<PhoenixVars>; check?: boolean; diff?: boolean } = {}) => {
  const o = quiet();
  const r = await run(book, { inventory: opts.inventory ?? labInventory(), limit: [HOST], check: opts.check, diff: opts.diff, out: o.out });
  return { r, text: o.text() };
};
const tasks = (r: RunResult) => r.plays.flatMap((p) => p.hosts[HOST]?.tasks ?? []);
const changedTasks = (r: RunResult) => tasks(r).filter((t) => t.status === 'changed').map((t) => t.task);

/** A command on lxc102, as root; its whole stdout (base64 on the wire: a task's msg is one line). */
async function onGuest(cmd: string, readOnly = true): Promise<string> {
  const probe = role({ name: 'probe', tasks: [task({ name: 'probe', do: shell(`{ ${cmd}\n} | base64 -w0`, { readOnly }) })] });
  const r = await run(playbook('probe', [play({ hosts: HOST, roles: [probe] })]), { inventory: labInventory(), out: quiet().out });
  assert.is(r.exitCode, 0, `probe failed: ${cmd}`);
  return Buffer.from(tasks(r).find((t) => t.task === 'probe')?.msg ?? '', 'base64').toString('utf8').trim();
}

/** What a fresh guest has or lacks, and every file the role writes (content hashes). */
const snapshot = () =>
  onGuest(
    'for p in /etc/traefik /etc/traefik/traefik.yml /etc/traefik/dynamic /etc/traefik/tls /usr/local/bin/traefik /etc/systemd/system/traefik.service ' +
      '/usr/local/lib/phoenix /etc/letsencrypt/live/traefik; do printf "%s " "$p"; if [ -e "$p" ]; then stat -c "%a %U" "$p" | tr "\\n" " "; fi; echo; done; ' +
      'find /etc/traefik /usr/local/lib/phoenix /etc/letsencrypt -type f 2>/dev/null | sort | xargs -r sha256sum; ' +
      'id traefik 2>&1; dpkg-query -W -f="\\${Status}\\n" certbot 2>&1; systemctl is-active traefik 2>&1; true',
  );

type Res = { status: number; headers: IncomingHttpHeaders; body: string };

/** HTTPS to lxc102:443 with SNI traefik.<domain>, verified with the root site.ts exported. */
function tlsGet(path: string, hostHeader: string, port = 443): Promise<Res & { serial: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: IP, port, path, servername: NAME, ca: readFileSync(LAB_ROOT), headers: { Host: hostHeader }, agent: false },
      (res) => {
        const serial = (res.socket as unknown as { getPeerCertificate(): { serialNumber: string } }).getPeerCertificate().serialNumber;
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, serial }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function plainGet(port: number, path: string, hostHeader?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: IP, port, path, headers: hostHeader ? { Host: hostHeader } : {}, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Traefik picks dynamic changes up by watching its directory: wait (bounded) until a request shows it. */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, seconds = 30): Promise<T> {
  const end = Date.now() + seconds * 1000;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await get().catch(() => undefined as T);
    if (last !== undefined && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.unreachable(`${what}: not seen within ${seconds}s (last: ${JSON.stringify(last)})`);
  return last as T;
}

/** The lab inventory with a change to Traefik's vars. */
function withTraefik(edit: (t: PhoenixVars['traefik']) => void): Inventory<PhoenixVars> {
  const inv = labInventory();
  const t = structuredClone((inv.vars as PhoenixVars).traefik);
  edit(t);
  return { ...inv, vars: { ...inv.vars, traefik: t } };
}

E.before(async () => {
  // The CA must serve and lxc102 must trust it and resolve the names (site.ts's first plays).
  if (!existsSync(LAB_ROOT) || !(await onGuest(`curl -fsS https://ca.${D}:9000/health || true`)).includes('ok')) {
    const r = await run(playbook('ca', [play({ hosts: 'stepca', roles: [stepCa] }), play({ hosts: 'guests', roles: [trust] })]), { inventory: labInventory(), out: quiet().out });
    assert.is(r.exitCode, 0, 'step-ca and trust did not come up');
  }
});

E('--check on a guest without Traefik: no failure, nothing installed, written or issued', async () => {
  // Make lxc102 fresh: no Traefik, no certbot, no Traefik certificate (other lineages in /etc/letsencrypt are left alone: remove, not purge).
  await onGuest(
    'systemctl disable --now traefik >/dev/null 2>&1; rm -f /etc/systemd/system/traefik.service; systemctl daemon-reload; ' +
      'rm -rf /etc/traefik /usr/local/bin/traefik /usr/local/lib/phoenix /var/lib/phoenix/binaries/traefik ' +
      '/etc/letsencrypt/live/traefik /etc/letsencrypt/archive/traefik /etc/letsencrypt/renewal/traefik.conf; ' +
      'userdel traefik >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get remove -y -q certbot >/dev/null 2>&1; true',
    false,
  );
  const before = await snapshot();
  assert.match(before, /no such user/);
  assert.not.match(before, /install ok installed/);
  const { r, text } = await runTraefik({ check: true });
  assert.is(r.exitCode, 0, text);
  assert.is(r.recap[HOST]!.failed, 0, text);
  assert.ok(r.recap[HOST]!.changed >= 1, text);
  assert.match(text, /changed\s+lxc102 \| traefik \| install traefik/);
  assert.match(text, /unknown\s+lxc102 \| traefik \| certificate traefik/);
  assert.is(await snapshot(), before, 'check mode changed something on lxc102');
});

E('a run installs Traefik (the lab stand-in), its certificate from step-ca, and serves TLS verified with the root', async () => {
  const { r, text } = await runTraefik();
  assert.is(r.exitCode, 0, text);
  assert.ok(changedTasks(r).includes('certificate traefik'), text);
  // The role's binary is what the lab inventory's source named: the stand-in, by its sha256.
  const sum = await onGuest('sha256sum /usr/local/bin/traefik | cut -c1-64');
  assert.is(sum, readFileSync(`${state.traefikStandin!.binary}.sha256`, 'utf8').trim());
  // Runs as its own user, not root.
  assert.is(await onGuest('ps -o user= -C traefik | sort -u'), 'traefik');
  const res = await tlsGet('/', NAME);
  assert.is(res.status, 404); // no router for traefik.<domain> itself
  assert.is(res.headers['x-phoenix-standin'], 'traefik-standin');
});

E('/ping on the traefik entrypoint; :80 redirects to https except the ACME challenge path', async () => {
  const ping = await plainGet(8080, '/ping');
  assert.is(ping.status, 200);
  assert.is(ping.body, 'OK');
  assert.is(ping.headers['x-phoenix-standin'], 'traefik-standin');
  const redir = await plainGet(80, '/some/path?q=1', `qdrant.${D}`);
  assert.is(redir.status, 301);
  assert.is(redir.headers.location, `https://qdrant.${D}/some/path?q=1`);
  // The challenge path goes to certbot's loopback port (nothing listens between runs: 502), not to the redirect.
  const acme = await plainGet(80, '/.well-known/acme-challenge/x', NAME);
  assert.is(acme.status, 502);
});

E('a second run changes nothing and keeps the certificate', async () => {
  const serial = (await tlsGet('/', NAME)).serial;
  const pid = await onGuest('systemctl show -p MainPID --value traefik');
  const { r, text } = await runTraefik();
  assert.is(r.exitCode, 0, text);
  assert.is(r.recap[HOST]!.changed, 0, text);
  assert.is((await tlsGet('/', NAME)).serial, serial);
  assert.is(await onGuest('systemctl show -p MainPID --value traefik'), pid);
});

E("unattended renewal (certbot renew, as its timer runs it) reaches Traefik through the deploy hook, without a restart", async () => {
  const serial = (await tlsGet('/', NAME)).serial;
  const pid = await onGuest('systemctl show -p MainPID --value traefik');
  await onGuest('env -u REQUESTS_CA_BUNDLE certbot renew --cert-name traefik --force-renewal --quiet', false);
  const hex = (x: string) => x.replace(/^serial=/, '').replace(/^0+/, '').toUpperCase();
  const live = hex(await onGuest('openssl x509 -in /etc/letsencrypt/live/traefik/cert.pem -noout -serial'));
  assert.is.not(live, hex(serial));
  await until('the renewed certificate served', () => tlsGet('/', NAME), (x) => hex(x.serial) === live);
  assert.is(await onGuest('systemctl show -p MainPID --value traefik'), pid);
  const { r, text } = await runTraefik();
  assert.is(r.recap[HOST]!.changed, 0, text);
});

// Routers of the test's own, to upstreams this test can count on: step-ca's HTTPS API (its
// certificate names ca.<domain>, not lxc103.<domain>: the second must be refused).
const withTestRouters = (caHost: string) =>
  withTraefik((t) => {
    t.routers['e2e-ca'] = { rule: `Host(\`${caHost}\`)`, service: 'e2e-ca', entryPoints: ['websecure'], tls: {} };
    t.routers['e2e-wrong-name'] = { rule: `Host(\`e2e-wrong.${D}\`)`, service: 'e2e-wrong-name', entryPoints: ['websecure'], tls: {} };
    t.services['e2e-ca'] = { servers: [`https://ca.${D}:9000`] };
    t.services['e2e-wrong-name'] = { servers: [`https://lxc103.${D}:9000`] };
  });

E('routing by Host with the rendered dynamic config, to https upstreams verified by name; a change re-routes without a restart', async () => {
  const pid = await onGuest('systemctl show -p MainPID --value traefik');
  const first = await runTraefik({ inventory: withTestRouters(`e2e-ca.${D}`) });
  assert.is(first.r.exitCode, 0, first.text);
  assert.equal(changedTasks(first.r), ['dynamic config']);
  // The file on the guest is what Traefik routes by.
  assert.match(await onGuest('cat /etc/traefik/dynamic/phoenix.yml'), /rule: Host\(`e2e-ca\.internal\.thinkheads\.ai`\)/);
  const health = await until('e2e-ca.<domain> routed to step-ca', () => tlsGet('/health', `e2e-ca.${D}`), (x) => x.status === 200);
  assert.equal(JSON.parse(health.body), { status: 'ok' });
  assert.is((await tlsGet('/health', `e2e-wrong.${D}`)).status, 502); // upstream certificate not for that name
  assert.is((await tlsGet('/health', `nothing.${D}`)).status, 404);

  // --check of a changed rule reports the file and changes nothing.
  const moved = withTestRouters(`e2e-moved.${D}`);
  const before = await snapshot();
  const check = await runTraefik({ inventory: moved, check: true, diff: true });
  assert.is(check.r.exitCode, 0, check.text);
  assert.equal(changedTasks(check.r), ['dynamic config']);
  assert.match(check.text, /\+\s+rule: Host\(`e2e-moved\.internal\.thinkheads\.ai`\)/);
  assert.is(await snapshot(), before);

  const run2 = await runTraefik({ inventory: moved });
  assert.equal(changedTasks(run2.r), ['dynamic config']);
  await until('e2e-moved.<domain> routed', () => tlsGet('/health', `e2e-moved.${D}`), (x) => x.status === 200);
  assert.is((await tlsGet('/health', `e2e-ca.${D}`)).status, 404);
  assert.is(await onGuest('systemctl show -p MainPID --value traefik'), pid, 'a dynamic change restarted Traefik');

  // Back to the lab inventory: the test routers are gone.
  const back = await runTraefik();
  assert.equal(changedTasks(back.r), ['dynamic config']);
  await until('e2e-moved.<domain> no longer routed', () => tlsGet('/health', `e2e-moved.${D}`), (x) => x.status === 404);
  assert.match(await onGuest('cat /etc/traefik/dynamic/phoenix.yml'), /rule: Host\(`qdrant\.internal\.thinkheads\.ai`\)/);
});

E('a static change restarts Traefik (in its task: replace, docs/rollback.md), which answers /ping again', async () => {
  const pid = await onGuest('systemctl show -p MainPID --value traefik');
  const { r, text } = await runTraefik({ inventory: withTraefik((t) => void (t.log.level = 'DEBUG')) });
  assert.is(r.exitCode, 0, text);
  assert.equal(changedTasks(r), ['static config']);
  assert.match(tasks(r).find((t) => t.task === 'static config')!.msg ?? '', /traefik restarted and answers http:\/\/127\.0\.0\.1:8080\/ping/);
  assert.is.not(await onGuest('systemctl show -p MainPID --value traefik'), pid);
  assert.match(await onGuest('cat /etc/traefik/traefik.yml'), /level: DEBUG/);
  const back = await runTraefik();
  assert.equal(changedTasks(back.r), ['static config']);
  assert.is((await plainGet(8080, '/ping')).status, 200);
});

E('a static config Traefik does not come back on is rolled back; Traefik serves again; the run fails saying so', async () => {
  const good = await onGuest('sha256sum /etc/traefik/traefik.yml | cut -c1-64');
  // Valid to every check, but sshd holds :22, so the ping entrypoint cannot listen.
  const { r, text } = await runTraefik({ inventory: withTraefik((t) => void (t.entryPoints.traefik!.address = ':22')) });
  assert.is(r.exitCode, 2, text);
  assert.match(text, /traefik on lxc102 did not come back after \/etc\/traefik\/traefik\.yml changed: .*rolled back: the previous \/etc\/traefik\/traefik\.yml is back; traefik answers http:\/\/127\.0\.0\.1:8080\/ping again/);
  assert.match(text, /:22/); // Traefik's own log line about the address
  assert.is(await onGuest('sha256sum /etc/traefik/traefik.yml | cut -c1-64'), good);
  assert.is((await plainGet(8080, '/ping')).status, 200);
  assert.is((await tlsGet('/', NAME)).status, 404);
  // The next run with the lab inventory has nothing to do.
  const again = await runTraefik();
  assert.is(again.r.recap[HOST]!.changed, 0, again.text);
});

E('a bad inventory value fails before anything reaches the host, naming the field', async () => {
  const before = await snapshot();
  const { r, text } = await runTraefik({ inventory: withTraefik((t) => void (t.routers.qdrant!.service = 'qdrnt')) });
  assert.is(r.exitCode, 2);
  assert.match(text, /traefik\.routers\.qdrant\.service: no such service "qdrnt"/);
  assert.equal(
    tasks(r).filter((t) => t.status !== 'skipped').map((t) => `${t.task}:${t.status}`),
    ['render and check config:failed'],
  );
  assert.is(await snapshot(), before);
});

E.run();
