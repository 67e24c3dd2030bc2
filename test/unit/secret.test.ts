import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { redact, secret } from '../../runner/index.ts';
import { fileDiff } from '../../runner/diff.ts';
import { lookupKnownHosts } from '../../runner/connection/knownhosts.ts';

test('a Secret prints as a mask everywhere it is stringified', () => {
  const s = secret('p4ssw0rd-value', 'db');
  assert.is(`${s}`, '********');
  assert.is(JSON.stringify({ s }), '{"s":"********"}');
  assert.is(inspect(s), 'Secret(db)');
  assert.is(s.reveal(), 'p4ssw0rd-value');
});

test('a secret containing a shorter secret is masked whole', () => {
  secret('hunter2x');
  secret('postgres://app:hunter2x@db.internal/app?sslkey=K9');
  assert.is(redact('dsn=postgres://app:hunter2x@db.internal/app?sslkey=K9'), 'dsn=********');
});

test('a multi-line secret is masked in a diff', () => {
  const pem = '-----BEGIN KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END KEY-----';
  secret(pem);
  const d = fileDiff('/etc/key', `${pem}\n`, 'public\n');
  assert.not.match(d.text, /secretline/);
  assert.not.match(d.before, /secretline/);
});

test('known_hosts: a @revoked key is refused even when listed as a plain entry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-kh-'));
  const kh = join(dir, 'known_hosts');
  const key = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
  writeFileSync(kh, `10.0.0.5 ssh-ed25519 ${key}\n[10.0.0.6]:2222 ssh-ed25519 ${key}\n`);
  assert.is(lookupKnownHosts(kh, '10.0.0.5', 22).length, 1);
  assert.is(lookupKnownHosts(kh, '10.0.0.6', 2222).length, 1);
  assert.is(lookupKnownHosts(kh, '10.0.0.6', 22).length, 0);
  writeFileSync(kh, `10.0.0.5 ssh-ed25519 ${key}\n@revoked * ssh-ed25519 ${key}\n`);
  assert.is(lookupKnownHosts(kh, '10.0.0.5', 22).length, 0);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
