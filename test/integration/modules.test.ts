// get_url, http and wait_for against real servers on loopback, and the local connection.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { SshdLab } from '../harness/sshd.ts';
import { copy, getUrl, http, play, playbook, role, run, task, waitFor } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const M = suite('modules');
let lab: SshdLab;
let server: Server;
let base = '';
const payload = Buffer.from('#!/bin/sh\necho phoenix artifact\n');
const sha = createHash('sha256').update(payload).digest('hex');
const posts: string[] = [];

M.before(async () => {
  lab = await hosts(1);
  server = createHttp((req, res) => {
    if (req.url === '/artifact') return void res.end(payload);
    if (req.method === 'POST' && req.url === '/stacks') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        posts.push(body);
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"Id":7}');
      });
      return;
    }
    if (req.url === '/health') return void res.writeHead(200).end('ok');
    res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
M.after(async () => {
  server?.close();
  await lab?.stop();
});

const one = (name: string, t: ReturnType<typeof task<TestVars>>) => playbook<TestVars>(name, [play({ hosts: 'host0', roles: [role<TestVars>({ name, tasks: [t] })] })]);

M('get_url downloads on the host, checks the sha256, and is idempotent', async () => {
  const inv = inventoryFor(lab);
  const dest = `${lab.hosts[0]!.root}/artifact.sh`;
  const wrong = await run(one('g', task({ name: 'fetch', do: getUrl({ url: `${base}/artifact`, dest, sha256: 'a'.repeat(64), mode: '0755' }) })), { inventory: inv, out: capture().out });
  assert.is(wrong.exitCode, 2);
  assert.match(wrong.plays[0]!.hosts.host0!.tasks[0]!.error!.stderr!, /sha256 mismatch/);
  assert.not.ok(existsSync(dest), 'a file with the wrong checksum was installed');
  const pb = one('g', task({ name: 'fetch', do: getUrl({ url: `${base}/artifact`, dest, sha256: sha, mode: '0755' }) }));
  const first = await run(pb, { inventory: inv, out: capture().out });
  assert.is(first.recap.host0!.changed, 1);
  assert.ok(readFileSync(dest).equals(payload));
  assert.is(statSync(dest).mode & 0o777, 0o755);
  const second = await run(pb, { inventory: inv, out: capture().out });
  assert.equal([second.recap.host0!.changed, second.recap.host0!.ok], [0, 1]);
});

M('http: a POST is "unknown" in check mode and sends nothing; the real run sends it once', async () => {
  const inv = inventoryFor(lab);
  const pb = one('h', task({ name: 'create stack', do: http({ url: `${base}/stacks`, method: 'POST', body: { Name: 'qdrant' }, status: [201] }) }));
  const n = posts.length;
  const check = await run(pb, { inventory: inv, check: true, out: capture().out });
  assert.is(check.recap.host0!.unknown, 1);
  assert.is(posts.length, n);
  const real = await run(pb, { inventory: inv, out: capture().out });
  assert.is(real.recap.host0!.changed, 1);
  assert.equal(posts.slice(n), ['{"Name":"qdrant"}']);
  const bad = await run(one('h', task({ name: 'missing', do: http({ url: `${base}/nope` }) })), { inventory: inv, out: capture().out });
  assert.is(bad.exitCode, 2);
  assert.match(bad.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /status 404, expected 200/);
});

M('http over TLS: verified against a private CA, refused without it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`], { stdio: 'ignore' });
  const tls = createHttps({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`) }, (_q, s) => s.end('secure'));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/`;
  try {
    const inv = inventoryFor(lab);
    const without = await run(one('t', task({ name: 'get', do: http({ url }) })), { inventory: inv, out: capture().out });
    assert.is(without.exitCode, 2);
    assert.match(without.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /self[- ]signed certificate/i);
    const withCa = await run(one('t', task({ name: 'get', do: http({ url, ca: `${dir}/cert.pem` }) })), { inventory: inv, out: capture().out });
    assert.is(withCa.exitCode, 0);
  } finally {
    tls.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

M('wait_for: from the host and from the control machine; a dead port fails after its timeout', async () => {
  const inv = inventoryFor(lab);
  const port = (server.address() as AddressInfo).port;
  const ok = await run(
    playbook<TestVars>('w', [
      play({
        hosts: 'host0',
        roles: [
          role<TestVars>({
            name: 'w',
            tasks: [
              task({ name: 'tcp on host', do: waitFor({ port, timeout: 5 }) }),
              task({ name: 'http on host', do: waitFor({ url: `${base}/health`, status: 200, timeout: 5 }) }),
              task({ name: 'http from control', do: waitFor({ url: `${base}/health`, from: 'control', timeout: 5 }) }),
            ],
          }),
        ],
      }),
    ]),
    { inventory: inv, out: capture().out },
  );
  assert.is(ok.exitCode, 0);
  assert.is(ok.recap.host0!.ok, 3);
  const dead = await run(one('w', task({ name: 'dead', do: waitFor({ port: 1, timeout: 1 }) })), { inventory: inv, out: capture().out });
  assert.is(dead.exitCode, 2);
  assert.match(dead.plays[0]!.hosts.host0!.tasks[0]!.error!.message, /127\.0\.0\.1:1 not ready after 1s/);
});

M('the local connection runs the same modules on the control machine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-local-'));
  const pb = playbook<TestVars>('l', [play({ hosts: 'me', roles: [role<TestVars>({ name: 'l', tasks: [task({ name: 'write', do: ({ vars }) => copy({ dest: `${vars.root}/local.txt`, content: 'here\n' }) })] })] })]);
  const inv = { hosts: { me: { address: 'localhost', connection: 'local' as const, vars: { root: dir } } } };
  assert.is((await run(pb, { inventory: inv, out: capture().out })).recap.me!.changed, 1);
  assert.is(readFileSync(`${dir}/local.txt`, 'utf8'), 'here\n');
  assert.is((await run(pb, { inventory: inv, out: capture().out })).recap.me!.changed, 0);
  rmSync(dir, { recursive: true, force: true });
});

M.run();
