// copy: a file's content, mode and owner, written atomically (temp file in the same
// directory, then rename), so a host never holds a half-written file.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { shQuote } from '../connection/shell.ts';
import { fileDiff } from '../diff.ts';
import { normalizeMode, ownerSpec, parentOf, readFile } from '../facts.ts';
import { Secret, isSecret } from '../secret.ts';
import type { Action, ActionContext, ActionResult, FileDiff } from '../types.ts';
import { NotYetError, TaskError } from '../types.ts';
import { chmodArg, idDiffers, pathState } from './attrs.ts';
import { invalidArgs } from './args.ts';

export interface CopyOptions {
  dest: string;
  /** The content. A Secret is written from stdin, shown nowhere, and defaults to mode 0600. */
  content?: string | Buffer | Secret;
  /** A file on the control machine (relative paths: the role's files/ folder, then the role's folder). */
  src?: string;
  mode?: string | number;
  /** A user name or a numeric uid. */
  owner?: string;
  /** A group name or a numeric gid. */
  group?: string;
  /** A read-only check run on the new file before it replaces the old one; %s is its path. */
  validate?: string;
  /** false: write only when dest does not exist yet (Ansible's force: no). Default true. */
  force?: boolean;
}

const DIFF_LIMIT = 256 * 1024;

function isText(b: Buffer): boolean {
  return !b.subarray(0, 8192).includes(0);
}

/** The part of copy/template that runs once the desired bytes are known. */
export async function putFile(
  ctx: ActionContext,
  o: { dest: string; mode?: string | number; owner?: string; group?: string; validate?: string; force?: boolean },
  data: Buffer,
  sensitive: boolean,
  /** Where the content comes from, for messages ("template roles/x/templates/a.hbs"). */
  source?: string,
): Promise<ActionResult> {
  const where = `file ${o.dest}`;
  if (!isAbsolute(o.dest)) throw new TaskError(`${where}: dest must be an absolute path`);
  if (o.dest.endsWith('/')) throw new TaskError(`${where}: dest ends with "/": give the path of the file to write, not its directory`);
  const mode = normalizeMode(o.mode, where) ?? undefined;
  const st = await pathState(ctx, o.dest);
  if (st.exists && o.force === false) return { changed: false, msg: 'exists (force: false)' };
  if (st.exists && st.type === 'directory') throw new TaskError(`${where}: dest is a directory; give the path of the file to write`);
  // Renaming over a link would replace the link, not the file it points to: say so instead.
  if (st.exists && st.type === 'link') throw new TaskError(`${where}: dest is a symlink (-> ${st.target}); give the path of the file it points to`);
  const sha = createHash('sha256').update(data).digest('hex');
  const contentChanged = !st.exists || st.type !== 'file' || st.sha256 !== sha;
  // Secret content is 0600 unless a mode is given, even when the file existed with another.
  const wantMode = mode ?? (sensitive ? '0600' : st.exists ? undefined : '0644');
  const attrs: string[] = [];
  if (st.exists && wantMode && st.mode !== wantMode) attrs.push(`mode ${st.mode} -> ${wantMode}`);
  if (st.exists && idDiffers(o.owner, st.owner, st.uid)) attrs.push(`owner ${st.owner} -> ${o.owner}`);
  if (st.exists && idDiffers(o.group, st.group, st.gid)) attrs.push(`group ${st.group} -> ${o.group}`);
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
  // An unapplied earlier task may be what creates the directory (unknown in check mode then, with the diff).
  if (!st.parentExists) throw new NotYetError(`${where}: directory ${parentOf(o.dest)} does not exist`, {}, diff);
  return ctx.change({ changed: true, diff, msg }, async () => {
    const d = shQuote(o.dest);
    const own = ownerSpec(o);
    if (contentChanged) {
      const lines = [
        'set -e',
        `t=$(mktemp ${shQuote(`${parentOf(o.dest)}/.phx-`)}XXXXXX)`,
        `trap 'rm -f "$t"' EXIT`,
        `cat > "$t"`,
        wantMode ? `chmod ${chmodArg(wantMode)} "$t"` : `chmod --reference=${d} "$t"`,
        own ? `chown ${shQuote(own)} "$t"` : st.exists ? `chown --reference=${d} "$t"` : ':',
      ];
      if (o.validate) {
        const v = o.validate.includes('%s') ? o.validate.split('%s').join('"$t"') : `${o.validate} "$t"`;
        // The whole validate string (it may be several statements) has its output captured; the
        // temp file's name in it is replaced by the destination's, and the status is kept.
        lines.push(
          `set +e`,
          `out=$( { ${v}\n} 2>&1 ); rc=$?`,
          `set -e`,
          `if [ "$rc" -ne 0 ]; then printf 'phx-validate %s %s\\n' "$rc" "$t" >&2; printf '%s' "$out" >&2; exit 3; fi`,
        );
      }
      lines.push(`mv -f "$t" ${d}`, `trap - EXIT`);
      const r = await ctx.run(lines.join('\n'), { stdin: data });
      const head = r.code === 3 && o.validate ? /(?:^|\n)phx-validate (\d+) (.*)\n/.exec(r.stderr) : null;
      if (head) {
        // The validator names the temp file it checked: show the destination instead.
        const out = r.stderr.slice(head.index + head[0].length).split(head[2]!).join(`${o.dest} (new content)`).trim();
        throw new TaskError(
          `${where}: the new content${source ? ` from ${source}` : ''} failed validation (${out ? `exit status ${head[1]}` : `the command exited ${head[1]} without output`}); ${o.dest} is untouched`,
          { command: o.validate, stderr: out || undefined, code: Number(head[1]) },
        );
      }
      if (r.code !== 0) throw new TaskError(`${where}: write failed`, { command: `write ${o.dest}`, stderr: r.stderr, code: r.code });
    } else {
      const cmds = [wantMode && st.mode !== wantMode ? `chmod ${chmodArg(wantMode)} ${d}` : '', own ? `chown ${shQuote(own)} ${d}` : ''].filter(Boolean).join(' && ');
      const r = await ctx.run(cmds);
      if (r.code !== 0) throw new TaskError(`${where}: cannot set attributes`, { command: cmds, stderr: r.stderr, code: r.code });
    }
    return { changed: true, diff, msg };
  });
}

