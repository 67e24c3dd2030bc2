// get_url: download on the host, check the sha256, then rename into place.
// The expected checksum is a literal (`sha256`) or, as Ansible's `checksum: sha256:<url>`, read
// from a release's published checksums file (`checksumUrl`): the line naming the URL's file.
import { shQuote } from '../connection/shell.ts';
import { fileState, normalizeMode, ownerSpec, parentOf } from '../facts.ts';
import type { Action, ActionContext, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface GetUrlOptions {
  url: string;
  dest: string;
  /** Expected sha256 of the content, hex. Wins over `checksumUrl` when both are given. */
  sha256?: string;
  /** A checksums file (sha256sum format: "<hex>  <file name>") listing the URL's file name. */
  checksumUrl?: string;
  mode?: string | number;
  owner?: string;
  group?: string;
  timeout?: number;
}

const HEX64 = /^[0-9a-f]{64}$/i;

/** The sha256 for `fileName` in a sha256sum-format text, or undefined. */
export function checksumFor(text: string, fileName: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(?:\.\/)?(\S+)\s*$/.exec(line.trim());
    if (m && (m[2] === fileName || m[2]!.split('/').pop() === fileName)) return m[1]!.toLowerCase();
  }
  return undefined;
}

/** The curl (or wget) command that writes `url` to the shell variable path `$t`. */
export function downloadCmd(url: string, timeout: number, to = '"$t"'): string {
  return `if command -v curl >/dev/null; then curl -fsSL --proto '=https,http' --max-time ${timeout} -o ${to} ${shQuote(url)}; else wget -q -T ${timeout} -O ${to} ${shQuote(url)}; fi`;
}

/**
 * Resolves the expected sha256: the literal, or the one the checksums file lists for the URL's
 * file name (fetched on the host, which is where the download happens too).
 */
export async function expectedSha256(ctx: ActionContext, o: { url: string; sha256?: string; checksumUrl?: string; timeout?: number }, where: string): Promise<string> {
  if (o.sha256 !== undefined) {
    if (!HEX64.test(o.sha256)) throw new TaskError(`${where}: sha256 must be 64 hex digits`);
    return o.sha256.toLowerCase();
  }
  if (!o.checksumUrl) throw new TaskError(`${where}: give sha256 or checksumUrl; a download is never trusted blindly`);
  if (!/^https?:\/\//.test(o.checksumUrl)) throw new TaskError(`${where}: checksumUrl must be http(s): ${o.checksumUrl}`);
  // A probe: the checksums file goes to a temp file that is removed, and only its text is read.
  const r = await ctx.probe(`set -e; t=$(mktemp); trap 'rm -f "$t"' EXIT; ${downloadCmd(o.checksumUrl, o.timeout ?? 60)}; cat "$t"`, { timeout: (o.timeout ?? 60) + 15 });
  if (r.code !== 0) throw new TaskError(`${where}: cannot fetch the checksums file ${o.checksumUrl}`, { command: `download ${o.checksumUrl}`, stderr: r.stderr, code: r.code });
  const name = decodeURIComponent(new URL(o.url).pathname.split('/').pop() ?? '');
  const sha = checksumFor(r.stdout, name);
  if (!sha) throw new TaskError(`${where}: ${o.checksumUrl} lists no sha256 for ${name}`);
  return sha;
}

export function getUrl(o: GetUrlOptions): Action {
  const invalid = invalidArgs('get_url', o);
  if (invalid) return invalid;
  return {
    module: 'get_url',
    summary: `get_url ${o.url} -> ${o.dest}`,
    async run(ctx): Promise<ActionResult> {
      const where = `get_url ${o.dest}`;
      if (!/^https?:\/\//.test(o.url)) throw new TaskError(`${where}: url must be http(s): ${o.url}`);
      const mode = normalizeMode(o.mode, where) ?? '0644';
      const want = await expectedSha256(ctx, o, where);
      const st = await fileState(ctx, o.dest);
      const own = ownerSpec(o) ?? '';
      const attrsOk = st.mode === mode && (!o.owner || st.owner === o.owner) && (!o.group || st.group === o.group);
      if (st.exists && st.sha256 === want && attrsOk) return { changed: false };
      const msg = st.exists && st.sha256 === want ? 'attributes changed' : `download ${o.url}`;
      return ctx.change({ changed: true, msg }, async () => {
        const d = shQuote(o.dest);
        const script = [
          'set -e',
          `t=$(mktemp ${shQuote(`${parentOf(o.dest)}/.phx-`)}XXXXXX)`,
          `trap 'rm -f "$t"' EXIT`,
          st.exists && st.sha256 === want ? `cp -p ${d} "$t"` : downloadCmd(o.url, o.timeout ?? 300),
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
      });
    },
  };
}
