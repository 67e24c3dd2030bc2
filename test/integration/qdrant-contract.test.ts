// Qdrant contract, against the pinned release's OpenAPI (docs/reference/qdrant-1.19-openapi.json):
// the lab's stand-in (lab/standins/qdrant, built here with Go, offline, and run on 127.0.0.1) is
// driven by phoenix's own `qdrant collections` task (its curl commands run on this machine)
// through a recording proxy that checks every request phoenix makes and every answer the stand-in
// gives against the spec (test/contract/qdrant-openapi.ts). Then the points calls the e2e tests
// make, and the 1.19 fields the stand-in must accept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ActionContext } from '../../runner/index.ts';
import qdrantRole from '../../roles/qdrant/index.ts';
import { qdrantDefaults, QDRANT_VERSION, type QdrantCollection } from '../../roles/qdrant/vars.ts';
import { QDRANT_NODE_LABEL } from '../../roles/swarm/vars.ts';
import { check, SPEC } from '../contract/qdrant-openapi.ts';

const KEY = 'contract-test-api-key-0123456789';
const SRC = fileURLToPath(new URL('../../lab/standins/qdrant', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'phoenix-qdrant-contract-'));

// Build the stand-in as lab/standins/build.sh does (GOPATH mode, stdlib only, static).
const pkg = join(work, 'gopath/src/qdrant-standin');
mkdirSync(pkg, { recursive: true });
cpSync(join(SRC, 'main.go'), join(pkg, 'main.go'));
const build = spawnSync('go', ['build', '-o', join(work, 'qdrant-standin'), '.'], {
  cwd: pkg,
  encoding: 'utf8',
  env: { ...process.env, GO111MODULE: 'off', GOFLAGS: '', GOPROXY: 'off', GOPATH: join(work, 'gopath'), GOCACHE: join(tmpdir(), 'phoenix-test-gocache'), CGO_ENABLED: '0' },
});
if (build.status !== 0) throw new Error(`go build of lab/standins/qdrant failed (Go is needed, as for lab:up): ${build.error?.message ?? build.stderr}`);

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

const httpPort = await freePort();
const standin: ChildProcess = spawn(join(work, 'qdrant-standin'), [], {
  env: { QDRANT__SERVICE__HTTP_PORT: String(httpPort), QDRANT__SERVICE__GRPC_PORT: String(await freePort()), QDRANT__SERVICE__API_KEY: KEY, QDRANT__STORAGE__STORAGE_PATH: join(work, 'storage') },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let standinLog = '';
standin.stderr!.on('data', (d) => (standinLog += d));

interface Exchange {
  method: string;
  path: string;
  body: unknown;
  status: number;
  answer: unknown;
  violations: string[];
  deprecated: string[];
}
const exchanges: Exchange[] = [];
// The recording proxy: every request to the stand-in, and its answer, checked against the spec.
const proxy = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const up = http.request({ host: '127.0.0.1', port: httpPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const out: Buffer[] = [];
      ur.on('data', (c) => out.push(c));
      ur.on('end', () => {
        const text = Buffer.concat(out).toString();
        let answer: unknown = text;
        try {
          answer = JSON.parse(text);
        } catch {
          /* text */
        }
        const body = raw.length ? JSON.parse(raw.toString()) : undefined;
        const c = check(req.method!, req.url!, body, ur.statusCode!, answer);
        exchanges.push({ method: req.method!, path: req.url!, body, status: ur.statusCode!, answer, violations: c.violations, deprecated: c.deprecated });
        res.writeHead(ur.statusCode!, ur.headers);
        res.end(Buffer.concat(out));
      });
    });
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    up.end(raw);
  });
});
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
const proxyPort = (proxy.address() as AddressInfo).port;

// Wait for the stand-in.
for (let i = 0; ; i++) {
  const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok, () => false);
  if (ok) break;
  if (i > 100) throw new Error(`qdrant stand-in did not start: ${standinLog}`);
  await new Promise((r) => setTimeout(r, 50));
}

/** The qdrant role's vars for one worker reached at 127.0.0.1 (plain HTTP to the proxy: TLS is tested in the lab). */
function vars(collections: QdrantCollection[]) {
  const q = qdrantDefaults().qdrant;
  process.env.PHOENIX_QDRANT_API_KEY = KEY;
  return {
    domain: 'lab.test',
    qdrant: { ...q, httpPort: proxyPort, tls: { enabled: false, certTtl: 3600 }, collections },
    swarm: { advertise: { vm1002: '127.0.0.1' }, nodeLabels: { vm1002: { [QDRANT_NODE_LABEL]: 'true' } } },
  } as any;
}

function ctx(check = false): ActionContext {
  // Asynchronous: the recording proxy answers from this same process.
  const run = (cmd: string, o: { stdin?: { reveal(): string } | string } = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string; stdoutBuffer: Buffer }>((resolve) => {
      const p = spawn('bash', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code: code ?? 1, stdout: out, stderr: err, stdoutBuffer: Buffer.from(out) }));
      p.stdin.end(typeof o.stdin === 'string' ? o.stdin : (o.stdin?.reveal() ?? ''));
    });
  const c = {
    host: { name: 'vm1001' },
    check,
    diff: false,
    pendingChanges: false,
    run,
    probe: (cmd: string) => run(cmd),
    change: async (plan: any, apply: () => Promise<any>) => (check ? plan : ((await apply()) ?? plan)),
    request: () => Promise.reject(new Error('no HTTP')),
  };
  return c as unknown as ActionContext;
}

