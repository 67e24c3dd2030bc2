// The Proxmox VE API client of the proxmox role: every request phoenix sends is built by one of
// the functions in `req` (so the contract test can validate each shape against Proxmox's own
// schema), sent form-encoded with the API token header over TLS verified against the
// inventory's CA file, and every UPID is waited on with a bound.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { httpsRequest } from '../../runner/modules/https-request.ts';
import type { Secret } from '../../runner/secret.ts';
import { redact } from '../../runner/secret.ts';
import { TaskError } from '../../runner/types.ts';
import type { Kind } from './config.ts';

export type Method = 'GET' | 'POST' | 'PUT';

/** One request: `path` is the schema's template (e.g. /nodes/{node}/lxc/{vmid}/config). */
export interface PveRequest {
  method: Method;
  path: string;
  /** Path parameters (node, vmid, upid …). */
  pathParams: Record<string, string | number>;
  /** Query (GET) or body (POST/PUT) parameters, as sent. */
  params: Record<string, string | number>;
}

const r = (method: Method, path: string, pathParams: PveRequest['pathParams'], params: PveRequest['params'] = {}): PveRequest => ({ method, path, pathParams, params });

/** Every request the role can send. */
export const req = {
  resources: () => r('GET', '/cluster/resources', {}, { type: 'vm' }),
  config: (node: string, kind: Kind, vmid: number) => r('GET', `/nodes/{node}/${kind}/{vmid}/config`, { node, vmid }),
  pending: (node: string, kind: Kind, vmid: number) => r('GET', `/nodes/{node}/${kind}/{vmid}/pending`, { node, vmid }),
  status: (node: string, kind: Kind, vmid: number) => r('GET', `/nodes/{node}/${kind}/{vmid}/status/current`, { node, vmid }),
  putConfig: (node: string, kind: Kind, vmid: number, keys: Record<string, string | number>, digest: string) =>
    r('PUT', `/nodes/{node}/${kind}/{vmid}/config`, { node, vmid }, { ...keys, digest }),
  resize: (node: string, kind: Kind, vmid: number, disk: string, sizeGb: number, digest: string) =>
    r('PUT', `/nodes/{node}/${kind}/{vmid}/resize`, { node, vmid }, { disk, size: `${sizeGb}G`, digest }),
  createLxc: (node: string, body: Record<string, string | number>) => r('POST', '/nodes/{node}/lxc', { node }, body),
  clone: (node: string, template: number, body: Record<string, string | number>) => r('POST', '/nodes/{node}/qemu/{vmid}/clone', { node, vmid: template }, body),
  start: (node: string, kind: Kind, vmid: number) => r('POST', `/nodes/{node}/${kind}/{vmid}/status/start`, { node, vmid }),
  reboot: (node: string, kind: Kind, vmid: number) => r('POST', `/nodes/{node}/${kind}/{vmid}/status/reboot`, { node, vmid }),
  taskStatus: (node: string, upid: string) => r('GET', '/nodes/{node}/tasks/{upid}/status', { node, upid }),
  taskLog: (node: string, upid: string) => r('GET', '/nodes/{node}/tasks/{upid}/log', { node, upid }, { start: 0, limit: 500 }),
};

export const fillPath = (q: PveRequest) => q.path.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(String(q.pathParams[k])));

export interface ClientOptions {
  url: string;
  tokenId: string;
  tokenSecret: Secret;
  caFile: string;
  /** Seconds per HTTP request. */
  timeout?: number;
  /** Seconds to wait for one task. */
  taskTimeout?: number;
  /** Every request sent, for the task's record (method and path, never a header). */
  onRequest?: (q: PveRequest) => void;
}

export class PveError extends TaskError {
  readonly status: number;
  readonly body: unknown;
  constructor(
    message: string,
    status: number,
    body: unknown,
  ) {
    super(message, { stderr: redact(typeof body === 'string' ? body : JSON.stringify(body ?? '')).slice(0, 2000) });
    this.status = status;
    this.body = body;
    this.name = 'PveError';
  }
}

