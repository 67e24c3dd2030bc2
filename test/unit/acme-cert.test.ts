import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certProbe, needsIssue, parseCertProbe } from '../../runner/modules/acme_cert.ts';
import { checksumFor } from '../../runner/modules/get_url.ts';
import { withBlock } from '../../runner/modules/blockinfile.ts';

const probe = `serial=0A1B
notBefore=Nov 26 04:49:40 2026 GMT
notAfter=Feb 24 04:50:40 2027 GMT
X509v3 Subject Alternative Name: critical
    DNS:internal.thinkheads.ai, DNS:portainer.internal.thinkheads.ai, IP Address:10.0.0.1
verify:ok
`;

test('parseCertProbe reads serial, dates, DNS names and the chain check', () => {
  const st = parseCertProbe(probe);
  assert.is(st.serial, '0A1B');
  assert.equal(st.names, ['internal.thinkheads.ai', 'portainer.internal.thinkheads.ai']);
  assert.is(st.trusted, true);
  assert.is(st.notBefore, Date.parse('2026-11-26T04:49:40Z'));
  assert.equal(parseCertProbe('absent\n'), { exists: false });
});

test('parseCertProbe reads cert.pem itself (the probe sends the PEM; no openssl x509 on the host) as openssl x509 does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-acme-'));
  try {
    const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-keyout', 'k', '-out', 'c', '-subj', '/CN=portainer.internal.thinkheads.ai',
      '-addext', 'subjectAltName=DNS:portainer.internal.thinkheads.ai,DNS:internal.thinkheads.ai,IP:10.0.0.1', '-set_serial', '0x0A1B2C');
    const pem = readFileSync(join(dir, 'c'), 'utf8');
    const fromPem = parseCertProbe(`${pem}verify:ok\n`);
    const fromOpenssl = parseCertProbe(`${o('x509', '-in', 'c', '-noout', '-serial', '-startdate', '-enddate', '-ext', 'subjectAltName')}verify:ok\n`);
    assert.equal(fromPem, fromOpenssl);
    assert.equal(fromPem.names, ['portainer.internal.thinkheads.ai', 'internal.thinkheads.ai']);
    assert.is(parseCertProbe(`${pem}verify:fail\n`).trusted, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('needsIssue: a third of the lifetime is the line; names, chain and expiry force it', () => {
  const st = parseCertProbe(probe);
  const names = ['portainer.internal.thinkheads.ai', 'internal.thinkheads.ai'];
  const life = st.notAfter! - st.notBefore!;
  assert.is(needsIssue(st, names, 1 / 3, st.notBefore! + life * 0.6), undefined);
  assert.match(needsIssue(st, names, 1 / 3, st.notBefore! + life * 0.7) ?? '', /lifetime left/);
  assert.match(needsIssue(st, ['internal.thinkheads.ai'], 1 / 3, st.notBefore! + 1000) ?? '', /names differ/);
  assert.match(needsIssue({ ...st, trusted: false }, names, 1 / 3, st.notBefore! + 1000) ?? '', /trusted root/);
  assert.is(needsIssue({ ...st, trusted: false }, names, 1 / 3, st.notAfter! + 1), 'expired');
  assert.is(needsIssue({ exists: false }, names, 1 / 3), 'no certificate yet');
});

test('checksumFor finds the file in a sha256sum-format checksums file', () => {
  const text = `${'a'.repeat(64)}  step-ca_linux_0.28.4_amd64.tar.gz\n${'b'.repeat(64)} *step-ca_darwin_0.28.4_amd64.tar.gz\n`;
  assert.is(checksumFor(text, 'step-ca_linux_0.28.4_amd64.tar.gz'), 'a'.repeat(64));
  assert.is(checksumFor(text, 'step-ca_darwin_0.28.4_amd64.tar.gz'), 'b'.repeat(64));
  assert.is(checksumFor(text, 'step-ca_linux_0.28.4_arm64.tar.gz'), undefined);
});

test('withBlock replaces only the managed block and keeps every other line', () => {
  const before = '127.0.0.1 localhost\n10.0.0.5 mine\n';
  const once = withBlock(before, '10.0.0.10 ca.x');
  assert.is(once, '127.0.0.1 localhost\n10.0.0.5 mine\n# BEGIN phoenix managed block\n10.0.0.10 ca.x\n# END phoenix managed block\n');
  const edited = once.replace('10.0.0.5 mine', '10.0.0.6 mine');
  assert.is(withBlock(edited, '10.0.0.11 ca.x'), '127.0.0.1 localhost\n10.0.0.6 mine\n# BEGIN phoenix managed block\n10.0.0.11 ca.x\n# END phoenix managed block\n');
  assert.is(withBlock(once, ''), before);
  assert.throws(() => withBlock('# BEGIN phoenix managed block\nx\n', 'y'), /has no/);
});

test("the chain check against the system store: its hashed directory first, then its bundle; a caBundle given is the only store", () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-acme-store-'));
  const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  try {
    // A root, an intermediate, a leaf: certbot's live/ layout (cert.pem, chain.pem).
    const ca = (name: string, signer?: string) => {
      o('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
      if (!signer) return void o('req', '-new', '-x509', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.crt`);
      writeFileSync(join(dir, 'ext.cnf'), name === 'leaf' ? '[v3]\nbasicConstraints=CA:FALSE\nsubjectAltName=DNS:leaf.test\n' : '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n');
      o('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
      o('x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.crt`, '-CAkey', `${signer}.key`, '-set_serial', '0x0a', '-days', '1', '-extfile', 'ext.cnf', '-extensions', 'v3', '-out', `${name}.crt`);
    };
    ca('root');
    ca('other');
    ca('int', 'root');
    ca('leaf', 'int');
    const live = join(dir, 'live');
    mkdirSync(live);
    copyFileSync(join(dir, 'leaf.crt'), join(live, 'cert.pem'));
    copyFileSync(join(dir, 'int.crt'), join(live, 'chain.pem'));
    /** A store: a bundle of `roots` and a hashed directory of `hashed` (c_rehash's <hash>.0 links). */
    const store = (name: string, roots: string[], hashed: string[]) => {
      const bundle = join(dir, `${name}.pem`);
      writeFileSync(bundle, roots.map((r) => readFileSync(join(dir, `${r}.crt`), 'utf8')).join(''));
      const h = join(dir, `${name}.d`);
      mkdirSync(h);
      for (const r of hashed) symlinkSync(join(dir, `${r}.crt`), join(h, `${o('x509', '-in', `${r}.crt`, '-noout', '-hash').trim()}.0`));
      return { bundle, hashed: h };
    };
    const trusted = (caBundle: string, system: { bundle: string; hashed: string }, env: Record<string, string> = {}) =>
      parseCertProbe(execFileSync('/bin/sh', ['-c', certProbe('leaf', caBundle, system, live)], { encoding: 'utf8', env: { ...process.env, ...env } })).trusted;
    const both = store('both', ['other', 'root'], ['other', 'root']);
    assert.is(trusted(both.bundle, both), true, 'the root in both');
    const bundleOnly = store('bundle-only', ['other', 'root'], ['other']);
    assert.is(trusted(bundleOnly.bundle, bundleOnly), true, 'the root in the bundle only: still trusted');
    const hashedOnly = store('hashed-only', ['other'], ['other', 'root']);
    assert.is(trusted(hashedOnly.bundle, hashedOnly), true, 'the root in the hashed directory only (what OpenSSL clients on the host trust too)');
    const neither = store('neither', ['other'], ['other']);
    assert.is(trusted(neither.bundle, neither), false, 'the root in neither');
    // A caBundle of its own: only that file counts, whatever the system store trusts.
    assert.is(trusted(join(dir, 'other.crt'), both), false, 'a given caBundle without the root');
    // ... even where OpenSSL's default directory and file (what it reads besides -CAfile) hold the root.
    assert.is(trusted(join(dir, 'other.crt'), both, { SSL_CERT_DIR: both.hashed, SSL_CERT_FILE: both.bundle }), false, "a given caBundle without the root, OpenSSL's defaults with it");
    assert.is(trusted(join(dir, 'root.crt'), neither), true, 'a given caBundle with the root');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
