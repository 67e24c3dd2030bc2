// Trust boundaries in the lab (issue 16): the Docker API on vm1001 serves only certificates of
// its own client CA, never a guest's step-ca server certificate (the gateway's, Traefik's, a
// worker's); step-ca issues server-auth-only leaves; Traefik's client certificate is
// client-auth only and its swarm provider still discovers the services.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, secret, type RunResult } from '../../runner/index.ts';
import { labInventory, labSecretFile } from '../../lab/inventory.ts';
import { site } from '../../playbooks/site.ts';
import { DOMAIN, labWith, onGuests, quiet } from './helpers.ts';

const T = suite('trust');

const errors = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.error).map((t) => `${h.host}: ${t.task}: ${t.error!.message}`)));
const changed = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === 'changed').map((t) => `${h.host}: ${t.task}`)));
const on = async (guest: string, cmd: string) => (await onGuests(guest, cmd))[guest]!;

const API = `https://vm1001.${DOMAIN}:2376/version`;
const ROOT = '/usr/local/share/ca-certificates/phoenix-root-ca.crt';
/** curl on a guest against the Docker API, with a certificate (or none); prints "code=<http> rc=<exit>" and curl's error. */
const tryApi = (guest: string, cert?: { cert: string; key: string }) =>
  on(guest, `curl -sS --max-time 5 --cacert ${ROOT} ${cert ? `--cert ${cert.cert} --key ${cert.key}` : ''} -o /dev/null -w 'code=%{http_code}\\n' ${API} 2>&1; echo "rc=$?"`);
const refused = (out: string, what: string) => {
  assert.match(out, /code=000/, `${what} was served: ${out}`);
  assert.match(out, /alert (bad certificate|unknown ca)|certificate required|alert/i, `${what}: no TLS alert from dockerd: ${out}`);
};
const live = (name: string) => ({ cert: `/etc/letsencrypt/live/${name}/fullchain.pem`, key: `/etc/letsencrypt/live/${name}/privkey.pem` });

T('site converges; the self-test reports the gateway refused', async () => {
  const q = quiet();
  const r = await run(site, { inventory: labInventory(), out: q.out });
  assert.is(r.exitCode, 0, `${q.text()}\n${errors(r).join('\n')}`);
  const msg = r.plays.flatMap((p) => p.hosts.vm1001?.tasks ?? []).find((t) => t.task === 'docker API serves only its client CA')?.msg ?? '';
  assert.match(msg, /refused: a client without a certificate, vm1001's own step-ca certificate, lxc101's step-ca certificate gateway/);
});

T("the Docker API refuses the gateway's, Traefik's and a worker's step-ca server certificates", async () => {
  refused(await tryApi('lxc101', live('gateway')), "the gateway's certificate (lxc101)");
  refused(await tryApi('lxc102', live('traefik')), "Traefik's server certificate (lxc102)");
  refused(await tryApi('vm1001', live('docker-api')), "the manager's own server certificate");
  // A worker's server certificate: issued now by step-ca over ACME, as the roles do (certbot, http-01).
  const dir = `https://ca.${DOMAIN}:9000/acme/acme/directory`;
  const issued = await on(
    'vm1002',
    'export DEBIAN_FRONTEND=noninteractive; command -v certbot >/dev/null || apt-get install -y -q certbot >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1; apt-get install -y -q certbot >/dev/null 2>&1; }; ' +
      `REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt certbot certonly --non-interactive --agree-tos --no-eff-email --quiet --register-unsafely-without-email --server ${dir} ` +
      `--standalone --http-01-port 80 --cert-name e2e-worker -d vm1002.${DOMAIN} --force-renewal 2>&1; echo "rc=$?"`,
  );
  assert.match(issued, /rc=0/, issued);
  const eku = await on('vm1002', `openssl x509 -in /etc/letsencrypt/live/e2e-worker/cert.pem -noout -ext extendedKeyUsage`);
  assert.match(eku, /TLS Web Server Authentication/);
  assert.not.match(eku, /Client Authentication/, `step-ca's ACME leaves are server-auth only: ${eku}`);
  refused(await tryApi('vm1002', live('e2e-worker')), "a worker's server certificate (vm1002)");
  await on('vm1002', 'certbot delete --non-interactive --cert-name e2e-worker >/dev/null 2>&1; true');
});

