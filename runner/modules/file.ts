// file: directories, empty files, symlinks, absence; mode and owner.
import { shQuote } from '../connection/shell.ts';
import { fileState, normalizeMode, ownerSpec } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';

export interface FileOptions {
  path: string;
  state: 'directory' | 'absent' | 'touch' | 'file' | 'link';
  /** For links: what the link points to. */
  src?: string;
  mode?: string | number;
  owner?: string;
  group?: string;
}

export function file(o: FileOptions): Action {
  return {
    module: 'file',
    summary: `file ${o.path} (${o.state})`,
    async run(ctx): Promise<ActionResult> {
      const where = `file ${o.path}`;
      const mode = normalizeMode(o.mode, where);
      const st = await fileState(ctx, o.path);
      // In check mode, a path whose directory is missing may be created by an earlier task
      // that was not applied (e.g. apt installing a package): the probe cannot know.
      if (ctx.check && ctx.pendingChanges && !st.exists && !st.parentExists) {
        return { changed: 'unknown', msg: `directory of ${o.path} does not exist yet` };
      }
      if ((o.state === 'touch' || o.state === 'link') && !st.exists && !st.parentExists)
        throw new TaskError(`${where}: directory of ${o.path} does not exist`);
      const p = shQuote(o.path);
      const todo: string[] = [];
      const why: string[] = [];
      if (o.state === 'absent') {
        if (!st.exists) return { changed: false };
        todo.push(`rm -rf -- ${p}`);
        why.push('removed');
      } else if (o.state === 'file') {
        if (!st.exists) throw new TaskError(`${where}: does not exist (state "file" only manages an existing file; use touch or copy)`);
      } else if (o.state === 'link') {
        if (!o.src) throw new TaskError(`${where}: state "link" needs src`);
        if (!st.exists || st.type !== 'link' || st.target !== o.src) {
          if (st.exists && st.type === 'directory') throw new TaskError(`${where}: is a directory, will not replace it with a link`);
          todo.push(`ln -sfn -- ${shQuote(o.src)} ${p}`);
          why.push(st.exists ? `link -> ${o.src} (was ${st.target ?? st.type})` : `link -> ${o.src}`);
        }
      } else {
        const want = o.state === 'directory' ? 'directory' : 'file';
        if (st.exists && st.type !== want) throw new TaskError(`${where}: exists as a ${st.type}, expected a ${want}`);
        if (!st.exists) {
          todo.push(o.state === 'directory' ? `mkdir -p -- ${p}` : `touch -- ${p}`);
          why.push('created');
        }
      }
      if (o.state !== 'absent' && o.state !== 'link') {
        if (mode && st.mode !== mode) {
          todo.push(`chmod ${mode} -- ${p}`);
          if (st.exists) why.push(`mode ${st.mode} -> ${mode}`);
        }
        const own = ownerSpec(o) ?? '';
        if ((o.owner && st.owner !== o.owner) || (o.group && st.group !== o.group)) {
          todo.push(`chown ${shQuote(own)} -- ${p}`);
          if (st.exists) why.push(`owner ${st.owner}:${st.group} -> ${own}`);
        }
      }
      if (!todo.length) return { changed: false };
      if (ctx.check) return { changed: true, msg: why.join(', ') };
      const cmd = todo.join(' && ');
      const r = await ctx.run(cmd);
      if (r.code !== 0) throw new TaskError(`${where}: failed`, { command: cmd, stderr: r.stderr, code: r.code });
      return { changed: true, msg: why.join(', ') };
    },
  };
}
