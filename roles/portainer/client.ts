// A Portainer CE API client: exactly the requests `phoenix sync` makes, with the shapes of
// docs/reference/portainer-api-notes.md (copied as test/contract/portainer-shapes.json for the
// contract tests). node:https from the control machine (runner/modules/https-request.ts); TLS is always verified, against a private CA
// (the step-ca root) when `ca` is given; never turned off.
//
// The admin password is a Secret sent only as a value in the JSON body of POST /api/auth; the
// JWT it returns is wrapped in a Secret at once, so every report line masks it.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { httpsRequest } from '../../runner/modules/https-request.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
import { redact, revealDeep, Secret } from '../../runner/secret.ts';

export interface PortainerApiOptions {
  /** Base URL of the server, e.g. https://portainer.internal.thinkheads.ai:9443 (no /api). */
  url: string;
  username: string;
  password: Secret;
  /** PEM file of the CA the server's certificate chains to (the step-ca root). Unset: the system store. */
  ca?: string;
  /**
   * Name -> address for the URL's host, so the control machine needs no DNS entry for a service
   * name while TLS is still verified against that name.
   */
  resolve?: Record<string, string>;
  /** Per-request timeout in seconds (default 30). */
  timeout?: number;
}

/** A failed API call: names the request, the HTTP status and Portainer's `message`. */
export class PortainerError extends Error {
  readonly method: string;
  readonly path: string;
  readonly status: number | undefined;
  readonly portainerMessage: string;
  readonly details?: string;
  constructor(
    method: string,
    path: string,
    status: number | undefined,
    portainerMessage: string,
    details?: string,
  ) {
    super(
      redact(
        `Portainer API ${method} ${path}: ${status === undefined ? 'no response' : `HTTP ${status}`}: ${portainerMessage || '(no message)'}${details ? ` (${details})` : ''}`,
      ),
    );
    this.method = method;
    this.path = path;
    this.status = status;
    this.portainerMessage = portainerMessage;
    this.details = details;
    this.name = 'PortainerError';
  }
}

export interface Pair {
  name: string;
  value: string;
}

/** The fields of portainer.Endpoint that sync reads. */
export interface Endpoint {
  Id: number;
  Name: string;
  Type: number;
  URL: string;
  Status: number;
}

/** The fields of portainer.Stack that sync reads (note: SwarmId, EndpointId in responses). */
export interface Stack {
  Id: number;
  Name: string;
  Type: number;
  EndpointId: number;
  SwarmId: string;
  Env: Pair[] | null;
  Status: number;
  CreationDate?: number;
  UpdateDate?: number;
}

/** What one request looked like on the wire; for tests and for --json (body secrets masked). */
export interface SentRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
}

export interface CreateSwarmStackBody {
  Name: string;
  SwarmID: string;
  StackFileContent: string;
  Env: { name: string; value: string | Secret }[];
  FromAppTemplate: boolean;
}

export interface UpdateSwarmStackBody {
  StackFileContent: string;
  Env: { name: string; value: string | Secret }[];
  Prune: boolean;
  /** Portainer 2.36+ (PullImage is deprecated since 2.36: "use RepullImageAndRedeploy instead"). */
  RepullImageAndRedeploy: boolean;
}

/** Portainer's error body is {"message","details"}; anything else is shown shortened. */
function messageOf(data: unknown): { message: string; details?: string } {
  if (data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string') {
    const d = data as { message: string; details?: unknown };
    return { message: d.message, details: typeof d.details === 'string' && d.details ? d.details : undefined };
  }
  if (typeof data === 'string' && data.trim()) return { message: data.trim().slice(0, 300) };
  return { message: '' };
}

export class PortainerClient {
  readonly base: string;
  #token: Secret | undefined;
  #http: Agent | undefined;
  /** Every request sent, in order (bodies with secrets masked). */
  readonly sent: SentRequest[] = [];

