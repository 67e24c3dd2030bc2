// install_binary: one executable from a vendor's release tarball (checksummed by a literal
// sha256 or the release's checksums file) or from a file on the control machine (a lab build,
// a stand-in), installed atomically at `dest`. A marker beside it records which archive the
// installed binary came from, so a second run downloads nothing.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { shQuote } from '../connection/shell.ts';
import { fileState, parentOf } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { idDiffers, pathState } from './attrs.ts';
import { putFile } from './copy.ts';
import { downloadCmd, expectedSha256 } from './get_url.ts';
import { invalidArgs } from './args.ts';

export type BinarySource =
  /** A release tarball verified by a literal sha256 of the archive. */
  | { url: string; sha256: string; binaryInArchive: string }
  /** A release tarball verified against the release's published checksums file. */
  | { url: string; checksumsUrl: string; binaryInArchive: string }
  /** A file on the control machine, verified by its sha256 before it is sent. */
  | { localPath: string; sha256: string };

export interface InstallBinaryOptions {
  dest: string;
  source: BinarySource;
  timeout?: number;
}

const MARKERS = '/var/lib/phoenix/binaries';

export function installBinary(o: InstallBinaryOptions): Action {
  const invalid = invalidArgs('install_binary', o);
  if (invalid) return invalid;
  const src = o.source;
  return {
    module: 'install_binary',
    summary: `install_binary ${'localPath' in src ? src.localPath : src.url} -> ${o.dest}`,
    async run(ctx): Promise<ActionResult> {
      const where = `install_binary ${o.dest}`;
      if ('localPath' in src) {
        // The pin is the desired state: a host that already holds those bytes (0755 root:root)
        // needs nothing, so the local file is read and hashed (25 MB for step-ca: ~0.1 s of this
        // process's CPU) only when it is to be sent, as get_url skips a download whose dest
        // already has the checksum. A local file that is missing, or whose size is not the
        // pinned file's (a new build with an old pin), is still an error every run.
        const pin = src.sha256.toLowerCase();
        let size: number;
        try {
          size = statSync(src.localPath).size;
        } catch (e) {
          throw new TaskError(`${where}: cannot read ${src.localPath}: ${(e as Error).message}`);
        }
        const st = await pathState(ctx, o.dest);
        const held = st.exists && st.type === 'file' && st.sha256 === pin && st.mode === '0755' && !idDiffers('root', st.owner, st.uid) && !idDiffers('root', st.group, st.gid);
        if (held && st.size === size) return { changed: false };
        let data: Buffer;
        try {
          data = readFileSync(src.localPath);
        } catch (e) {
          throw new TaskError(`${where}: cannot read ${src.localPath}: ${(e as Error).message}`);
        }
        const got = createHash('sha256').update(data).digest('hex');
        if (got !== pin) throw new TaskError(`${where}: ${src.localPath} has sha256 ${got}, expected ${src.sha256}`);
        return putFile(ctx, { dest: o.dest, mode: '0755', owner: 'root', group: 'root' }, data, false);
      }
      const want = await expectedSha256(ctx, { url: src.url, sha256: 'sha256' in src ? src.sha256 : undefined, checksumUrl: 'checksumsUrl' in src ? src.checksumsUrl : undefined }, where);
      const marker = `${MARKERS}/${basename(o.dest)}`;
      const probe = await ctx.probe(`cat ${shQuote(marker)} 2>/dev/null; true`);
      const [archiveSha, binarySha] = probe.stdout.trim().split(/\s+/);
      const st = await fileState(ctx, o.dest);
      if (archiveSha === want && st.exists && st.type === 'file' && st.sha256 === binarySha && st.mode === '0755' && st.owner === 'root') return { changed: false };
      const msg = st.exists ? `replace with ${basename(src.url)}` : `install from ${basename(src.url)}`;
      return ctx.change({ changed: true, msg }, async () => {
        const d = shQuote(o.dest);
        const name = shQuote(src.binaryInArchive);
        const script = [
          'set -e',
          `w=$(mktemp -d)`,
          `t=$(mktemp ${shQuote(`${parentOf(o.dest)}/.phx-`)}XXXXXX)`,
          `trap 'rm -rf "$w" "$t"' EXIT`,
          downloadCmd(src.url, o.timeout ?? 300, '"$w/archive"'),
          `got=$(sha256sum < "$w/archive" | cut -d' ' -f1)`,
          `if [ "$got" != ${want} ]; then echo "sha256 mismatch: expected ${want}, got $got" >&2; exit 3; fi`,
          `mkdir "$w/x" && tar -xzf "$w/archive" -C "$w/x"`,
          `b=$(find "$w/x" -type f -name ${name} | head -n 1)`,
          `if [ -z "$b" ]; then echo "no file named ${src.binaryInArchive} in the archive" >&2; exit 4; fi`,
          `cat "$b" > "$t"; chmod 0755 "$t"; chown root:root "$t"`,
          `mkdir -p ${MARKERS}`,
          `printf '%s %s\\n' ${want} "$(sha256sum < "$t" | cut -d' ' -f1)" > ${shQuote(marker)}.new`,
          `mv -f "$t" ${d}; mv -f ${shQuote(marker)}.new ${shQuote(marker)}`,
        ].join('\n');
        const r = await ctx.run(script, { timeout: (o.timeout ?? 300) + 30 });
        if (r.code !== 0)
          throw new TaskError(r.code === 3 ? `${where}: checksum mismatch, nothing installed` : `${where}: install failed`, { command: `install ${src.url}`, stderr: r.stderr, code: r.code });
        return { changed: true, msg };
      });
    },
  };
}
