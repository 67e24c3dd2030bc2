// The edge of the Phoenix Hypervisor in the lab (issue 7): step-ca on lxc103, its root trusted
// on every guest, nginx on TLS on lxc101 with a certificate from step-ca, renewal, rollback of a
// broken CA setting, and no secret in any output or process list.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { run, type RunResult } from '../../runner/index.ts';
import { labInventory, labSecretFile, LAB_ROOT } from '../../lab/inventory.ts';
import { site } from '../../playbooks/site.ts';
import { address, curl, DOMAIN, GUESTS, onGuests, quiet, labWith } from './helpers.ts';

const E = suite('edge');

const changedTasks = (r: RunResult) =>
  r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === 'changed').map((t) => `${h.host}: ${t.task}`)));
const serial = async (guest: string, cert: string) =>
  (await onGuests(guest, `openssl x509 -in /etc/letsencrypt/live/${cert}/cert.pem -noout -serial`))[guest]!.trim();

E('site on the lab ends with 0 failed; a second run changes nothing and keeps certificate serials', async () => {
  const o = quiet();
  const first = await run(site, { inventory: labInventory(), out: o.out });
  assert.is(first.exitCode, 0, o.text());
  const before = await serial('lxc101', 'gateway');
  const again = await run(site, { inventory: labInventory(), out: quiet().out });
  assert.is(again.exitCode, 0);
  assert.equal(changedTasks(again), []);
  assert.is(await serial('lxc101', 'gateway'), before);
});

E('from this machine, with the exported root: https://ca.<domain>:9000/health is ok', () => {
  const r = curl(`https://ca.${DOMAIN}:9000/health`, 'lxc103');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.status, 200);
  assert.equal(JSON.parse(r.body), { status: 'ok' });
  // The exported file is the root, not a key, and it is what the CA serves under.
  const pem = readFileSync(LAB_ROOT, 'utf8');
  assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
  assert.not.match(pem, /PRIVATE KEY/);
});

E('every guest reaches https://ca.<domain>:9000/health through its system trust store', async () => {
  const out = await onGuests(GUESTS, `curl -sS --max-time 5 https://ca.${DOMAIN}:9000/health 2>&1; echo " rc=$?"`);
  for (const g of GUESTS) assert.match(out[g]!, /\{"status":"ok"\}\s*rc=0/, `${g}: ${out[g]}`);
});

