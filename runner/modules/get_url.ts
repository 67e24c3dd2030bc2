// get_url: download on the host, check the sha256, then rename into place.
import { shQuote } from '../connection/shell.ts';
import { fileState, normalizeMode, ownerSpec, parentOf } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';

export interface GetUrlOptions {
  url: string;
  dest: string;
  /** Expected sha256 of the content, hex. Required: a download is never trusted blindly. */
  sha256: string;
  mode?: string | number;
  owner?: string;
  group?: string;
  timeout?: number;
}

export function getUrl(o: GetUrlOptions): Action {
  return {
    module: 'get_url',
    summary: `get_url ${o.url} -> ${o.dest}`,
    async run(ctx): Promise<ActionResult> {
      const where = `get_url ${o.dest}`;
      if (!/^[0-9a-f]{64}$/i.test(o.sha256)) throw new TaskError(`${where}: sha256 must be 64 hex digits`);
      if (!/^https?:\/\//.test(o.url)) throw new TaskError(`${where}: url must be http(s): ${o.url}`);
      const mode = normalizeMode(o.mode, where) ?? '0644';
      const st = await fileState(ctx, o.dest);
      const want = o.sha256.toLowerCase();
      const own = ownerSpec(o) ?? '';
      const attrsOk = st.mode === mode && (!o.owner || st.owner === o.owner) && (!o.group || st.group === o.group);
      if (st.exists && st.sha256 === want && attrsOk) return { changed: false };
      const msg = st.exists && st.sha256 === want ? 'attributes changed' : `download ${o.url}`;
      if (ctx.check) return { changed: true, msg };
      const d = shQuote(o.dest);
      const script = [
        'set -e',
        `t=$(mktemp ${shQuote(`${parentOf(o.dest)}/.phx-`)}XXXXXX)`,
        `trap 'rm -f "$t"' EXIT`,
        st.exists && st.sha256 === want
          ? `cp -p ${d} "$t"`
          : `if command -v curl >/dev/null; then curl -fsSL --proto '=https,http' --max-time ${o.timeout ?? 300} -o "$t" ${shQuote(o.url)}; else wget -q -T ${o.timeout ?? 300} -O "$t" ${shQuote(o.url)}; fi`,
        `got=$(sha256sum < "$t" | cut -d' ' -f1)`,
        `if [ "$got" != ${want} ]; then echo "sha256 mismatch: expected ${want}, got $got" >&2; exit 3; fi`,
        `chmod ${mode} "$t"`,
        own ? `chown ${shQuote(own)} "$t"` : ':',
        `mv -f "$t" ${d}`,
        'trap - EXIT',
      ].join('\n');
      const r = await ctx.run(script, { timeout: (o.timeout ?? 300) + 30 });
      if (r.code !== 0)
        throw new TaskError(r.code === 3 ? `${where}: checksum mismatch, file not installed` : `${where}: download failed`, { command: `download ${o.url}`, stderr: r.stderr, code: r.code });
      return { changed: true, msg };
    },
  };
}