const collectionsTask = qdrantRole.tasks.find((t) => t.name === 'qdrant collections')!;
const converge = (cs: QdrantCollection[], check = false) => (collectionsTask.do as any)({ vars: vars(cs) }).run(ctx(check));
const mark = () => exchanges.length;
const since = (n: number) => exchanges.slice(n);
const violations = (n = 0) => since(n).flatMap((e) => e.violations.map((v) => `${e.method} ${e.path} -> ${e.status}: ${v}`));

test.after(() => {
  standin.kill();
  proxy.close();
  rmSync(work, { recursive: true, force: true });
});

test('the vendored spec is Qdrant v1.19, the release phoenix pins', () => {
  assert.is(SPEC.info.version, 'v1.19.x');
  assert.match(QDRANT_VERSION, /^v1\.19\.\d+$/);
});

test('phoenix creates, leaves alone, then patches a collection: every request and answer matches the 1.19 OpenAPI', async () => {
  const docs: QdrantCollection = { name: 'docs', vectors: { size: 4, distance: 'Cosine' }, hnsw_config: { m: 16 }, optimizers_config: { indexing_threshold: 20000 } };
  let n = mark();
  const r1 = await converge([docs]);
  assert.is(r1.changed, true);
  assert.equal(since(n).map((e) => `${e.method} ${e.path} ${e.status}`), ['GET /collections/docs 404', 'PUT /collections/docs 200']);
  assert.equal(violations(n), []);

  n = mark();
  const r2 = await converge([docs]);
  assert.is(r2.changed, false, 'second run: nothing to do');
  assert.equal(violations(n), []);

  n = mark();
  const r3 = await converge([{ ...docs, replication_factor: 2, hnsw_config: { m: 32 }, optimizers_config: { indexing_threshold: 1000 } }]);
  assert.is(r3.changed, true);
  const patch = since(n).find((e) => e.method === 'PATCH')!;
  assert.equal(patch.body, { params: { replication_factor: 2 }, hnsw_config: { m: 32 }, optimizers_config: { indexing_threshold: 1000 } });
  assert.equal(violations(n), []);
  // A collection declared with current (non-deprecated) fields only makes requests without deprecated fields.
  assert.equal(since(0).flatMap((e) => e.deprecated), []);
});

test('check mode asks only (GET), and the answers match the spec', async () => {
  const n = mark();
  const r = await converge([{ name: 'other', vectors: { size: 8, distance: 'Dot' } }], true);
  assert.is(r.changed, true);
  assert.equal(since(n).map((e) => e.method), ['GET']);
  assert.equal(violations(n), []);
});

test('deprecated 1.19 fields phoenix still passes through from the inventory are named (vectors.on_disk, on_disk_payload)', async () => {
  const n = mark();
  await converge([{ name: 'legacy', vectors: { size: 4, distance: 'Euclid', on_disk: true }, on_disk_payload: true }]);
  assert.equal(violations(n), []);
  assert.equal(since(n).find((e) => e.method === 'PUT')!.deprecated.sort(), ['on_disk_payload', 'vectors.on_disk']);
});

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(`http://127.0.0.1:${proxyPort}${path}`, { method, headers: { 'api-key': KEY, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => undefined) as any };
}

test('the calls the e2e tests make (exists, upsert, count, list, version) match the spec', async () => {
  const n = mark();
  assert.equal((await call('GET', '/collections/docs/exists')).body.result, { exists: true });
  assert.is((await call('PUT', '/collections/docs/points?wait=true', { points: [{ id: 1, vector: [0.1, 0.2, 0.3, 0.4], payload: { t: 'a' } }] })).status, 200);
  assert.equal((await call('POST', '/collections/docs/points/count', { exact: true })).body.result, { count: 1 });
  assert.ok((await call('GET', '/collections')).body.result.collections.some((c: { name: string }) => c.name === 'docs'));
  const v = await call('GET', '/');
  assert.match(v.body.version, /^1\.19\.\d+-phoenix-standin$/);
  assert.equal(violations(n), []);
});

test('the stand-in accepts the 1.19 fields a current client sends (memory, metadata, strict_mode_config), as Qdrant 1.19 does', async () => {
  const n = mark();
  const body = { vectors: { size: 4, distance: 'Cosine', memory: 'cold' }, hnsw_config: { m: 16, memory: 'cached', inline_storage: false }, optimizers_config: { prevent_unoptimized: false }, metadata: { owner: 'phoenix' }, strict_mode_config: { enabled: false } };
  const created = await call('PUT', '/collections/current', body);
  assert.is(created.status, 200, JSON.stringify(created.body));
  const got = (await call('GET', '/collections/current')).body.result;
  assert.is(got.config.params.vectors.memory, 'cold');
  assert.equal(got.config.metadata, { owner: 'phoenix' });
  assert.is((await call('PATCH', '/collections/current', { metadata: { owner: null, team: 'lab' }, vectors: { '': { memory: 'cached' } } })).status, 200);
  const after = (await call('GET', '/collections/current')).body.result;
  assert.equal(after.config.metadata, { team: 'lab' });
  assert.is(after.config.params.vectors.memory, 'cached');
  assert.equal(violations(n), []);
  assert.equal(since(n).flatMap((e) => e.deprecated), []);
});

test('the stand-in refuses what 1.19 refuses: no API key 401, an unknown collection 404 with the error shape', async () => {
  const n = mark();
  const r = await fetch(`http://127.0.0.1:${proxyPort}/collections`);
  assert.is(r.status, 401);
  assert.is((await call('GET', '/collections/nope')).status, 404);
  assert.equal(violations(n), []);
});

test.run();
