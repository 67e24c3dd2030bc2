// Release artifacts as production installs them: get_url checked against a release's published
// checksums file (Ansible's checksum: sha256:<url>), and install_binary from a checksummed
// tarball, against a real sshd and an HTTP server on loopback.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { SshdLab } from '../harness/sshd.ts';
import { getUrl, installBinary, play, playbook, role, run, task, type Action } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const R = suite('release artifacts');
let lab: SshdLab;
let server: Server;
let base = '';
const requests: string[] = [];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// A release: tool_1.0_linux_amd64.tar.gz holding tool_1.0/bin/tool, and checksums.txt.
const work = mkdtempSync(join(tmpdir(), 'phx-release-'));
const toolBody = Buffer.from(`#!/bin/sh\necho tool ${randomBytes(4).toString('hex')}\n`);
mkdirSync(join(work, 'tool_1.0', 'bin'), { recursive: true });
writeFileSync(join(work, 'tool_1.0', 'bin', 'tool'), toolBody, { mode: 0o755 });
execFileSync('tar', ['-czf', join(work, 'tool.tgz'), '-C', work, 'tool_1.0']);
const tarball = readFileSync(join(work, 'tool.tgz'));
const artifact = Buffer.from('artifact content\n');
let checksums = '';

R.before(async () => {
  lab = await hosts(1);
  checksums = `${sha(tarball)}  tool_1.0_linux_amd64.tar.gz\n${sha(artifact)} *artifact.bin\n${'0'.repeat(64)}  tool_1.0_darwin_amd64.tar.gz\n`;
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/v1.0/tool_1.0_linux_amd64.tar.gz') return void res.end(tarball);
    if (req.url === '/v1.0/artifact.bin') return void res.end(artifact);
    if (req.url === '/v1.0/checksums.txt') return void res.end(checksums);
    if (req.url === '/v1.0/bad-checksums.txt') return void res.end(`${'1'.repeat(64)}  artifact.bin\n`);
    res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1.0`;
});
R.after(async () => {
  server?.close();
  await lab?.stop();
  rmSync(work, { recursive: true, force: true });
});

const one = (a: Action<TestVars>) => playbook<TestVars>('r', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'r', tasks: [task({ name: 'it', do: a })] })] })]);

R('get_url with checksumUrl: the sum listed for the file is enforced; a literal sha256 wins', async () => {
  const inv = inventoryFor(lab);
  const dest = `${lab.hosts[0]!.root}/artifact.bin`;
  const bad = await run(one(getUrl({ url: `${base}/artifact.bin`, dest, checksumUrl: `${base}/bad-checksums.txt` })), { inventory: inv, out: capture().out });
  assert.is(bad.exitCode, 2);
  assert.match(bad.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /checksum mismatch/);
  assert.not.ok(existsSync(dest));
  const missing = await run(one(getUrl({ url: `${base}/nothere.bin`, dest, checksumUrl: `${base}/checksums.txt` })), { inventory: inv, out: capture().out });
  assert.match(missing.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /lists no sha256 for nothere\.bin/);
  const good = one(getUrl({ url: `${base}/artifact.bin`, dest, checksumUrl: `${base}/checksums.txt` }));
  assert.is((await run(good, { inventory: inv, out: capture().out })).recap.host0!.changed, 1);
  assert.ok(readFileSync(dest).equals(artifact));
  assert.is((await run(good, { inventory: inv, out: capture().out })).recap.host0!.changed, 0);
  // A pinned literal sha256 is used instead of the checksums file (here a wrong one: refused).
  const pinned = await run(one(getUrl({ url: `${base}/artifact.bin`, dest: `${dest}.2`, sha256: 'f'.repeat(64), checksumUrl: `${base}/checksums.txt` })), { inventory: inv, out: capture().out });
  assert.is(pinned.exitCode, 2);
  assert.not.ok(existsSync(`${dest}.2`));
});

R('install_binary from a release tarball: verified, installed 0755, a second run downloads nothing', async () => {
  const inv = inventoryFor(lab);
  const name = `phx-tool-${randomBytes(4).toString('hex')}`;
  const dest = `${lab.hosts[0]!.root}/${name}`;
  const source = { url: `${base}/tool_1.0_linux_amd64.tar.gz`, checksumsUrl: `${base}/checksums.txt`, binaryInArchive: 'tool' };
  const pb = one(installBinary({ dest, source }));
  const check = await run(pb, { inventory: inv, check: true, out: capture().out });
  assert.is(check.recap.host0!.changed, 1);
  assert.not.ok(existsSync(dest), 'check mode installed the binary');
  const first = await run(pb, { inventory: inv, out: capture().out });
  assert.is(first.recap.host0!.changed, 1, JSON.stringify(first.plays[0]!.hosts.host0!.tasks[0]));
  assert.ok(readFileSync(dest).equals(toolBody));
  assert.is(statSync(dest).mode & 0o777, 0o755);
  const downloads = () => requests.filter((u) => u.endsWith('.tar.gz')).length;
  const n = downloads();
  const second = await run(pb, { inventory: inv, out: capture().out });
  assert.is(second.recap.host0!.changed, 0);
  assert.is(downloads(), n, 'the second run downloaded the tarball again');
  // A tarball whose sum does not match the pin is refused and the installed binary stays.
  const wrong = await run(one(installBinary({ dest, source: { ...source, checksumsUrl: undefined as never, sha256: 'e'.repeat(64) } as never })), { inventory: inv, out: capture().out });
  assert.is(wrong.exitCode, 2);
  assert.ok(readFileSync(dest).equals(toolBody));
  rmSync(`/var/lib/phoenix/binaries/${name}`, { force: true });
});

R('install_binary from a local file: its sha256 is checked before anything is sent', async () => {
  const inv = inventoryFor(lab);
  const local = join(work, 'local-tool');
  writeFileSync(local, toolBody);
  const dest = `${lab.hosts[0]!.root}/local-tool`;
  const bad = await run(one(installBinary({ dest, source: { localPath: local, sha256: 'd'.repeat(64) } })), { inventory: inv, out: capture().out });
  assert.is(bad.exitCode, 2);
  assert.match(bad.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /has sha256 [0-9a-f]{64}, expected d{64}/);
  assert.not.ok(existsSync(dest));
  const pb = one(installBinary({ dest, source: { localPath: local, sha256: sha(toolBody) } }));
  assert.is((await run(pb, { inventory: inv, out: capture().out })).recap.host0!.changed, 1);
  assert.is((await run(pb, { inventory: inv, out: capture().out })).recap.host0!.changed, 0);
  // The host holds the pinned bytes: nothing is read here or sent, even from a local file that
  // no longer matches the pin (same size: one that differs in size is refused, below).
  writeFileSync(local, Buffer.alloc(toolBody.length, 'x'));
  const held = await run(pb, { inventory: inv, out: capture().out });
  assert.is(held.exitCode, 0, JSON.stringify(held.plays[0]!.hosts.host0!.tasks[0]));
  assert.is(held.recap.host0!.changed, 0);
  // A local file of another size, or none, is refused while the host holds the pin.
  writeFileSync(local, 'a new build\n');
  const resized = await run(pb, { inventory: inv, out: capture().out });
  assert.is(resized.exitCode, 2);
  assert.match(resized.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /local-tool has sha256 [0-9a-f]{64}, expected/);
  rmSync(local);
  const gone = await run(pb, { inventory: inv, out: capture().out });
  assert.is(gone.exitCode, 2);
  assert.match(gone.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /cannot read .*local-tool: ENOENT/);
  writeFileSync(local, 'a new build\n');
  // Once the host's copy differs, the local file is checked again before anything is sent.
  writeFileSync(dest, 'tampered\n');
  const stale = await run(pb, { inventory: inv, out: capture().out });
  assert.is(stale.exitCode, 2);
  assert.match(stale.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /local-tool has sha256 [0-9a-f]{64}, expected/);
  assert.is(readFileSync(dest, 'utf8'), 'tampered\n');
});

R.run();
