// A fake Portainer for unit tests: HTTPS on 127.0.0.1 with a throw-away CA, state in memory,
// and every request it receives checked against test/contract/portainer-shapes.json (the shapes
// of docs/reference/portainer-api-notes.md). A request that matches no shape, or breaks one, is
// answered 400 and recorded in `violations`, so a test fails on any drift from the contract.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { LiveService } from '../../stacks/drift.ts';
import type { ComposeFile } from '../../stacks/compose.ts';

const require = createRequire(import.meta.url);
export const SHAPES = JSON.parse(readFileSync(new URL('./portainer-shapes.json', import.meta.url), 'utf8')) as {
  definitions: Record<string, unknown>;
  requests: { id: string; method: string; path: string; auth: boolean; query: object; filters?: object; body?: object; status: number; response: object }[];
};

export function compileShapes() {
  const { Ajv } = require('ajv') as typeof import('ajv');
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addSchema({ $id: 'shapes', definitions: SHAPES.definitions });
  const fix = (s: object) => JSON.parse(JSON.stringify(s).replace(/"#\/definitions\//g, '"shapes#/definitions/')) as object;
  const msg = (v: ValidateFunction) => (v.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}${e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : ''}`).join('; ');
  return SHAPES.requests.map((r) => ({
    ...r,
    re: new RegExp(r.path),
    vQuery: ajv.compile(fix(r.query)),
    vFilters: r.filters ? ajv.compile(fix(r.filters)) : undefined,
    vBody: r.body ? ajv.compile(fix(r.body)) : undefined,
    vResponse: ajv.compile(fix(r.response)),
    msg,
  }));
}

/** A CA and a server certificate for 127.0.0.1 / localhost, made with openssl. */
export function testPki(dir: string, cn = 'phoenix test CA') {
  const sh = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${cn}`]);
  sh(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=portainer.test']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:portainer.test,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  sh(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf']);
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

export interface Received {
  id: string;
  method: string;
  path: string;
  query: Record<string, string>;
  body?: any;
  authorization?: string;
}

interface FakeStack {
  Id: number;
  Name: string;
  SwarmId: string;
  EndpointId: number;
  Env: { name: string; value: string }[];
  file: string;
  Status: number;
  CreationDate: number;
  UpdateDate: number;
}

export class FakePortainer {
  readonly dir = mkdtempSync(join(tmpdir(), 'phoenix-fake-portainer-'));
  readonly pki = testPki(this.dir);
  readonly shapes = compileShapes();
  readonly received: Received[] = [];
  readonly violations: string[] = [];
  password = 'fake-admin-password-1234';
  swarmId = 'swarmid0fake0portainer0abc';
  endpoints = [{ Id: 1, Name: 'primary', Type: 1, URL: 'unix:///var/run/docker.sock', Status: 1 }];
  stacks: FakeStack[] = [];
  secrets: { ID: string; Spec: { Name: string; Labels: Record<string, string> }; data: string }[] = [];
  /** Services found in Docker that Portainer did not create (external stacks). */
  external: string[] = [];
  /** Stacks Portainer knows whose services were removed outside it (`docker stack rm`). */
  removed: string[] = [];
  /** Readiness polls before a new/updated stack's tasks run. */
  pollsUntilRunning = 0;
  taskErr: string | undefined;
  /** Force an answer for one request id: [status, body]. */
  override: Record<string, [number, unknown]> = {};
  tokens = new Set<string>();
  /** Extra headers on every answer. */
  headers: Record<string, string> = {};
  #polls = new Map<string, number>();
  #nextId = 1;
  #server: Server | undefined;
  port = 0;

  /** Every stack's tasks run from now on. */
  settle() {
    this.#polls.clear();
  }