  readonly opts: PortainerApiOptions;
  constructor(opts: PortainerApiOptions) {
    this.opts = opts;
    const u = new URL(opts.url);
    if (u.protocol !== 'https:') throw new Error(`portainer: url ${opts.url}: expected https:// (the admin password is never sent over plain HTTP)`);
    this.base = `${u.protocol}//${u.host}`;
  }

  #agent(): Agent {
    if (this.#http) return this.#http;
    const map = this.opts.resolve ?? {};
    const lookup = (host: string, o: { all?: boolean }, cb: (e: NodeJS.ErrnoException | null, a: string | LookupAddress[], f?: number) => void) => {
      const addr = map[host];
      if (!addr) return dnsLookup(host, o as never, cb as never);
      const family = addr.includes(':') ? 6 : 4;
      if (o?.all) return cb(null, [{ address: addr, family }]);
      return cb(null, addr, family);
    };
    // No proxies from the environment and no redirects followed: the API is reached directly
    // (runner/modules/https-request.ts: node's https, so no axios to load).
    this.#http = new Agent({
      ca: this.opts.ca ? readFileSync(this.opts.ca) : undefined,
      rejectUnauthorized: true,
      lookup: lookup as never,
      keepAlive: true,
    });
    return this.#http;
  }

  /** One request; `ok` lists the accepted statuses. Throws PortainerError otherwise. */
  async request<T>(
    method: Method,
    path: string,
    o: { query?: Record<string, string | number>; body?: unknown; auth?: boolean; ok?: number[] } = {},
    retried = false,
  ): Promise<{ status: number; data: T; headers: Record<string, unknown> }> {
    const query = Object.fromEntries(Object.entries(o.query ?? {}).map(([k, v]) => [k, String(v)]));
    const qs = new URLSearchParams(query).toString();
    const shown = `${path}${qs ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (o.auth !== false) {
      if (!this.#token) await this.login();
      headers.Authorization = `Bearer ${this.#token!.reveal()}`;
    }
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    this.sent.push({ method, path, query, ...(o.body !== undefined ? { body: maskDeep(o.body) } : {}) });
    const agent = this.#agent();
    let r;
    try {
      const res = await httpsRequest({
        url: `${this.base}${path}${qs ? `?${qs}` : ''}`,
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(revealDeep(o.body)),
        agent,
        timeoutMs: (this.opts.timeout ?? 30) * 1000,
      });
      // Keep the body as text: a non-JSON error page must still be reportable.
      r = { status: res.status, data: res.body, headers: res.headers };
    } catch (e) {
      const err = e as Error & { code?: string };
      throw new PortainerError(method, `${this.base}${shown}`, undefined, `${err.code ? `${err.code}: ` : ''}${err.message}`);
    }
    let data: unknown = r.data;
    if (typeof data === 'string' && data !== '') {
      try {
        data = JSON.parse(data);
      } catch {
        /* left as text */
      }
    }
    const ok = o.ok ?? [200];
    // A token from an earlier Portainer process (the one-off, or before a restart or a hand-over)
    // is refused by the one answering now: log in once more and repeat the request.
    if (r.status === 401 && o.auth !== false && !retried && !ok.includes(401)) {
      this.#token = undefined;
      return this.request<T>(method, path, o, true);
    }
    if (!ok.includes(r.status)) {
      const m = messageOf(data);
      // The admin-init window passed with no admin: Portainer disabled itself until restarted.
      const reason = (r.headers as Record<string, unknown>)['redirect-reason'];
      if (r.status === 303 && typeof reason === 'string' && !m.message) m.message = `redirect-reason: ${reason} (restart Portainer)`;
      throw new PortainerError(method, `${this.base}${shown}`, r.status, m.message, m.details);
    }
    return { status: r.status, data: data as T, headers: r.headers as Record<string, unknown> };
  }

  /** POST /api/auth -> {jwt}. 422: bad credentials. */
  async login(): Promise<void> {
    const r = await this.request<{ jwt?: unknown }>('POST', '/api/auth', {
      auth: false,
      body: { Username: this.opts.username, Password: this.opts.password },
    });
    if (typeof r.data?.jwt !== 'string' || !r.data.jwt) throw new PortainerError('POST', `${this.base}/api/auth`, r.status, 'response has no "jwt"');
    this.#token = new Secret(r.data.jwt, 'portainer jwt');
  }

  async endpoints(): Promise<Endpoint[]> {
    const r = await this.request<Endpoint[]>('GET', '/api/endpoints');
    if (!Array.isArray(r.data)) throw new PortainerError('GET', `${this.base}/api/endpoints`, r.status, 'expected a JSON array of environments');
    return r.data;
  }

  /** Docker's SwarmInspect through Portainer's proxy; 503 when the node is not a manager. */
  async swarmId(endpointId: number): Promise<string> {
    const path = `/api/endpoints/${endpointId}/docker/swarm`;
    const r = await this.request<{ ID?: unknown }>('GET', path);
    if (typeof r.data?.ID !== 'string' || !r.data.ID) throw new PortainerError('GET', `${this.base}${path}`, r.status, 'swarm inspect has no "ID"');
    return r.data.ID;
  }

  async stacks(filters: { SwarmID: string; EndpointID: number }): Promise<Stack[]> {
    const r = await this.request<Stack[] | null>('GET', '/api/stacks', { query: { filters: JSON.stringify(filters) }, ok: [200, 204] });
    if (r.status === 204 || r.data === null || (r.data as unknown) === '') return [];
    if (!Array.isArray(r.data)) throw new PortainerError('GET', `${this.base}/api/stacks`, r.status, 'expected a JSON array of stacks');
    return r.data;
  }

  async stackFile(id: number): Promise<string> {
    const path = `/api/stacks/${id}/file`;
    const r = await this.request<{ StackFileContent?: unknown }>('GET', path);
    if (typeof r.data?.StackFileContent !== 'string') throw new PortainerError('GET', `${this.base}${path}`, r.status, 'response has no "StackFileContent"');
    return r.data.StackFileContent;
  }

  async createSwarmStack(endpointId: number, body: CreateSwarmStackBody): Promise<Stack> {
    return (await this.request<Stack>('POST', '/api/stacks/create/swarm/string', { query: { endpointId }, body })).data;
  }

  async updateStack(id: number, endpointId: number, body: UpdateSwarmStackBody): Promise<Stack> {
    return (await this.request<Stack>('PUT', `/api/stacks/${id}`, { query: { endpointId }, body })).data;
  }

  /** A GET on the environment's Docker Engine API through Portainer's proxy. */
  async docker<T>(endpointId: number, path: string, query?: Record<string, string>): Promise<T> {
    return (await this.request<T>('GET', `/api/endpoints/${endpointId}/docker${path}`, { query })).data;
  }

  /** Docker's SecretCreate through the proxy: the value is sent base64-encoded in the body only. */
  async createDockerSecret(endpointId: number, name: string, value: Secret, labels: Record<string, string>): Promise<void> {
    await this.request('POST', `/api/endpoints/${endpointId}/docker/secrets/create`, {
      body: { Name: name, Labels: labels, Data: new Secret(Buffer.from(value.reveal()).toString('base64'), `${value.name} (base64)`) },
      ok: [201],
    });
  }

  /** GET /api/system/status (public). */
  async systemStatus(): Promise<{ Version?: string; InstanceID?: string }> {
    return (await this.request<{ Version?: string; InstanceID?: string }>('GET', '/api/system/status', { auth: false })).data;
  }
}

function maskDeep(v: unknown): unknown {
  if (v instanceof Secret) return '********';
  if (Array.isArray(v)) return v.map(maskDeep);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskDeep(x)]));
  return typeof v === 'string' ? redact(v) : v;
}
