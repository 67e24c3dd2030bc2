import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type ConnectConfig } from 'ssh2';
import { sshdAvailable, startSshd, type SshdHost, type SshdLab } from './sshd.ts';

/**
 * Parse one known_hosts line for an ed25519 key:
 *   '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...'
 * The base64 field is the SSH wire-format public key blob:
 *   uint32 len, "ssh-ed25519", uint32 len (32), 32 key bytes.
 * ssh2's hostVerifier (without hostHash) receives exactly that blob.
 */
function parseKnownHostsLine(line: string): { pattern: string; type: string; blob: Buffer } {
  const [pattern, type, b64] = line.trim().split(/\s+/);
  if (!pattern || type !== 'ssh-ed25519' || !b64) throw new Error(`not an ed25519 known_hosts line: ${line}`);
  const blob = Buffer.from(b64, 'base64');
  const tlen = blob.readUInt32BE(0);
  const inner = blob.subarray(4, 4 + tlen).toString('latin1');
  const klen = blob.readUInt32BE(4 + tlen);
  if (inner !== type || klen !== 32 || blob.length !== 4 + tlen + 4 + 32) {
    throw new Error(`malformed ed25519 key blob in: ${line}`);
  }
  return { pattern, type, blob };
}

/** Find a host's line in a known_hosts file ('[addr]:port' form for non-22 ports). */
function lookupKnownHost(file: string, address: string, port: number): Buffer {
  const want = port === 22 ? address : `[${address}]:${port}`;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const k = parseKnownHostsLine(line);
    if (k.pattern.split(',').includes(want)) return k.blob;
  }
  throw new Error(`${want} not in ${file}`);
}

function connectTo(host: SshdHost, expectedKey: Buffer, extra: Partial<ConnectConfig> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c));
    c.on('error', reject);
    c.connect({
      host: host.address,
      port: host.port,
      username: host.user,
      privateKey: readFileSync(host.key),
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => key.equals(expectedKey),
      ...extra,
    });
  });
}

function exec(c: Client, cmd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    c.exec(cmd, (err, ch) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => { stdout += d.toString(); });
      ch.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      ch.on('exit', (c: number | null) => { code = c; });
      ch.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

const skip = sshdAvailable(); // throws under CI if unavailable
let lab: SshdLab;

if (skip) {
  console.log(`sshd harness tests skipped: ${skip}`);
  test.skip('sshd harness', () => {});
} else {
  test.before(async () => {
    lab = await startSshd({ count: 2 });
  });
  test.after(async () => {
    await lab?.stop();
  });

  test('lab shape: distinct ports, host keys, known_hosts, scratch roots', () => {
    assert.is(lab.hosts.length, 2);
    const [a, b] = lab.hosts as [SshdHost, SshdHost];
    assert.is.not(a.port, b.port);
    assert.is.not(a.hostKeyBase64, b.hostKeyBase64);
    assert.match(a.hostKeyLine, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${a.port} ssh-ed25519 AAAA`));
    const kh = readFileSync(lab.knownHosts, 'utf8');
    for (const h of lab.hosts) {
      assert.ok(kh.includes(h.hostKeyLine));
      assert.ok(statSync(h.root).isDirectory());
    }
    assert.is(statSync(lab.clientKey).mode & 0o777, 0o600);
  });

  test('connects to each host with verified host key; sudo -n works', async () => {
    for (const h of lab.hosts) {
      const c = await connectTo(h, lookupKnownHost(lab.knownHosts, h.address, h.port));
      try {
        const who = await exec(c, 'id -un');
        assert.is(who.stdout.trim(), lab.user);
        const r = await exec(c, 'sudo -n id -u');
        assert.is(r.code, 0, r.stderr);
        assert.is(r.stdout.trim(), '0');
        // the scratch root belongs to the test user
        const w = await exec(c, `echo hi > ${h.root}/from-${h.name} && stat -c %U ${h.root}`);
        assert.is(w.code, 0, w.stderr);
        assert.is(w.stdout.trim(), lab.user);
        assert.is(readFileSync(join(h.root, `from-${h.name}`), 'utf8'), 'hi\n');
      } finally {
        c.end();
      }
    }
  });

  test('a wrong expected host key is rejected', async () => {
    const [a, b] = lab.hosts as [SshdHost, SshdHost];
    const wrong = lookupKnownHost(lab.knownHosts, b.address, b.port); // b's key, presented to a
    let err: Error | null = null;
    try {
      const c = await connectTo(a, wrong);
      c.end();
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, 'connection with the wrong host key must fail');
    assert.match(err!.message, /verification failed/i);
  });

  test('one host works as a jump host for another (TCP forwarding)', async () => {
    const [jump, target] = lab.hosts as [SshdHost, SshdHost];
    const j = await connectTo(jump, lookupKnownHost(lab.knownHosts, jump.address, jump.port));
    try {
      const sock = await new Promise<NodeJS.ReadableStream & NodeJS.WritableStream>((resolve, reject) => {
        j.forwardOut('127.0.0.1', 0, target.address, target.port, (err, ch) => (err ? reject(err) : resolve(ch)));
      });
      const t = await connectTo(target, lookupKnownHost(lab.knownHosts, target.address, target.port), {
        sock: sock as unknown as ConnectConfig['sock'],
        host: undefined,
        port: undefined,
      });
      try {
        const r = await exec(t, 'sudo -n id -u');
        assert.is(r.stdout.trim(), '0');
      } finally {
        t.end();
      }
    } finally {
      j.end();
    }
  });
}

test.run();