E('the CA keys are 0600, owned by the step user, and encrypted; the service runs as step', async () => {
  const out = (await onGuests('lxc103', 'stat -c "%n %a %U" /etc/step-ca/secrets/*; head -1 /etc/step-ca/secrets/intermediate_ca_key; ps -o user= -C step-ca'))['lxc103']!;
  assert.match(out, /root_ca_key 600 step/);
  assert.match(out, /intermediate_ca_key 600 step/);
  assert.match(out, /password 600 step/);
  assert.match(out, /-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  assert.match(out, /^step$/m);
});

E('gateway: http redirects to https; https presents a chain to the root for its names, TLS 1.2+', async () => {
  const http = curl(`http://${DOMAIN}/some/path?q=1`, 'lxc101', ['-D', '-', '-o', '/dev/null']);
  assert.is(http.status, 301);
  assert.match(http.body, /^location: https:\/\/internal\.thinkheads\.ai\/some\/path\?q=1\r?$/im);
  const page = curl(`https://${DOMAIN}/`, 'lxc101');
  assert.is(page.code, 0, page.stderr);
  assert.is(page.status, 200);
  assert.match(page.body, /Served by lxc101/);
  // The ACME challenge path is the one exception to the redirect.
  assert.is(curl(`http://${DOMAIN}/.well-known/acme-challenge/nothing`, 'lxc101', ['-o', '/dev/null']).status, 404);
  // TLS 1.1 and older are refused.
  assert.is.not(curl(`https://${DOMAIN}/`, 'lxc101', ['--tls-max', '1.1', '-o', '/dev/null']).code, 0);
  // The key was made on lxc101 and is 0600.
  const key = (await onGuests('lxc101', 'stat -L -c %a /etc/letsencrypt/live/gateway/privkey.pem'))['lxc101']!.trim();
  assert.is(key, '600');
  // 90-day certificate (the lab CA's ACME provisioner sets 2160h explicitly).
  const dates = (await onGuests('lxc101', 'openssl x509 -in /etc/letsencrypt/live/gateway/cert.pem -noout -startdate -enddate'))['lxc101']!;
  const nb = Date.parse(/notBefore=(.*)/.exec(dates)![1]!);
  const na = Date.parse(/notAfter=(.*)/.exec(dates)![1]!);
  assert.ok(na - nb >= 89 * 86400_000 && na - nb <= 91 * 86400_000, dates);
});

E('through the gateway: nginx -> Traefik (its stand-in in the lab) with TLS verified on both hops', async () => {
  // Client -> nginx: verified here with the exported root. nginx -> Traefik: proxy_ssl_verify
  // against the guest's store, by the name traefik.<domain>; Traefik -> the qdrant stand-in.
  const r = curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101', ['-D', '-']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.status, 200, r.body);
  assert.match(r.body, /x-phoenix-standin: qdrant/i);
  // nginx's upstream really is Traefik's TLS port, with Traefik's step-ca certificate.
  const up = (await onGuests('lxc101', `echo | openssl s_client -connect ${address('lxc102')}:443 -servername traefik.${DOMAIN} -verify_return_error -CAfile /etc/ssl/certs/ca-certificates.crt > /tmp/phx-sc 2>&1; grep "Verify return code" /tmp/phx-sc; openssl x509 -in /tmp/phx-sc -noout -ext subjectAltName; rm -f /tmp/phx-sc`))['lxc101']!;
  assert.match(up, /Verify return code: 0 \(ok\)/);
  assert.match(up, /DNS:traefik\.internal\.thinkheads\.ai/);
});

E('an upstream certificate the root did not sign: nginx refuses (502); the traefik role repairs it', async () => {
  const dir = '/etc/traefik/tls/traefik';
  // A self-signed key pair for the same name, put where Traefik reads its certificate.
  await onGuests(
    'lxc102',
    `set -e; t=$(mktemp -d); openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=traefik.${DOMAIN} -addext subjectAltName=DNS:traefik.${DOMAIN} -days 1 -keyout $t/k -out $t/c 2>/dev/null; ` +
      `chgrp traefik $t/k $t/c; chmod 0640 $t/k $t/c; mv -f $t/c ${dir}/fullchain.pem; mv -f $t/k ${dir}/privkey.pem; touch /etc/traefik/dynamic/phoenix-tls.yml; rm -rf $t`,
  );
  const deadline = Date.now() + 20_000;
  let r = curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101');
  while (r.status !== 502 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 250));
    r = curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101');
  }
  assert.is(r.status, 502, r.body);
  const log = (await onGuests('lxc101', 'tail -n 5 /var/log/nginx/error.log'))['lxc101']!;
  assert.match(log, /upstream SSL certificate verify error|certificate verify failed/);
  const fix = await run(site, { inventory: labInventory(), tags: ['traefik'], out: quiet().out });
  assert.is(fix.exitCode, 0);
  assert.ok(changedTasks(fix).some((t) => t.startsWith('lxc102:')), 'the role noticed the replaced certificate');
  const end = Date.now() + 20_000;
  while (curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101').status !== 200 && Date.now() < end) await new Promise((res) => setTimeout(res, 250));
  assert.is(curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101').status, 200);
});

E('--tags step-ca / trust / nginx / traefik each list exactly their role', () => {
  for (const tag of ['step-ca', 'trust', 'nginx', 'traefik']) {
    const p = spawnSync('node', ['--import=tsx', 'playbooks/site.ts', '--inventory', 'lab', '--list-tasks', '--tags', tag], { encoding: 'utf8' });
    assert.is(p.status, 0, p.stderr);
    const roles = new Set(p.stdout.split('\n').filter((l) => /^\s+\S.* : /.test(l)).map((l) => l.trim().split(' : ')[0]));
    assert.equal([...roles], [tag], p.stdout);
  }
});

E('a broken step-ca setting fails on lxc103 with step-ca’s own message; the old config keeps serving', async () => {
  const sum = async () => (await onGuests('lxc103', 'sha256sum /etc/step-ca/config/ca.json'))['lxc103']!;
  const before = await sum();
  const o = quiet();
  const broken = labWith((v) => {
    v.stepCa.provisioners[0]!.claims = { ...v.stepCa.provisioners[0]!.claims, defaultTLSCertDuration: '9000h' };
  });
  const r = await run(site, { inventory: broken, tags: ['step-ca'], out: o.out });
  assert.is(r.exitCode, 2, o.text());
  const failed = r.plays[0]!.hosts.lxc103!.tasks.find((t) => t.status === 'failed')!;
  assert.is(failed.task, 'ca.json');
  assert.match(failed.error!.message, /lxc103/);
  assert.match(failed.error!.message, /step-ca refused the new ca\.json: .*duration/i);
  assert.is(await sum(), before);
  assert.is(curl(`https://ca.${DOMAIN}:9000/health`, 'lxc103').status, 200);
});

E('a config step-ca accepts but cannot serve on is rolled back, and step-ca serves again', async () => {
  const sum = async () => (await onGuests('lxc103', 'sha256sum /etc/step-ca/config/ca.json'))['lxc103']!;
  const before = await sum();
  // Port 22 is sshd's: the scratch run (which listens on 127.0.0.1:0) passes, the live one fails.
  const o = quiet();
  const r = await run(site, { inventory: labWith((v) => void (v.stepCa.port = 22)), tags: ['step-ca'], out: o.out });
  assert.is(r.exitCode, 2, o.text());
  const failed = r.plays[0]!.hosts.lxc103!.tasks.find((t) => t.status === 'failed')!;
  assert.match(failed.error!.message, /step-ca on lxc103 did not come back after \/etc\/step-ca\/config\/ca\.json changed: .*address already in use/i);
  assert.match(failed.error!.message, /rolled back: the previous \/etc\/step-ca\/config\/ca\.json is back; step-ca answers .* again/);
  assert.is(await sum(), before);
  assert.is(curl(`https://ca.${DOMAIN}:9000/health`, 'lxc103').status, 200);
  const again = await run(site, { inventory: labInventory(), tags: ['step-ca'], out: quiet().out });
  assert.equal(changedTasks(again), []);
});

E('renewal: past two thirds of a short lifetime a run renews, reloads nginx, and changes nothing else', async () => {
  const short = (renewBefore: number) =>
    labWith((v) => {
      v.stepCa.provisioners[0]!.claims = { minTLSCertDuration: '30s', maxTLSCertDuration: '1m', defaultTLSCertDuration: '1m' };
      v.certs.renewBefore = renewBefore;
    });
  // A short-lived certificate: the CA on short claims, and one forced issuance.
  assert.is((await run(site, { inventory: short(1 / 3), tags: ['step-ca'], out: quiet().out })).exitCode, 0);
  assert.is((await run(site, { inventory: short(1.01), tags: ['nginx'], out: quiet().out })).exitCode, 0);
  const first = await serial('lxc101', 'gateway');
  const dates = (await onGuests('lxc101', 'openssl x509 -in /etc/letsencrypt/live/gateway/cert.pem -noout -startdate -enddate'))['lxc101']!;
  const nb = Date.parse(/notBefore=(.*)/.exec(dates)![1]!);
  const na = Date.parse(/notAfter=(.*)/.exec(dates)![1]!);
  assert.ok(na - nb < 5 * 60_000, `short lifetime expected: ${dates}`);
  // Still more than a third left: nothing to do anywhere.
  const early = await run(site, { inventory: short(1 / 3), out: quiet().out });
  assert.is(early.exitCode, 0);
  assert.equal(changedTasks(early), []);
  assert.is(await serial('lxc101', 'gateway'), first);
  // Past two thirds (the guest's clock is this machine's): the next run renews.
  const due = nb + ((na - nb) * 2) / 3 + 1500;
  await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  const late = await run(site, { inventory: short(1 / 3), out: quiet().out });
  assert.is(late.exitCode, 0);
  assert.equal(changedTasks(late), ['lxc101: certificate gateway', 'lxc101: reload nginx']);
  assert.is.not(await serial('lxc101', 'gateway'), first);
  assert.is(curl(`https://${DOMAIN}/`, 'lxc101').status, 200);
  // Back to the lab's normal lifetime: the short certificate is replaced by a 90-day one.
  const back = await run(site, { inventory: labInventory(), out: quiet().out });
  assert.is(back.exitCode, 0);
  assert.is((await run(site, { inventory: labInventory(), out: quiet().out })).exitCode, 0);
});

E('no key password, private key or ACME account key in output, --json, --diff or argv on any guest', async () => {
  const json = `/tmp/phx-edge-${process.pid}.json`;
  const flag = '/run/phx-argv-sampling';
  const sampler = `touch ${flag}; nohup sh -c 'while [ -e ${flag} ]; do ps -eo args= >> /run/phx-argv.log; sleep 0.02; done' >/dev/null 2>&1 &`;
  await onGuests(GUESTS, `rm -f /run/phx-argv.log; ${sampler}`);
  // Make every secret flow: the key password is written again, a certificate is issued with
  // the account key, and all of it runs with --diff and --json.
  await onGuests('lxc103', 'rm -f /etc/step-ca/secrets/password');
  const o = quiet();
  const inv = labWith((v) => void (v.certs.renewBefore = 1.01));
  const r = await run(site, { inventory: inv, diff: true, json, out: o.out });
  const c = quiet();
  await run(site, { inventory: inv, check: true, diff: true, out: c.out });
  await onGuests(GUESTS, `rm -f ${flag}`);
  assert.is(r.exitCode, 0, o.text());
  assert.match(o.text(), /key password/);
  const argv = await onGuests(GUESTS, 'cat /run/phx-argv.log; rm -f /run/phx-argv.log');
  const secrets: [string, string][] = [['lab key password', readFileSync(labSecretFile('stepca-key-password'), 'utf8').trim()]];
  const files = await onGuests(['lxc101', 'lxc103'], 'for f in /etc/letsencrypt/live/*/privkey.pem /etc/step-ca/secrets/*_key; do [ -f "$f" ] && sed -n 2p "$f"; done; find /etc/letsencrypt/accounts -name private_key.json -exec cat {} \\; 2>/dev/null');
  for (const [g, text] of Object.entries(files))
    for (const line of text.split('\n').filter((l) => l.length > 20)) {
      // Whole key lines, and the JSON web key's private part "d".
      const d = /"d":\s*"([^"]+)"/.exec(line)?.[1];
      secrets.push([`${g} key material`, d ?? line.trim()]);
    }
  assert.ok(secrets.length >= 4, 'expected key material to look for');
  const report = readFileSync(json, 'utf8');
  rmSync(json, { force: true });
  for (const [what, value] of secrets) {
    assert.not.ok(o.text().includes(value), `${what} in output`);
    assert.not.ok(c.text().includes(value), `${what} in --check --diff output`);
    assert.not.ok(report.includes(value), `${what} in --json`);
    for (const g of GUESTS) assert.not.ok(argv[g]!.includes(value), `${what} in a process argument list on ${g}`);
  }
  assert.ok(Object.values(argv).every((a) => a.length > 0), 'the argv sampler ran');
  assert.is((await run(site, { inventory: labInventory(), out: quiet().out })).exitCode, 0);
});

E.run();
