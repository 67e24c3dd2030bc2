// file: directories, empty files, symlinks, absence; mode and owner.
// Compared with Ansible's file module (see README, Modules): `file`, `directory` and `touch`
// follow a symlink to what it points to (Ansible's default follow=yes); a link never
// silently replaces a file or directory (force: true replaces a file or an empty
// directory); absent refuses "link/" (a trailing slash through a symlink names the
// directory it points to, not the link).
import { shQuote } from '../connection/shell.ts';
import { normalizeMode, ownerSpec, parentOf } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { NotYetError, TaskError } from '../types.ts';
import { chmodArg, idDiffers, pathState, type PathState } from './attrs.ts';
import { invalidArgs } from './args.ts';

export interface FileOptions {
  path: string;
  state: 'directory' | 'absent' | 'touch' | 'file' | 'link';
  /** For links: what the link points to (stored as given; relative to the link's directory). */
  src?: string;
  /** For links: replace an existing regular file, or an empty directory, with the link. */
  force?: boolean;
  mode?: string | number;
  /** A user name or a numeric uid. */
  owner?: string;
  /** A group name or a numeric gid. */
  group?: string;
}

/** The directories `mkdir -p` would create for path, top first. */
function missingChain(path: string): string[] {
  const out: string[] = [];
  let p = path.replace(/\/+$/, '') || '/';
  while (p !== '/' && p !== '.' && p !== '') {
    out.unshift(p);
    p = parentOf(p);
  }
  return out;
}