T("Traefik's client certificate is served, is client-auth only, and its key was made on lxc102", async () => {
  const c = { cert: '/etc/traefik/docker/cert.pem', key: '/etc/traefik/docker/key.pem' };
  assert.match(await tryApi('lxc102', c), /code=200/);
  refused(await tryApi('lxc102'), 'a client without a certificate');
  const x = await on('lxc102', `openssl x509 -in ${c.cert} -noout -issuer -ext extendedKeyUsage,basicConstraints,subjectAltName`);
  assert.match(x, /Phoenix Docker API client CA/);
  assert.match(x, /TLS Web Client Authentication/);
  assert.not.match(x, /Server Authentication/);
  assert.match(x, /CA:FALSE/);
  assert.match(x, new RegExp(`DNS:traefik\\.${DOMAIN.replace(/\./g, '\\.')}`));
  // dockerd trusts only the client CA (not the step-ca root), and no step-ca client lineage is left.
  assert.match(await on('vm1001', 'cat /etc/docker/daemon.json'), /"tlscacert": "\/etc\/phoenix\/docker-api-client-ca\/ca.crt"/);
  assert.is((await on('lxc102', 'ls /etc/letsencrypt/renewal/docker-client.conf /usr/local/lib/phoenix/docker-client-cert-deploy 2>/dev/null | wc -l')).trim(), '0');
  // The key never left lxc102: the manager holds no copy of it.
  const pub = (await on('lxc102', `openssl pkey -in ${c.key} -pubout | sha256sum`)).trim();
  const mgr = await on('vm1001', 'for f in $(grep -rl "PRIVATE KEY" /etc /root /tmp 2>/dev/null); do openssl pkey -in "$f" -pubout 2>/dev/null | sha256sum; done');
  assert.not.ok(mgr.includes(pub.split(' ')[0]!), "Traefik's client key is on the manager");
});

