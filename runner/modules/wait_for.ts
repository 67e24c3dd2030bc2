// wait_for: readiness, not sleeps. Polls a TCP port or an HTTP URL until it answers or the
// timeout passes. `from: 'host'` (default) polls on the target, `from: 'control'` from here.
import { connect } from 'node:net';
import { shQuote } from '../connection/shell.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface WaitForOptions {
  port?: number;
  host?: string;
  url?: string;
  /** Expected HTTP status (default 200). */
  status?: number;
  /** CA bundle (PEM path on the control machine, or on the host for from: 'host'). */
  ca?: string;
  /** Seconds (default 60). */
  timeout?: number;
  from?: 'host' | 'control';
}

function tcpOnce(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
    s.once('timeout', () => {
      s.destroy();
      res(false);
    });
  });
}

export function waitFor(o: WaitForOptions): Action {
  const invalid = invalidArgs('wait_for', o);
  if (invalid) return invalid;
  const what = o.url ? `${o.url} -> ${o.status ?? 200}` : `${o.host ?? '127.0.0.1'}:${o.port}`;
  return {
    module: 'wait_for',
    summary: `wait for ${what}${o.from === 'control' ? ' (from control)' : ''}`,
    async run(ctx): Promise<ActionResult> {
      if (!o.url && !o.port) throw new TaskError('wait_for: give a port or a url');
      const timeout = o.timeout ?? 60;
      const deadline = Date.now() + timeout * 1000;
      if (o.from === 'control') {
        for (;;) {
          let ok = false;
          if (o.url) {
            const r = await ctx.request({ url: o.url, timeout: 3, ca: o.ca }).catch(() => undefined);
            ok = r?.status === (o.status ?? 200);
          } else ok = await tcpOnce(o.host ?? ctx.host.address, o.port!);
          if (ok) return { changed: false };
          // check-mode exception: not ready may only mean earlier changes were not applied: unknown at once, no waiting.
          if (ctx.check && ctx.pendingChanges) return { changed: 'unknown', msg: `${what} not ready yet (earlier changes not applied in check mode)` };
          if (Date.now() > deadline) throw new TaskError(`wait_for: ${what} not ready after ${timeout}s`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      const each = Math.max(1, Math.min(3, timeout));
      const probe = o.url
        ? `curl -sS -o /dev/null -w '%{http_code}' --max-time ${each} ${o.ca ? `--cacert ${shQuote(o.ca)} ` : ''}${shQuote(o.url)} 2>/dev/null | grep -qx ${o.status ?? 200}`
        : `timeout ${each} bash -c ${shQuote(`(exec 3<>/dev/tcp/${o.host ?? '127.0.0.1'}/${o.port}) 2>/dev/null`)}`;
      // One remote loop instead of a round trip per attempt, bounded by a deadline on the
      // host's clock; each probe is itself bounded, so the loop ends within timeout + a probe.
      // check-mode exception: after unapplied changes, one probe decides (unknown when not ready), no waiting.
      const once = ctx.check && ctx.pendingChanges;
      const loop = once
        ? probe
        : `end=$(( $(date +%s) + ${Math.ceil(timeout)} )); while :; do if ${probe}; then exit 0; fi; [ "$(date +%s)" -ge "$end" ] && exit 1; sleep 0.25; done`;
      const r = await ctx.probe(loop, { timeout: timeout + each + 30 });
      if (r.code === 0) return { changed: false };
      // It cannot know: the changes it may wait for were not made. Not "ok", not a failure.
      if (once) return { changed: 'unknown', msg: `${what} not ready yet (earlier changes not applied in check mode)` };
      throw new TaskError(`wait_for: ${what} not ready after ${timeout}s`, { command: probe, stderr: r.stderr, code: r.code });
    },
  };
}
