// http: a request from the control machine (axios), with the expected status checked.
// TLS is always verified; a private CA is added with `ca`, never by turning checks off.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { Method } from 'axios';
import { redact, redactDeep, revealDeep, Secret } from '../secret.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export function httpsAgent(caPath: string): Agent {
  return new Agent({ ca: readFileSync(caPath), rejectUnauthorized: true });
}

export interface HttpOptions {
  url: string;
  method?: Method;
  headers?: Record<string, string | Secret>;
  body?: unknown;
  /** Accepted statuses (default [200]). */
  status?: number[];
  /** PEM CA bundle on the control machine. */
  ca?: string;
  timeout?: number;
  /** Decide whether the request changed something (default: GET/HEAD never, others always). */
  changedWhen?: (r: { status: number; data: unknown }) => boolean;
}

export function http(o: HttpOptions): Action {
  const invalid = invalidArgs('http', o);
  if (invalid) return invalid;
  const method = (o.method ?? 'GET').toUpperCase() as Method;
  const readOnly = method === 'GET' || method === 'HEAD';
  return {
    module: 'http',
    summary: `${method} ${redact(o.url)}`,
    async run(ctx): Promise<ActionResult> {
      if (!readOnly && ctx.check) return { changed: 'unknown', msg: `would send ${method} ${redact(o.url)}` };
      const headers = Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k, v instanceof Secret ? v.reveal() : v]));
      let r;
      try {
        // Loaded on first use: axios alone costs ~0.4 s of start-up.
        const { default: axios } = await import('axios');
        r = await axios.request({
          url: o.url,
          method,
          headers,
          data: revealDeep(o.body),
          timeout: (o.timeout ?? 30) * 1000,
          httpsAgent: o.ca ? httpsAgent(o.ca) : undefined,
          validateStatus: () => true,
        });
      } catch (e) {
        throw new TaskError(`http ${method} ${redact(o.url)}: ${redact((e as Error).message)}`);
      }
      const ok = o.status ?? [200];
      if (!ok.includes(r.status))
        throw new TaskError(`http ${method} ${redact(o.url)}: status ${r.status}, expected ${ok.join(' or ')}`, {
          stderr: redact(typeof r.data === 'string' ? r.data.slice(0, 2000) : JSON.stringify(r.data).slice(0, 2000)),
        });
      const changed = o.changedWhen ? o.changedWhen({ status: r.status, data: r.data }) : !readOnly;
      return { changed, msg: `status ${r.status}`, data: redactDeep({ status: r.status, data: r.data }) };
    },
  };
}