export function copy(o: CopyOptions): Action {
  const invalid = invalidArgs('copy', o);
  if (invalid) return invalid;
  if ((o.content === undefined) === (o.src === undefined)) throw new Error(`copy ${o.dest}: give exactly one of content or src`);
  return {
    module: 'copy',
    summary: `copy ${o.src ? `${o.src} -> ` : ''}${o.dest}`,
    async run(ctx) {
      let data: Buffer;
      const sensitive = isSecret(o.content);
      if (o.src !== undefined) {
        // Like Ansible: a relative src is looked up in the role's files/ folder, then the role's folder.
        const base = ctx.roleDir ?? process.cwd();
        const candidates = isAbsolute(o.src) ? [o.src] : ctx.roleDir ? [join(base, 'files', o.src), join(base, o.src)] : [join(base, o.src)];
        const p = candidates.find((c) => existsSync(c)) ?? candidates[candidates.length - 1]!;
        // Ansible copies a directory src recursively; phoenix copies one file: say so plainly.
        if (statSync(p, { throwIfNoEntry: false })?.isDirectory())
          throw new TaskError(`copy ${o.dest}: source ${p} is a directory; copy copies one file (use one copy per file, or a shell task for a tree)`);
        try {
          data = readFileSync(p);
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          const why = err.code === 'ENOENT' ? `no such file (looked in ${candidates.join(', ')})` : err.code === 'EACCES' ? 'permission denied' : err.message;
          throw new TaskError(`copy ${o.dest}: cannot read source ${candidates.length > 1 && err.code === 'ENOENT' ? o.src : p}: ${why}`);
        }
      } else {
        const c = o.content!;
        data = c instanceof Secret ? Buffer.from(c.reveal()) : Buffer.isBuffer(c) ? c : Buffer.from(c);
      }
      return putFile(ctx, o, data, sensitive, o.src !== undefined ? `copy source ${o.src}` : undefined);
    },
  };
}
