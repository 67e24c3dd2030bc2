// One HTTPS request with node:https, for the API clients of the roles (Proxmox VE, Portainer):
// what they asked of axios (a method, a path, headers, a text body; any status resolves, the
// body comes back as text), without loading axios. axios costs ~0.1–0.2 s of CPU to load in
// every run that talks to an API, on the critical path of site.ts (bench/ANALYSIS.md).
// TLS is verified by the caller's Agent (its CA); this helper never turns verification off.
import { request, type Agent } from 'node:https';

export interface HttpsRequest {
  /** Absolute https:// URL, query included. */
  url: string;
  method: string;
  headers?: Record<string, string>;
  body?: string;
  agent: Agent;
  /** Milliseconds for the whole exchange; 0 or unset: none. */
  timeoutMs?: number;
}

export interface HttpsResponse {
  status: number;
  statusText: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpsRequest(o: HttpsRequest): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(o.url);
    if (u.protocol !== 'https:') return reject(new Error(`${o.url}: expected https://`));
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const body = o.body === undefined ? undefined : Buffer.from(o.body, 'utf8');
    if (body) headers['Content-Length'] = String(body.length);
    let timer: NodeJS.Timeout | undefined;
    const req = request(u, { method: o.method, headers, agent: o.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        if (timer) clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    function fail(e: Error) {
      if (timer) clearTimeout(timer);
      reject(e);
    }
    req.on('error', fail);
    if (o.timeoutMs) {
      timer = setTimeout(() => {
        const e = Object.assign(new Error(`timeout of ${o.timeoutMs}ms exceeded`), { code: 'ECONNABORTED' });
        req.destroy(e);
      }, o.timeoutMs);
    }
    req.end(body);
  });
}