  get url() {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.#server = createServer({ cert: readFileSync(this.pki.cert), key: readFileSync(this.pki.key) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'https://x');
        const text = Buffer.concat(chunks).toString('utf8');
        const send = (status: number, body: unknown) => {
          res.writeHead(status, { 'Content-Type': 'application/json', ...this.headers });
          res.end(body === undefined ? '' : JSON.stringify(body));
        };
        try {
          const [status, body] = this.#handle(req.method ?? 'GET', u, text, req.headers);
          send(status, body);
        } catch (e) {
          send(500, { message: 'fake portainer: internal error', details: (e as Error).message });
        }
      });
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.port = (this.#server!.address() as AddressInfo).port;
    return this;
  }

  async stop() {
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  #violate(m: string): [number, unknown] {
    this.violations.push(m);
    return [400, { message: 'contract violation', details: m }];
  }

  #handle(method: string, u: URL, text: string, headers: Record<string, string | string[] | undefined>): [number, unknown] {
    const query = Object.fromEntries(u.searchParams);
    const shape = this.shapes.find((s) => s.method === method && s.re.test(u.pathname));
    const rec: Received = { id: shape?.id ?? '?', method, path: u.pathname, query, authorization: headers.authorization as string | undefined };
    this.received.push(rec);
    if (!shape) return this.#violate(`${method} ${u.pathname}: not a request of the contract`);
    if (!shape.vQuery(query)) return this.#violate(`${shape.id}: query ${shape.msg(shape.vQuery)}`);
    if (shape.vFilters) {
      let f: unknown;
      try {
        f = JSON.parse(query.filters ?? '{}');
      } catch {
        return this.#violate(`${shape.id}: filters is not JSON`);
      }
      if (!shape.vFilters(f)) return this.#violate(`${shape.id}: filters ${shape.msg(shape.vFilters)}`);
    }
    if (shape.vBody) {
      if (!String(headers['content-type'] ?? '').startsWith('application/json')) return this.#violate(`${shape.id}: Content-Type is not application/json`);
      try {
        rec.body = JSON.parse(text);
      } catch {
        return this.#violate(`${shape.id}: body is not JSON`);
      }
      if (!shape.vBody(rec.body)) return this.#violate(`${shape.id}: body ${shape.msg(shape.vBody)}`);
    } else if (text) return this.#violate(`${shape.id}: unexpected body`);
    if (shape.auth) {
      const a = String(headers.authorization ?? '');
      if (!a.startsWith('Bearer ') || !this.tokens.has(a.slice(7))) return [401, { message: 'Invalid JWT token', details: 'Unauthorized' }];
    }
    if (this.override[shape.id]) return this.override[shape.id]!;
    const [status, body] = this.#answer(shape.id, u, query, rec.body);
    if (status === shape.status && !shape.vResponse(body)) this.violations.push(`fake's own ${shape.id} response: ${shape.msg(shape.vResponse)}`);
    return [status, body];
  }

  #answer(id: string, u: URL, query: Record<string, string>, body: any): [number, unknown] {
    const m = /\/(\d+)(?:\/|$)/.exec(u.pathname.replace('/api/endpoints/', '/api/e/'));
    const num = m ? Number(m[1]) : NaN;
    const view = (s: FakeStack) => ({
      Id: s.Id, Name: s.Name, Type: 1, EndpointId: s.EndpointId, SwarmId: s.SwarmId, EntryPoint: 'docker-compose.yml', Env: s.Env,
      ResourceControl: null, Status: s.Status, ProjectPath: `/data/compose/${s.Id}`, CreationDate: s.CreationDate, CreatedBy: 'admin',
      UpdateDate: s.UpdateDate, UpdatedBy: s.UpdateDate ? 'admin' : '', AdditionalFiles: [], FromAppTemplate: false, Namespace: '',
    });
    const epOk = (e: number) => this.endpoints.some((x) => x.Id === e);
    switch (id) {
      case 'auth': {
        if (body.Username !== 'admin' || body.Password !== this.password) return [422, { message: 'Invalid credentials', details: 'Unauthorized' }];
        const t = `fakejwt.${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
        this.tokens.add(t);
        return [200, { jwt: t }];
      }
      case 'endpoints':
        return [200, this.endpoints];
      case 'swarm':
        return epOk(num) ? [200, { ID: this.swarmId, JoinTokens: { Worker: 'SWMTKN-worker', Manager: 'SWMTKN-manager' } }] : [404, { message: 'Unable to find an environment' }];
      case 'stacks': {
        const f = JSON.parse(query.filters ?? '{}') as { SwarmID?: string; EndpointID?: number };
        return [200, this.stacks.filter((s) => (!f.SwarmID || s.SwarmId === f.SwarmID) && (!f.EndpointID || s.EndpointId === f.EndpointID)).map(view)];
      }
      case 'stackFile': {
        const s = this.stacks.find((x) => x.Id === num);
        return s ? [200, { StackFileContent: s.file }] : [404, { message: 'Unable to find a stack with the specified identifier inside the database' }];
      }
      case 'createSwarmStack': {
        if (!epOk(Number(query.endpointId))) return [404, { message: 'Unable to find an environment with the specified identifier inside the database' }];
        if (this.stacks.some((s) => s.Name === body.Name) || this.external.includes(body.Name))
          return [409, { message: `A stack with the normalized name '${body.Name}' already exists` }];
        const s: FakeStack = { Id: this.#nextId++, Name: body.Name, SwarmId: body.SwarmID, EndpointId: Number(query.endpointId), Env: body.Env ?? [], file: body.StackFileContent, Status: 1, CreationDate: 1700000000, UpdateDate: 0 };
        this.stacks.push(s);
        this.#polls.set(s.Name, this.pollsUntilRunning);
        return [200, view(s)];
      }
      case 'updateStack': {
        const s = this.stacks.find((x) => x.Id === num);
        if (!s) return [404, { message: 'Unable to find a stack with the specified identifier inside the database' }];
        s.file = body.StackFileContent;
        s.Env = body.Env ?? [];
        s.EndpointId = Number(query.endpointId);
        s.UpdateDate = 1700000100;
        this.removed = this.removed.filter((n) => n !== s.Name); // deployed again
        this.#polls.set(s.Name, this.pollsUntilRunning);
        return [200, view(s)];
      }
      case 'dockerSecrets': {
        const names = (JSON.parse(query.filters!) as { name?: string[] }).name ?? [];
        return [200, this.secrets.filter((s) => names.some((n) => s.Spec.Name.includes(n))).map(({ ID, Spec }) => ({ ID, Spec }))];
      }
      case 'dockerSecretCreate': {
        if (this.secrets.some((s) => s.Spec.Name === body.Name)) return [409, { message: `secret ${body.Name} already exists` }];
        const ID = `sec${this.secrets.length + 1}`;
        this.secrets.push({ ID, Spec: { Name: body.Name, Labels: body.Labels ?? {} }, data: Buffer.from(body.Data, 'base64').toString('utf8') });
        return [201, { ID }];
      }
      case 'dockerServices':
      case 'dockerTasks': {
        const label = ((JSON.parse(query.filters!) as { label?: string[] }).label ?? [])[0] ?? '';
        const name = label.replace('com.docker.stack.namespace=', '');
        const known = this.stacks.some((s) => s.Name === name) || this.external.includes(name);
        if (!known) return [200, []];
        const stack = this.stacks.find((s) => s.Name === name);
        // A stack Portainer created runs what its file says (as `docker stack deploy` makes it),
        // unless a test removed its services behind Portainer's back; an external one: one service.
        const services = stack ? (this.removed.includes(name) ? [] : deployedServices(stack.file, name)) : [{ ID: `svc-${name}-app`, Spec: { Name: `${name}_app`, Mode: { Replicated: { Replicas: 1 } } } }];
        if (id === 'dockerServices') return [200, services];
        const left = this.#polls.get(name) ?? 0;
        this.#polls.set(name, left - 1);
        const state = left > 0 ? 'pending' : 'running';
        return [200, services.map((sv) => ({ ServiceID: sv.ID, DesiredState: 'running', Status: { State: state, ...(this.taskErr && left > 0 ? { Err: this.taskErr } : {}) } }))];
      }
      case 'systemStatus':
        return [200, { Version: '2.23.0', InstanceID: 'fake' }];
    }
    return [500, { message: `fake: no answer for ${id}` }];
  }
}

/** The services `docker stack deploy` makes of a stack file, as the Docker API shows them. */
export function deployedServices(file: string, stack: string): (LiveService & { ID: string })[] {
  const compose = parseYaml(file) as ComposeFile;
  const lit = (v: string) => v.replace(/\$\$/g, '$');
  const ns = { 'com.docker.stack.namespace': stack };
  return Object.entries(compose.services).map(([key, s]) => ({
    ID: `svc-${stack}-${key}`,
    Spec: {
      Name: `${stack}_${key}`,
      Labels: { ...Object.fromEntries(Object.entries(s.deploy?.labels ?? {}).map(([k, v]) => [k, lit(v)])), ...ns },
      Mode: s.deploy?.mode === 'global' ? { Global: {} } : { Replicated: { Replicas: s.deploy?.replicas ?? 1 } },
      TaskTemplate: {
        ContainerSpec: {
          Image: lit(s.image),
          Env: Object.entries(s.environment ?? {}).map(([k, v]) => `${k}=${lit(v)}`),
          Command: (s.entrypoint ?? []).map(lit),
          Args: (s.command ?? []).map(lit),
          Labels: { ...Object.fromEntries(Object.entries(s.labels ?? {}).map(([k, v]) => [k, lit(v)])), ...ns },
          Mounts: (s.volumes ?? []).map((m) => ({ Type: m.type, Source: m.type === 'volume' ? (compose.volumes?.[m.source]?.name ?? `${stack}_${m.source}`) : m.source, Target: m.target, ReadOnly: m.read_only })),
          Secrets: (s.secrets ?? []).map((r) => ({ SecretName: compose.secrets?.[r.source]?.name ?? `${stack}_${r.source}`, File: { Name: r.target ?? r.source } })),
        },
        Placement: { Constraints: s.deploy?.placement?.constraints ?? [] },
      },
      EndpointSpec: {
        Mode: s.deploy?.endpoint_mode ?? 'vip',
        Ports: (s.ports ?? []).map((p) => ({ Protocol: p.protocol ?? 'tcp', TargetPort: p.target, PublishedPort: p.published, PublishMode: p.mode ?? 'ingress' })),
      },
    },
  }));
}