T("Traefik's swarm provider (the lab's stand-in) is connected with the client CA's certificate and sees the stacks", async () => {
  const end = Date.now() + 40_000;
  let a: { swarm?: { connected: boolean; services: string[]; error?: string } } = {};
  while (Date.now() < end) {
    a = JSON.parse(await on('lxc102', 'curl -sS --max-time 5 http://127.0.0.1:8080/api'));
    if (a.swarm?.connected && a.swarm.services.includes('qdrant_service_qdrant')) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.ok(a.swarm?.connected, JSON.stringify(a.swarm));
  assert.ok(a.swarm!.services.includes('portainer_service_portainer'), JSON.stringify(a.swarm));
});

// ---- key password rotation (issue 16, item 2) -------------------------------------------------
const S = '/etc/step-ca/secrets';
const FILES = `${S}/root_ca_key ${S}/intermediate_ca_key ${S}/password /etc/step-ca/certs/root_ca.crt /etc/step-ca/certs/intermediate_ca.crt`;
const sums = async () => (await on('lxc103', `sha256sum ${FILES}; ls -a ${S}`)).trim();
const ORIGINAL = readFileSync(labSecretFile('stepca-key-password'), 'utf8').trim();
const NEW_PW = `rotated-${randomBytes(12).toString('hex')}`;
const WRONG = `wrong-${randomBytes(12).toString('hex')}`;
/** The step-ca play alone, with the given key password. */
const pki = async (pw: string, o: { check?: boolean; json?: string } = {}) => {
  const q = quiet();
  const r = await run(site, { inventory: labWith((v) => (v.stepCa.keyPassword = secret(pw, 'stepCa.keyPassword'))), tags: ['pki'], limit: ['lxc103'], out: q.out, diff: true, ...o });
  return { r, text: q.text() };
};
const task = (r: RunResult, name: string) => r.plays.flatMap((p) => p.hosts.lxc103?.tasks ?? []).find((t) => t.task === name);
/** Does the password file hold `pw`, and do both keys open with the file? (the value goes on stdin, never argv) */
const fileHolds = async (pw: string) =>
  (await on('lxc103', `IFS= read -r P <<'EOF'\n${pw}\nEOF\nprintf '%s' "$P" | cmp -s - ${S}/password && echo same || echo differs; openssl pkey -in ${S}/root_ca_key -passin file:${S}/password -noout && openssl pkey -in ${S}/intermediate_ca_key -passin file:${S}/password -noout && echo opens`)).trim();
const SAMPLER = `rm -f /tmp/phx-argv.log /tmp/phx-argv.stop; nohup sh -c 'while [ ! -e /tmp/phx-argv.stop ]; do cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n" >> /tmp/phx-argv.log; done' >/dev/null 2>&1 &`;
const sampled = (values: string[]) =>
  on('lxc103', `touch /tmp/phx-argv.stop; sleep 1; rm -f /tmp/phx-argv.stop; wc -l < /tmp/phx-argv.log; grep -c -F -f - /tmp/phx-argv.log <<'EOF' || true\n${values.join('\n')}\nEOF\nrm -f /tmp/phx-argv.log`);

T('key password: --check says it would rotate and changes nothing; the run rotates, step-ca restarts with the same root; a second run changes 0; no secret shown', async () => {
  assert.is(await fileHolds(ORIGINAL), 'same\nopens', 'the lab starts with its own password');
  const before = await sums();
  const pid0 = (await on('lxc103', 'systemctl show -p MainPID --value step-ca')).trim();
  const c = await pki(NEW_PW, { check: true });
  assert.is(c.r.exitCode, 0, c.text);
  assert.is(task(c.r, 'key password')?.msg, 'would rotate the key password');
  assert.is(await sums(), before, '--check changed a file');
  assert.not.ok(c.text.includes(NEW_PW) || c.text.includes(ORIGINAL), 'a password in --check output');

  await on('lxc103', SAMPLER);
  const json = join(tmpdir(), `phx-trust-${process.pid}.json`);
  const r = await pki(NEW_PW, { json });
  const [lines, hits] = (await sampled([NEW_PW, ORIGINAL])).trim().split('\n');
  const report = readFileSync(json, 'utf8');
  rmSync(json, { force: true });
  assert.is(r.r.exitCode, 0, `${r.text}\n${errors(r.r).join('\n')}`);
  assert.match(task(r.r, 'key password')?.msg ?? '', /rotated the key password; step-ca restarted and healthy/);
  assert.ok(Number(lines) > 100, `the sampler saw the processes (${lines} lines)`);
  assert.is(hits, '0', 'a password was on an argument list or in an environment');
  for (const t of [r.text, report]) assert.not.ok(t.includes(NEW_PW) || t.includes(ORIGINAL), 'a password in the output or --json report');
  assert.is(await fileHolds(NEW_PW), 'same\nopens');
  const after = await sums();
  const pick = (s: string, f: string) => s.split('\n').find((l) => l.endsWith(f));
  assert.is(pick(after, 'root_ca.crt'), pick(before, 'root_ca.crt'), 'same root');
  assert.is(pick(after, 'intermediate_ca.crt'), pick(before, 'intermediate_ca.crt'), 'same intermediate');
  assert.is.not(pick(after, 'root_ca_key'), pick(before, 'root_ca_key'), 'the root key was re-encrypted');
  assert.not.match(after, /\.rotate/, 'no staging left behind');
  assert.is.not((await on('lxc103', 'systemctl show -p MainPID --value step-ca')).trim(), pid0, 'step-ca was restarted');
  // Serves, verified with the root the control machine already has; and issues (the same root signs).
  assert.match(await on('lxc101', `curl -sS --max-time 5 --cacert /usr/local/share/ca-certificates/phoenix-root-ca.crt https://ca.${DOMAIN}:9000/health`), /"status":"ok"/);
  const again = await pki(NEW_PW);
  assert.is(again.r.exitCode, 0, again.text);
  assert.equal(changed(again.r), []);
});

T('key password: neither the inventory nor the password file opens the keys: the run fails naming that, nothing on the host changes', async () => {
  // The password file replaced by hand (its current content kept aside for the end of the test).
  await on('lxc103', `cp -p ${S}/password /root/phx-pw-keep && printf '%s' 'by-hand-garbage' > ${S}/password`);
  try {
    const before = await sums();
    const r = await pki(WRONG);
    assert.is(r.r.exitCode !== 0, true, r.text);
    assert.match(task(r.r, 'key password')?.error?.message ?? '', /neither stepCa\.keyPassword nor the password in \/etc\/step-ca\/secrets\/password opens the step-ca keys.*nothing was changed/);
    assert.is(await sums(), before, 'a file changed on the CA host');
    assert.not.ok(r.text.includes(WRONG), 'the password in the output');
  } finally {
    await on('lxc103', `mv -f /root/phx-pw-keep ${S}/password`);
  }
});

T("key password: back to the lab's own (rotated again from the inventory), step-ca healthy, then 0 changes", async () => {
  const r = await run(site, { inventory: labInventory(), tags: ['pki'], limit: ['lxc103'], out: quiet().out });
  assert.is(r.exitCode, 0, errors(r).join('\n'));
  assert.is(await fileHolds(ORIGINAL), 'same\nopens');
  const again = await run(site, { inventory: labInventory(), tags: ['pki'], limit: ['lxc103'], out: quiet().out });
  assert.equal(changed(again), []);
});

T('a second site run changes nothing', async () => {
  const q = quiet();
  const r = await run(site, { inventory: labInventory(), out: q.out });
  assert.is(r.exitCode, 0, q.text());
  assert.equal(changed(r), []);
});

T.run();
