// Typed, read-only probes (ctx.probe). They run in check mode too: only modules' changes are held back.
import { shQuote } from './connection/shell.ts';
import type { ActionContext } from './types.ts';
import { TaskError } from './types.ts';

export type FileType = 'file' | 'directory' | 'link' | 'other';

export interface FileState {
  exists: boolean;
  type?: FileType;
  /** Four octal digits, e.g. "0644". */
  mode?: string;
  owner?: string;
  group?: string;
  size?: number;
  sha256?: string;
  /** Link target, for symlinks. */
  target?: string;
  /** Whether the parent directory exists (matters for creating the file). */
  parentExists: boolean;
}

export function parentOf(path: string): string {
  const i = path.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/**
 * Shell: the SHA-256 (64 hex digits) of the regular file "$p". A file over 1 MiB is hashed by
 * `openssl dgst` where there is one (it uses the CPU's SHA instructions: 25 MB in ~35 ms
 * against sha256sum's ~130 ms on the lab's guests, e.g. step-ca's binary on every run); a
 * small one by sha256sum, which starts faster.
 */
export const sha256OfP = (size = '$(stat -c %s -- "$p")') =>
  `h=$(if [ "${size}" -gt 1048576 ] && command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r < "$p"; else sha256sum < "$p"; fi); printf %s "\${h%% *}"`;
/** The same, with the size asked of stat. Callers that have just run stat pass its size to sha256OfP: one exec less. */
export const SHA256_OF_P = sha256OfP();

export async function fileState(ctx: ActionContext, path: string): Promise<FileState> {
  const p = shQuote(path);
  const r = await ctx.probe(
    `if [ -L ${p} ] || [ -e ${p} ]; then stat -c '%F|%a|%U|%G|%s' -- ${p}; ` +
      `if [ -L ${p} ]; then echo "link:$(readlink -- ${p})"; elif [ -f ${p} ]; then echo "sha:$(p=${p}; ${SHA256_OF_P})"; fi; ` +
      `else echo absent; fi; [ -d ${shQuote(parentOf(path))} ] && echo parent || echo noparent`,
  );
  if (r.code !== 0) throw new TaskError(`cannot inspect ${path}`, { command: `stat ${path}`, stderr: r.stderr, code: r.code });
  const out = r.stdout.trim().split('\n');
  const parentExists = out[out.length - 1] === 'parent';
  if (out[0] === 'absent') return { exists: false, parentExists };
  const [kind, mode, owner, group, size] = out[0]!.split('|');
  const type: FileType =
    kind === 'regular file' || kind === 'regular empty file' ? 'file' : kind === 'directory' ? 'directory' : kind === 'symbolic link' ? 'link' : 'other';
  const st: FileState = { exists: true, type, mode: mode!.padStart(4, '0'), owner, group, size: Number(size), parentExists };
  if (out[1]?.startsWith('link:')) st.target = out[1].slice(5);
  else if (type === 'file') {
    const sha = out[1]?.startsWith('sha:') ? out[1].slice(4) : '';
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new TaskError(`cannot read ${path} to checksum it`, { command: `sha256sum ${path}`, stderr: r.stderr, code: r.code });
    st.sha256 = sha;
  }
  return st;
}

/** Reads a remote file's bytes (for diffs). */
export async function readFile(ctx: ActionContext, path: string): Promise<Buffer> {
  const r = await ctx.probe(`cat -- ${shQuote(path)}`);
  if (r.code !== 0) throw new TaskError(`cannot read ${path}`, { command: `cat ${path}`, stderr: r.stderr, code: r.code });
  return r.stdoutBuffer;
}

export interface PackageState {
  name: string;
  installed: boolean;
  version?: string;
}

export async function packageStates(ctx: ActionContext, names: string[]): Promise<PackageState[]> {
  const r = await ctx.probe(`dpkg-query -W -f='\${Package}|\${Status}|\${Version}\\n' ${names.map(shQuote).join(' ')} 2>/dev/null; true`);
  const seen = new Map<string, PackageState>();
  for (const line of r.stdout.split('\n')) {
    const [name, status, version] = line.split('|');
    if (!name) continue;
    seen.set(name, { name, installed: status === 'install ok installed', version: version || undefined });
  }
  return names.map((n) => seen.get(n.replace(/[:=].*$/, '')) ?? { name: n, installed: false });
}

export interface ServiceState {
  name: string;
  /** "loaded", "not-found", "masked", ... */
  load: string;
  /** "active", "inactive", "failed", "activating", ... */
  active: string;
  /** "enabled", "disabled", "static", "masked", "" ... */
  enabled: string;
}

export async function serviceState(ctx: ActionContext, name: string): Promise<ServiceState> {
  const r = await ctx.probe(`systemctl show -p LoadState -p ActiveState -p UnitFileState -- ${shQuote(name)}`);
  if (r.code !== 0) throw new TaskError(`cannot query service ${name}`, { command: `systemctl show ${name}`, stderr: r.stderr, code: r.code });
  const props = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { name, load: props.LoadState ?? '', active: props.ActiveState ?? '', enabled: props.UnitFileState ?? '' };
}

/** The chown argument for an owner and/or group ("user", "user:group", ":group"), or undefined. */
export function ownerSpec(o: { owner?: string; group?: string }): string | undefined {
  return o.owner || o.group ? `${o.owner ?? ''}${o.group ? `:${o.group}` : ''}` : undefined;
}

/** Normalizes a mode given as "0644", "644" or 0o644 to four octal digits. */
export function normalizeMode(mode: string | number | undefined, where: string): string | undefined {
  if (mode === undefined) return undefined;
  if (typeof mode === 'number') {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new TaskError(`${where}: mode ${mode} is out of range`);
    return mode.toString(8).padStart(4, '0');
  }
  if (!/^0?[0-7]{3,4}$/.test(mode))
    throw new TaskError(`${where}: mode "${mode}" must be octal digits such as "0644" (symbolic modes are not supported)`);
  return mode.replace(/^0?(?=[0-7]{4}$)/, '').padStart(4, '0');
}
