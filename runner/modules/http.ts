// http: a request from the control machine (axios), with the expected status checked.
// TLS is always verified; a private CA is added with `ca`, never by turning checks off.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { Method } from 'axios';
import { CheckModeRefusal } from '../connection/types.ts';
import { redact, redactDeep, revealDeep, Secret } from '../secret.ts';
import type { Action, ActionResult, HttpRequest, HttpResponse } from '../types.ts';
import { TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export function httpsAgent(caPath: string): Agent {
  return new Agent({ ca: readFileSync(caPath), rejectUnauthorized: true });
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** GET, HEAD and OPTIONS only read; another method reads only when the caller says so. */
export function isReadOnlyRequest(req: HttpRequest): boolean {
  return req.readOnly === true || READ_METHODS.has((req.method ?? 'GET').toUpperCase());
}

/** Sends a request (ActionContext.request does, after the check-mode rule). Any status resolves. */
export async function sendRequest(req: HttpRequest): Promise<HttpResponse> {
  // Loaded on first use: axios alone costs ~0.4 s of start-up.
  const { default: axios } = await import('axios');
  const r = await axios.request({
    url: req.url,
    method: (req.method ?? 'GET').toUpperCase() as Method,
    headers: req.headers,
    data: req.data,
    timeout: (req.timeout ?? 30) * 1000,
    httpsAgent: req.ca ? httpsAgent(req.ca) : undefined,
    validateStatus: () => true,
  });
  return { status: r.status, data: r.data };
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
  const readOnly = isReadOnlyRequest({ url: o.url, method });
  return {
    module: 'http',
    summary: `${method} ${redact(o.url)}`,
    async run(ctx): Promise<ActionResult> {
      // A request that is not a GET is the change; what it changes only the answer tells: unknown.
      if (!readOnly) return ctx.change({ changed: 'unknown', msg: `would send ${method} ${redact(o.url)}` }, send);
      return send();
      async function send(): Promise<ActionResult> {
        const headers = Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k, v instanceof Secret ? v.reveal() : v]));
        let r;
        try {
          r = await ctx.request({ url: o.url, method, headers, data: revealDeep(o.body), timeout: o.timeout, ca: o.ca });
        } catch (e) {
          if (e instanceof CheckModeRefusal) throw e;
          throw new TaskError(`http ${method} ${redact(o.url)}: ${redact((e as Error).message)}`);
        }
        const ok = o.status ?? [200];
        if (!ok.includes(r.status))
          throw new TaskError(`http ${method} ${redact(o.url)}: status ${r.status}, expected ${ok.join(' or ')}`, {
            stderr: redact(typeof r.data === 'string' ? r.data.slice(0, 2000) : JSON.stringify(r.data).slice(0, 2000)),
          });
        const changed = o.changedWhen ? o.changedWhen({ status: r.status, data: r.data }) : !readOnly;
        return { changed, msg: `status ${r.status}`, data: redactDeep({ status: r.status, data: r.data }) };
      }
    },
  };
}
