// fetch: a file from the host to the control machine (as Ansible's fetch, flat), written
// atomically. Meant for public material such as a CA's root certificate: it refuses paths that
// look like private keys. In check mode nothing is written; the result says what would change.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileDiff } from '../diff.ts';
import { fileState, readFile } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { NotYetError, TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface FetchOptions {
  /** The file on the host. */
  src: string;
  /** The file on the control machine. */
  dest: string;
  mode?: number;
}

export function fetchFile(o: FetchOptions): Action {
  const invalid = invalidArgs('fetch', o);
  if (invalid) return invalid;
  return {
    module: 'fetch',
    summary: `fetch ${o.src} -> ${o.dest}`,
    async run(ctx): Promise<ActionResult> {
      const where = `fetch ${o.src}`;
      if (/(^|[/_.-])(key|secret|password)s?([/_.-]|$)/i.test(o.src)) throw new TaskError(`${where}: refusing to copy what looks like a secret to the control machine`);
      const st = await fileState(ctx, o.src);
      if (!st.exists || st.type !== 'file') throw new NotYetError(`${where}: no such file on ${ctx.host.name}`);
      const local = existsSync(o.dest) ? readFileSync(o.dest) : undefined;
      if (local && createHash('sha256').update(local).digest('hex') === st.sha256) return { changed: false, data: { path: o.dest } };
      const data = await readFile(ctx, o.src);
      const diff = ctx.diff ? [fileDiff(o.dest, local?.toString('utf8') ?? '', data.toString('utf8'))] : undefined;
      const msg = local ? `${o.dest} updated` : `${o.dest} created`;
      // The write is on the control machine: declared as the change, so check mode writes nothing.
      return ctx.change({ changed: true, msg, diff, data: { path: o.dest } }, async () => {
        mkdirSync(dirname(o.dest), { recursive: true });
        const tmp = `${o.dest}.${process.pid}.tmp`;
        writeFileSync(tmp, data, { mode: o.mode ?? 0o644 });
        renameSync(tmp, o.dest);
      });
    },
  };
}
