// copy: a file's content, mode and owner, written atomically (temp file in the same
// directory, then rename), so a host never holds a half-written file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { shQuote } from '../connection/shell.ts';
import { fileDiff } from '../diff.ts';
import { fileState, normalizeMode, ownerSpec, parentOf, readFile } from '../facts.ts';
import { Secret, isSecret } from '../secret.ts';
import type { Action, ActionContext, ActionResult, FileDiff } from '../types.ts';
import { TaskError } from '../types.ts';

export interface CopyOptions {
  dest: string;
  /** The content. A Secret is written from stdin, shown nowhere, and defaults to mode 0600. */
  content?: string | Buffer | Secret;
  /** A file on the control machine (relative paths: the role's folder). */
  src?: string;
  mode?: string | number;
  owner?: string;
  group?: string;
  /** A read-only check run on the new file before it replaces the old one; %s is its path. */
  validate?: string;
}

const DIFF_LIMIT = 256 * 1024;

function isText(b: Buffer): boolean {
  return !b.subarray(0, 8192).includes(0);
}

/** The part of copy/template that runs once the desired bytes are known. */
export async function putFile(
  ctx: ActionContext,
  o: { dest: string; mode?: string | number; owner?: string; group?: string; validate?: string },
  data: Buffer,
  sensitive: boolean,
): Promise<ActionResult> {
  const where = `file ${o.dest}`;
  if (!isAbsolute(o.dest)) throw new TaskError(`${where}: dest must be an absolute path`);
  const mode = normalizeMode(o.mode, where) ?? undefined;
  const st = await fileState(ctx, o.dest);
  if (st.exists && st.type === 'directory') throw new TaskError(`${where}: dest is a directory`);
  // Renaming over a link would replace the link, not the file it points to: say so instead.
  if (st.exists && st.type === 'link') throw new TaskError(`${where}: dest is a symlink (-> ${st.target}); give the path of the file it points to`);
  const sha = createHash('sha256').update(data).digest('hex');
  const contentChanged = !st.exists || st.type !== 'file' || st.sha256 !== sha;
  // Secret content is 0600 unless a mode is given, even when the file existed with another.
  const wantMode = mode ?? (sensitive ? '0600' : st.exists ? undefined : '0644');
  const attrs: string[] = [];
  if (st.exists && wantMode && st.mode !== wantMode) attrs.push(`mode ${st.mode} -> ${wantMode}`);
  if (st.exists && o.owner && st.owner !== o.owner) attrs.push(`owner ${st.owner} -> ${o.owner}`);
  if (st.exists && o.group && st.group !== o.group) attrs.push(`group ${st.group} -> ${o.group}`);
  if (!contentChanged && attrs.length === 0) return { changed: false };

  let diff: FileDiff[] | undefined;
  if (ctx.diff && contentChanged) {
    let before = '';
    if (st.exists && st.type === 'file') {
      before = (st.size ?? 0) > DIFF_LIMIT ? `[${st.size} bytes, too large to show]\n` : (await readFile(ctx, o.dest)).toString('utf8');
    }
    const after = sensitive ? '[secret content, not shown]\n' : data.length > DIFF_LIMIT || !isText(data) ? `[${data.length} bytes, not shown]\n` : data.toString('utf8');
    if (sensitive && st.exists) before = '[secret content, not shown]\n';
    diff = [fileDiff(o.dest, before, after)];
  }
  const msg = !st.exists ? 'created' : contentChanged ? `content changed${attrs.length ? `, ${attrs.join(', ')}` : ''}` : attrs.join(', ');
  // Check mode fails where the real run would, unless an unapplied earlier task may create the directory.
  if (!st.parentExists && ctx.check && ctx.pendingChanges) return { changed: 'unknown', diff, msg: `${msg} (directory ${parentOf(o.dest)} does not exist yet)` };
  if (!st.parentExists) throw new TaskError(`${where}: directory ${parentOf(o.dest)} does not exist`);
  if (ctx.check) return { changed: true, diff, msg };

  const d = shQuote(o.dest);
  const own = ownerSpec(o);
  if (contentChanged) {
    const lines = [
      'set -e',
      `t=$(mktemp ${shQuote(`${parentOf(o.dest)}/.phx-`)}XXXXXX)`,
      `trap 'rm -f "$t"' EXIT`,
      `cat > "$t"`,
      wantMode ? `chmod ${wantMode} "$t"` : `chmod --reference=${d} "$t"`,
      own ? `chown ${shQuote(own)} "$t"` : st.exists ? `chown --reference=${d} "$t"` : ':',
    ];
    if (o.validate) {
      const v = o.validate.includes('%s') ? o.validate.split('%s').join('"$t"') : `${o.validate} "$t"`;
      lines.push(`if ! out=$(${v} 2>&1); then echo "validation failed: $out" >&2; exit 3; fi`);
    }
    lines.push(`mv -f "$t" ${d}`, `trap - EXIT`);
    const r = await ctx.run(lines.join('\n'), { stdin: data });
    if (r.code !== 0)
      throw new TaskError(r.code === 3 ? `${where}: the new content failed validation; the old file is untouched` : `${where}: write failed`, {
        command: o.validate ?? `write ${o.dest}`,
        stderr: r.stderr,
        code: r.code,
      });
  } else {
    const cmds = [wantMode && st.mode !== wantMode ? `chmod ${wantMode} ${d}` : '', own ? `chown ${shQuote(own)} ${d}` : ''].filter(Boolean).join(' && ');
    const r = await ctx.run(cmds);
    if (r.code !== 0) throw new TaskError(`${where}: cannot set attributes`, { command: cmds, stderr: r.stderr, code: r.code });
  }
  return { changed: true, diff, msg };
}

export function copy(o: CopyOptions): Action {
  if ((o.content === undefined) === (o.src === undefined)) throw new Error(`copy ${o.dest}: give exactly one of content or src`);
  return {
    module: 'copy',
    summary: `copy ${o.src ? `${o.src} -> ` : ''}${o.dest}`,
    async run(ctx) {
      let data: Buffer;
      const sensitive = isSecret(o.content);
      if (o.src !== undefined) {
        const p = isAbsolute(o.src) ? o.src : join(ctx.roleDir ?? process.cwd(), o.src);
        try {
          data = readFileSync(p);
        } catch (e) {
          throw new TaskError(`copy ${o.dest}: cannot read source ${p}: ${(e as Error).message}`);
        }
      } else {
        const c = o.content!;
        data = c instanceof Secret ? Buffer.from(c.reveal()) : Buffer.isBuffer(c) ? c : Buffer.from(c);
      }
      return putFile(ctx, o, data, sensitive);
    },
  };
}
