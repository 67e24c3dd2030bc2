// What file, copy and template need to know about a path beyond facts.fileState: numeric
// owner and group ids (so '65534' and 'nobody' compare equal), where a symlink resolves to
// and that target's own state (chmod and chown follow links), and how to apply a mode so
// that the result is exactly that mode (GNU chmod keeps a directory's setuid/setgid bits
// when given four digits).
import { shQuote } from '../connection/shell.ts';
import { parentOf, sha256OfP, type FileState, type FileType } from '../facts.ts';
import type { ActionContext } from '../types.ts';
import { TaskError } from '../types.ts';

export interface PathState extends FileState {
  uid?: number;
  gid?: number;
  /** For a symlink: its fully resolved path and that path's state (exists: false when dangling). */
  resolved?: { path: string; state: PathState };
}

const STAT = `stat -c '%F|%a|%U|%G|%s|%u|%g' --`;

function typeOf(kind: string): FileType {
  return kind === 'regular file' || kind === 'regular empty file' ? 'file' : kind === 'directory' ? 'directory' : kind === 'symbolic link' ? 'link' : 'other';
}

function parseStat(line: string, parentExists: boolean): PathState {
  const [kind, mode, owner, group, size, uid, gid] = line.split('|');
  return { exists: true, type: typeOf(kind!), mode: mode!.padStart(4, '0'), owner, group, size: Number(size), uid: Number(uid), gid: Number(gid), parentExists };
}

/** One round trip: the path (not followed), its link target and the target's state. */
export async function pathState(ctx: ActionContext, path: string): Promise<PathState> {
  const p = shQuote(path);
  const sh =
    `p=${p}; if [ -L "$p" ] || [ -e "$p" ]; then s=$(${STAT} "$p"); echo "st:$s"; ` +
    `if [ -L "$p" ]; then echo "link:$(readlink -- "$p")"; r=$(readlink -f -- "$p") && echo "real:$r" && if [ -e "$r" ]; then echo "rst:$(${STAT} "$r")"; fi; ` +
    // The size is stat's fifth field: no second stat for the hash.
    `elif [ -f "$p" ]; then z=\${s#*|*|*|*|}; echo "sha:$(${sha256OfP('${z%%|*}')})"; fi; ` +
    `else echo absent; fi; [ -d ${shQuote(parentOf(path))} ] && echo parent || echo noparent`;
  const r = await ctx.probe(sh);
  if (r.code !== 0) throw new TaskError(`cannot inspect ${path}`, { command: `stat ${path}`, stderr: r.stderr, code: r.code });
  const lines = r.stdout.split('\n');
  const get = (k: string) => lines.find((l) => l.startsWith(`${k}:`))?.slice(k.length + 1);
  const parentExists = lines.includes('parent');
  if (lines[0] === 'absent') return { exists: false, parentExists };
  const stLine = get('st');
  if (!stLine) throw new TaskError(`cannot inspect ${path}`, { command: `stat ${path}`, stderr: r.stderr, code: r.code });
  const st = parseStat(stLine, parentExists);
  if (st.type === 'link') {
    st.target = get('link');
    const real = get('real');
    if (real !== undefined) {
      const rst = get('rst');
      st.resolved = { path: real, state: rst ? parseStat(rst, true) : { exists: false, parentExists: true } };
    }
  } else if (st.type === 'file') {
    const sha = get('sha') ?? '';
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new TaskError(`cannot read ${path} to checksum it`, { command: `sha256sum ${path}`, stderr: r.stderr, code: r.code });
    st.sha256 = sha;
  }
  return st;
}

/** Whether a wanted owner or group (a name, or a numeric id) differs from what the path has. */
export function idDiffers(want: string | undefined, name: string | undefined, id: number | undefined): boolean {
  if (!want) return false;
  if (/^\d+$/.test(want)) return Number(want) !== id;
  return want !== name;
}

/** The chmod argument for four octal digits: five digits, so that setuid/setgid are set or cleared exactly, on directories too. */
export function chmodArg(mode: string): string {
  return `0${mode}`;
}
