// The Docker API client certificate check (roles/swarm/client-ca.ts): the shell half runs here
// through /bin/sh with real openssl-made files; the rest is parsed on the control machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { clientCertProbe, clientCertState, signScript } from '../../roles/swarm/client-ca.ts';

const dir = mkdtempSync(join(tmpdir(), 'phx-client-cert-'));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
const ec = (name: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name);
ec('ca.key');
ssl('req', '-new', '-x509', '-key', 'ca.key', '-subj', '/CN=test client CA', '-days', '30', '-out', 'ca.crt');
/** A certificate for `key`, signed by the CA: clientAuth unless `usage` says otherwise. */
function sign(key: string, out: string, san: string, days: number, usage = 'clientAuth', ca = 'ca') {
  writeFileSync(join(dir, 'ext.cnf'), `[v3]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${usage}\nsubjectAltName=${san}\n`);
  ssl('req', '-new', '-key', key, '-subj', '/CN=client', '-out', 'csr.pem');
  ssl('x509', '-req', '-in', 'csr.pem', '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', '0x01', '-days', String(days), '-extfile', 'ext.cnf', '-extensions', 'v3', '-out', out);
}
ec('foreign.key');
ssl('req', '-new', '-x509', '-key', 'foreign.key', '-subj', '/CN=another CA', '-days', '30', '-out', 'foreign.crt');
ec('client.key');
ec('other.key');
sign('client.key', 'client.crt', 'DNS:traefik.lab,IP:192.168.201.12', 365);
sign('client.key', 'server.crt', 'DNS:traefik.lab,IP:192.168.201.12', 365, 'serverAuth');
sign('client.key', 'foreign-client.crt', 'DNS:traefik.lab,IP:192.168.201.12', 365, 'clientAuth', 'foreign');
const names = ['traefik.lab', '192.168.201.12'];
const look = (cert: string, key: string) =>
  execFileSync('/bin/sh', ['-c', clientCertProbe(join(dir, cert), join(dir, key))], { input: readFileSync(join(dir, 'ca.crt')), encoding: 'utf8' });

test('a client certificate of the CA, for the key, with the names and its lifetime: ok', () => {
  assert.is(clientCertState(look('client.crt', 'client.key'), names, 365), 'ok');
});

test('the host says what it checks itself: no key, no certificate, not of this CA or not for clients', () => {
  assert.is(clientCertState(look('client.crt', 'missing.key'), names, 365), 'reason: no key');
  assert.is(clientCertState(look('missing.crt', 'client.key'), names, 365), 'reason: no certificate');
  assert.is(clientCertState(look('foreign-client.crt', 'client.key'), names, 365), 'reason: not a client certificate of the Docker API client CA');
  assert.is(clientCertState(look('server.crt', 'client.key'), names, 365), 'reason: not a client certificate of the Docker API client CA');
});

test('another key, other names, or less than a third of its lifetime left: a reason to re-sign', () => {
  assert.is(clientCertState(look('client.crt', 'other.key'), names, 365), 'reason: does not match the key');
  // A PUBLIC KEY block put before the certificate in its file is not taken for the key's.
  writeFileSync(join(dir, 'decoy.crt'), Buffer.concat([ssl('x509', '-in', 'client.crt', '-noout', '-pubkey'), readFileSync(join(dir, 'client.crt'))]));
  assert.is(clientCertState(look('decoy.crt', 'other.key'), names, 365), 'reason: does not match the key');
  writeFileSync(join(dir, 'garbled.key'), 'not a key\n');
  assert.is(clientCertState(look('client.crt', 'garbled.key'), names, 365), 'reason: the key cannot be read');
  assert.is(clientCertState(look('client.crt', 'client.key'), ['traefik.lab'], 365), 'reason: names DNS:traefik.lab, IP Address:192.168.201.12, want DNS:traefik.lab');
  const end = Date.parse(new X509Certificate(readFileSync(join(dir, 'client.crt'))).validTo);
  const third = Math.floor((365 * 86400) / 3) * 1000;
  assert.is(clientCertState(look('client.crt', 'client.key'), names, 365, end - third + 60_000), 'reason: less than a third of its lifetime left');
  assert.is(clientCertState(look('client.crt', 'client.key'), names, 365, end - third - 60_000), 'ok');
});

test('output it cannot read is a reason, never ok', () => {
  assert.is(clientCertState('', names, 365), 'reason: the certificate or its key could not be read');
  assert.is(clientCertState('chained\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', names, 365), 'reason: the certificate could not be read');
});

test('the signing script: a client certificate with the names and a random 16-byte serial; a CSR whose self-signature does not match is refused', () => {
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  const csr = ssl('req', '-new', '-key', 'client.key', '-subj', '/CN=from the CSR');
  const sign = (input: Buffer) => spawnSync('/bin/sh', ['-c', signScript(names, 30, ca)], { input });
  const a = sign(csr);
  const b = sign(csr);
  assert.is(a.status, 0, a.stderr.toString());
  const x = new X509Certificate(a.stdout);
  assert.ok(x.checkIssued(new X509Certificate(readFileSync(ca.cert))));
  assert.is(x.subjectAltName, 'DNS:traefik.lab, IP Address:192.168.201.12');
  assert.match(x.serialNumber, /^[0-9A-F]{1,32}$/);
  assert.is.not(x.serialNumber, new X509Certificate(b.stdout).serialNumber);
  writeFileSync(join(dir, 'signed.crt'), a.stdout);
  assert.is(clientCertState(look('signed.crt', 'client.key'), names, 30), 'ok');
  // One byte of the signature changed (the DER's last bytes are the signature's).
  const der = execFileSync('openssl', ['req', '-outform', 'DER'], { input: csr });
  der[der.length - 5]! ^= 0xff;
  const bad = execFileSync('openssl', ['req', '-inform', 'DER'], { input: der });
  const refused = sign(bad);
  assert.is.not(refused.status, 0);
  assert.is(refused.stdout.length, 0);
  assert.match(refused.stderr.toString(), /self-signature did not match|Signature did not match/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