export class PveClient {
  readonly #agent: Agent;
  readonly #auth: Secret;
  readonly #tokenId: string;
  readonly o: ClientOptions;
  constructor(o: ClientOptions) {
    this.o = o;
    let ca: Buffer;
    try {
      ca = readFileSync(o.caFile);
    } catch (e) {
      throw new TaskError(`proxmox: CA file ${o.caFile} (field "proxmox.caFile") cannot be read: ${(e as Error).message}`);
    }
    // Verified against the inventory's CA only; never rejectUnauthorized: false.
    this.#agent = new Agent({ ca, rejectUnauthorized: true, keepAlive: true, maxSockets: 4 });
    this.#auth = o.tokenSecret;
    this.#tokenId = o.tokenId;
  }

  close() {
    this.#agent.destroy();
  }

  async send<T = unknown>(q: PveRequest): Promise<T> {
    this.o.onRequest?.(q);
    const path = fillPath(q);
    const where = `${q.method} ${path}`;
    const form = new URLSearchParams(Object.entries(q.params).map(([k, v]) => [k, String(v)]));
    const qs = q.method === 'GET' && [...form].length ? `?${form}` : '';
    let raw;
    try {
      raw = await httpsRequest({
        url: `${this.o.url.replace(/\/+$/, '')}/api2/json${path}${qs}`,
        method: q.method,
        headers: {
          Accept: 'application/json',
          Authorization: `PVEAPIToken=${this.#tokenId}=${this.#auth.reveal()}`,
          ...(q.method === 'GET' ? {} : { 'Content-Type': 'application/x-www-form-urlencoded' }),
        },
        body: q.method === 'GET' ? undefined : form.toString(),
        agent: this.#agent,
        timeoutMs: (this.o.timeout ?? 30) * 1000,
      });
    } catch (e) {
      const err = e as Error & { code?: string };
      const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|altnames/i.test(`${err.code} ${err.message}`) ? ` (TLS verification against ${this.o.caFile} failed: is it the CA that signs the API certificate?)` : '';
      throw new TaskError(`proxmox API ${where}: ${redact(err.message)}${hint}`);
    }
    let data: unknown = raw.body;
    try {
      data = JSON.parse(raw.body);
    } catch {
      /* left as text */
    }
    const res = { status: raw.status, statusText: raw.statusText, data };
    if (res.status >= 400 || (res.status !== 200 && res.status !== 201)) {
      const body = res.data as { errors?: Record<string, string>; message?: string } | string;
      const errs = typeof body === 'object' && body?.errors ? `: ${Object.entries(body.errors).map(([k, v]) => `${k}: ${String(v).trim()}`).join('; ')}` : '';
      const msg = typeof body === 'object' && body?.message ? String(body.message).trim() : (res.statusText || '').trim();
      const perm = res.status === 403 ? ` (the API token ${this.#tokenId} lacks a privilege here: docs/proxmox.md lists the roles it needs)` : '';
      throw new PveError(redact(`proxmox API ${where}: HTTP ${res.status} ${msg}${errs}${perm}`), res.status, res.data);
    }
    return (res.data as { data: T }).data;
  }

  /**
   * Waits for a task (UPID) to stop, polling with back-off up to `taskTimeout` seconds; a task
   * that did not end in OK (or WARNINGS) fails with the last lines of its log.
   */
  async waitTask(node: string, upid: string, what: string): Promise<void> {
    const deadline = Date.now() + (this.o.taskTimeout ?? 300) * 1000;
    let delay = 100;
    for (;;) {
      const st = await this.send<{ status: string; exitstatus?: string }>(req.taskStatus(node, upid));
      if (st.status === 'stopped') {
        if (st.exitstatus === 'OK' || /^WARNINGS: \d+$/.test(st.exitstatus ?? '')) return;
        const log = await this.send<{ n: number; t: string }[]>(req.taskLog(node, upid)).catch(() => []);
        const tail = log.slice(-15).map((l) => `    ${l.t}`).join('\n');
        throw new TaskError(redact(`proxmox: ${what} failed: task ${upid} ended with "${st.exitstatus ?? 'no exit status'}"; its log ends:\n${tail}`));
      }
      if (Date.now() > deadline) throw new TaskError(`proxmox: ${what}: task ${upid} still running after ${this.o.taskTimeout ?? 300} s (field "proxmox.taskTimeout"); it was left running`);
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}