export function file(o: FileOptions): Action {
  const invalid = invalidArgs('file', o);
  if (invalid) return invalid;
  return {
    module: 'file',
    summary: `file ${o.path} (${o.state})`,
    async run(ctx): Promise<ActionResult> {
      const where = `file ${o.path}`;
      const mode = normalizeMode(o.mode, where);
      const own = ownerSpec(o);
      if (o.state === 'link' && (mode || own))
        throw new TaskError(`${where}: mode, owner and group are not applied to a link; manage the file it points to with its own task`);
      if (o.state !== 'link' && o.src !== undefined) throw new TaskError(`${where}: src is only for state "link"`);
      if (o.state !== 'link' && o.force !== undefined) throw new TaskError(`${where}: force is only for state "link"`);
      const p = shQuote(o.path);

      // "l/" where l is a symlink names the directory l points to: rm -rf would empty that
      // directory and keep the link. Refuse before anything is touched.
      if (o.state === 'absent' && /[^/]\/+$/.test(o.path)) {
        const bare = o.path.replace(/\/+$/, '');
        const b = await pathState(ctx, bare);
        if (b.exists && b.type === 'link')
          throw new TaskError(
            `${where}: ${bare} is a symlink (-> ${b.target}) and the trailing slash names the directory it points to; ` +
              `refusing to remove that directory's contents. Give "${bare}" to remove the link, or the directory's own path to remove it`,
          );
      }

      const st = await pathState(ctx, o.path);
      // A missing directory or file may be made by an earlier task (e.g. apt installing a
      // package): NotYetError, unknown in check mode after unapplied changes.
      if ((o.state === 'touch' || o.state === 'link') && !st.exists && !st.parentExists)
        throw new NotYetError(`${where}: directory ${parentOf(o.path)} does not exist`);

      const todo: string[] = [];
      const why: string[] = [];
      // The path whose mode and owner are managed: a symlink is followed, as chmod and chown do.
      let target = o.path;
      let tst: PathState = st;

      if (o.state === 'absent') {
        if (!st.exists) return { changed: false };
        todo.push(`rm -rf -- ${p}`);
        why.push(st.type === 'link' ? 'link removed' : 'removed');
      } else if (o.state === 'link') {
        if (!o.src) throw new TaskError(`${where}: state "link" needs src`);
        if (!st.exists || st.type !== 'link' || st.target !== o.src) {
          if (st.exists && st.type !== 'link') {
            const kind = st.type === 'directory' ? 'a directory' : st.type === 'file' ? 'a regular file' : `a ${st.type}`;
            if (!o.force) throw new TaskError(`${where}: exists as ${kind}; refusing to replace it with a link (force: true replaces a file or an empty directory)`);
            if (st.type === 'directory') {
              const r = await ctx.probe(`[ -z "$(ls -A -- ${p})" ]`);
              if (r.code !== 0) throw new TaskError(`${where}: is a directory that is not empty; refusing to replace it with a link, even with force`);
            }
          }
          // A new link is made beside the path and renamed over it: atomic, never a moment without it.
          const tmp = shQuote(`${parentOf(o.path)}/.phx-link-${Math.random().toString(36).slice(2, 10)}`);
          todo.push(`${st.exists && st.type === 'directory' ? `rmdir -- ${p} && ` : ''}ln -s -- ${shQuote(o.src)} ${tmp} && { mv -fT -- ${tmp} ${p} || { rm -f -- ${tmp}; false; }; }`);
          why.push(st.exists ? `link -> ${o.src} (was ${st.type === 'link' ? `-> ${st.target}` : st.type})` : `link -> ${o.src}`);
        }
      } else {
        const want = o.state === 'directory' ? 'directory' : 'file';
        if (st.exists && st.type === 'link') {
          // Follow the link (Ansible's default, follow=yes): its target is what is managed.
          if (!st.resolved || !st.resolved.state.exists)
            throw new TaskError(`${where}: is a symlink (-> ${st.target}) to something that does not exist`);
          target = st.resolved.path;
          tst = st.resolved.state;
        }
        const shown = target === o.path ? o.path : `${o.path} (-> ${target})`;
        if (tst.exists && tst.type !== want) throw new TaskError(`file ${shown}: exists as a ${tst.type}, expected a ${want}`);
        if (!tst.exists && o.state === 'file') throw new NotYetError(`${where}: does not exist (state "file" only manages an existing file; use touch or copy)`);
        if (!tst.exists && o.state === 'directory') {
          // Like Ansible: every directory created on the way gets the mode and owner.
          const mk = missingChain(o.path).map((d) => {
            const q = shQuote(d);
            const attrs = [mode ? `chmod ${chmodArg(mode)} -- ${q}` : '', own ? `chown ${shQuote(own)} -- ${q}` : ''].filter(Boolean);
            return `if [ ! -d ${q} ]; then mkdir -- ${q}${attrs.length ? ` && ${attrs.join(' && ')}` : ''} || exit 1; fi`;
          });
          todo.push(`{ ${mk.join('; ')}; }`);
          why.push('created');
        } else if (!tst.exists) {
          todo.push(`touch -- ${p}`);
          why.push('created');
        }
      }
      if ((o.state === 'file' || o.state === 'touch' || o.state === 'directory') && !(o.state === 'directory' && !tst.exists)) {
        const q = shQuote(target);
        if (mode && tst.mode !== mode) {
          todo.push(`chmod ${chmodArg(mode)} -- ${q}`);
          if (tst.exists) why.push(`mode ${tst.mode} -> ${mode}`);
        }
        if (own && (idDiffers(o.owner, tst.owner, tst.uid) || idDiffers(o.group, tst.group, tst.gid))) {
          todo.push(`chown ${shQuote(own)} -- ${q}`);
          if (tst.exists) why.push(`owner ${tst.owner}:${tst.group} -> ${own}`);
        }
      }
      if (!todo.length) return { changed: false };
      const msg = why.join(', ') + (target !== o.path ? ` (on ${target})` : '');
      return ctx.change({ changed: true, msg }, async () => {
        const cmd = todo.join(' && ');
        const r = await ctx.run(cmd);
        if (r.code !== 0) throw new TaskError(`${where}: failed`, { command: cmd, stderr: r.stderr, code: r.code });
        return { changed: true, msg };
      });
    },
  };
}
