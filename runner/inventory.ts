// Inventory: typed hosts and groups, loaded from TypeScript, YAML or JSON, validated with
// ajv, and resolved into flat Host records (connection settings and merged vars).
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve, isAbsolute, extname, join, relative } from 'node:path';
import { homedir } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';
import { pathToFileURL, fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv';
import validateSchema from './inventory-validator.generated.js';
import { Secret, SecretError } from './secret.ts';
import { describeLoadError } from './load-errors.mjs';

/** Vars are any object type; interfaces work (a Record index signature is not required). */
export type Vars = object;

/** A host that a connection hops through (e.g. the Proxmox host in front of its guests). */
export interface JumpSpec {
  address: string;
  port?: number;
  user?: string;
  key?: string;
}

/** Connection settings that a host inherits from its groups unless it sets its own. */
export interface ConnectionSpec {
  port?: number;
  user?: string;
  /** Path to a private key (0600). Without one, ssh-agent ($SSH_AUTH_SOCK) is used. */
  key?: string;
  /** Name of another inventory host, or an explicit jump host. */
  jump?: string | JumpSpec;
  /** Run commands as root through sudo when `user` is not root. */
  become?: boolean;
  becomePassword?: Secret;
  connection?: 'ssh' | 'local';
  /** Seconds to wait for the TCP connect and SSH handshake. */
  connectTimeout?: number;
  /**
   * Seconds between SSH keepalive probes once connected (default 15). A host that answers
   * none of `keepaliveCountMax` probes in a row (default 3) is unreachable: the connection
   * is given up after about interval x (count + 1) seconds of silence.
   */
  keepaliveInterval?: number;
  keepaliveCountMax?: number;
}

export interface HostSpec<V extends Vars = Vars> extends ConnectionSpec {
  address: string;
  groups?: string[];
  vars?: Partial<V>;
}

export interface GroupSpec<V extends Vars = Vars> extends ConnectionSpec {
  /** Extra members, besides hosts that list this group themselves. */
  hosts?: string[];
  vars?: Partial<V>;
}

export interface Inventory<V extends Vars = Vars> {
  /** known_hosts file used to verify host keys; defaults to ~/.ssh/known_hosts. */
  knownHosts?: string;
  /** Vars for every host; groups override them, hosts override groups. */
  vars?: Partial<V>;
  groups?: Record<string, GroupSpec<V>>;
  hosts: Record<string, HostSpec<V>>;
}

export interface Host<V extends Vars = Vars> {
  name: string;
  address: string;
  port: number;
  user: string;
  key?: string;
  jump?: JumpSpec & { name: string };
  become: boolean;
  becomePassword?: Secret;
  connection: 'ssh' | 'local';
  connectTimeout: number;
  keepaliveInterval: number;
  keepaliveCountMax: number;
  groups: string[];
  vars: V;
}

export interface ResolvedInventory<V extends Vars = Vars> {
  source: string;
  knownHosts: string;
  hosts: Map<string, Host<V>>;
  groups: Map<string, string[]>;
}

/** Identity helper so an inventory literal is checked against its vars type. */
export function defineInventory<V extends Vars>(inv: Inventory<V>): Inventory<V> {
  return inv;
}

export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InventoryError';
  }
}

// The ajv validator is compiled ahead of time (npm run gen:validator) from
// inventory-schema.ts: loading and compiling ajv on every run cost ~0.15 s of start-up.
// A unit test fails when the generated file is stale.
export { inventorySchema } from './inventory-schema.ts';

/** Turns one ajv error into "host "x": field "port": must be integer". */
function describeError(e: ErrorObject): string {
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let where = '';
  let field = parts;
  if ((parts[0] === 'hosts' || parts[0] === 'groups') && parts.length >= 2) {
    where = `${parts[0] === 'hosts' ? 'host' : 'group'} "${parts[1]}": `;
    field = parts.slice(2);
  }
  if (e.keyword === 'additionalProperties') {
    field = [...field, String((e.params as { additionalProperty: string }).additionalProperty)];
    return `${where}field "${field.join('.')}": unknown field`;
  }
  if (e.keyword === 'required') {
    field = [...field, String((e.params as { missingProperty: string }).missingProperty)];
    return `${where}field "${field.join('.')}": is required`;
  }
  if (e.keyword === 'propertyNames') {
    return `${where}name "${(e.params as { propertyName: string }).propertyName}" ${'may only contain letters, digits, _ . -'}`;
  }
  const f = field.length ? `field "${field.join('.')}": ` : '';
  return `${where}${f}${e.message ?? 'is invalid'}`;
}

const NOT_ADDRESS = 'is not a hostname or an IPv4/IPv6 address';
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/; // "_" as in Docker and /etc/hosts names

/** A DNS hostname (RFC 1123 labels, optional trailing dot) or an IPv4/IPv6 literal; nothing else. */
export function isAddress(a: unknown): boolean {
  if (typeof a !== 'string' || a.length === 0 || a.length > 253) return false;
  // Only an IPv6 literal has a colon. (net's IPv6 pattern costs ~5 ms to compile on its first use:
  // isIP() would pay it for every inventory with a host name.)
  if (a.includes(':')) return isIPv6(a);
  if (isIPv4(a)) return true;
  const labels = (a.endsWith('.') ? a.slice(0, -1) : a).split('.');
  if (!labels.every((l) => LABEL.test(l))) return false;
  // All-numeric labels would be a (bad) IPv4 address such as 192.168.1.300, not a name.
  return !labels.every((l) => /^\d+$/.test(l));
}

/** Validates a raw inventory object. Errors name the file, host and field. */
export function validateInventory(raw: unknown, source: string): asserts raw is Inventory {
  if (!validateSchema(raw)) {
    const errs = (validateSchema.errors ?? [])
      // anyOf produces one error per branch plus its own; keep the useful ones.
      .filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'if')
      .map(describeError);
    const unique = [...new Set(errs)];
    throw new InventoryError(`invalid inventory ${source}:\n  - ${unique.join('\n  - ')}`);
  }
  const inv = raw as Inventory;
  const problems: string[] = [];
  for (const [gname, g] of Object.entries(inv.groups ?? {})) {
    for (const h of g.hosts ?? []) {
      if (!inv.hosts[h]) problems.push(`group "${gname}": field "hosts": unknown host "${h}"`);
    }
    if (typeof g.jump === 'string' && !inv.hosts[g.jump])
      problems.push(`group "${gname}": field "jump": unknown host "${g.jump}"`);
  }
  for (const [gname, g] of Object.entries(inv.groups ?? {})) {
    if (g.jump && typeof g.jump === 'object' && !isAddress(g.jump.address))
      problems.push(`group "${gname}": field "jump.address": ${JSON.stringify(g.jump.address)} ${NOT_ADDRESS}`);
  }
  for (const [hname, h] of Object.entries(inv.hosts)) {
    if (!isAddress(h.address)) problems.push(`host "${hname}": field "address": ${JSON.stringify(h.address)} ${NOT_ADDRESS}`);
    if (h.jump && typeof h.jump === 'object' && !isAddress(h.jump.address))
      problems.push(`host "${hname}": field "jump.address": ${JSON.stringify(h.jump.address)} ${NOT_ADDRESS}`);
    if (typeof h.jump === 'string') {
      if (!inv.hosts[h.jump]) problems.push(`host "${hname}": field "jump": unknown host "${h.jump}"`);
      else if (h.jump === hname) problems.push(`host "${hname}": field "jump": a host cannot jump through itself`);
    }
    if (h.becomePassword !== undefined && !(h.becomePassword instanceof Secret))
      problems.push(`host "${hname}": field "becomePassword": must be a Secret (use {"$secret": {"env": "VAR"}} in YAML/JSON)`);
    if (inv.hosts[hname] && (inv.groups ?? {})[hname])
      problems.push(`host "${hname}": a group has the same name`);
  }
  if (problems.length) throw new InventoryError(`invalid inventory ${source}:\n  - ${problems.join('\n  - ')}`);
}

/** "host "a": field "becomePassword"" from ['hosts', 'a', 'becomePassword']. */
function describePath(path: string[]): string {
  if ((path[0] === 'hosts' || path[0] === 'groups') && path.length >= 2) {
    const rest = path.slice(2);
    return `${path[0] === 'hosts' ? 'host' : 'group'} "${path[1]}"${rest.length ? `: field "${rest.join('.')}"` : ''}`;
  }
  return path.length ? `field "${path.join('.')}"` : 'top level';
}

/** In YAML/JSON, secrets are references, never values: {"$secret": {"env": "VAR"}} or {"$secret": {"file": "path"}}. */
function materializeSecrets(value: unknown, baseDir: string, path: string[], problems: string[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => materializeSecrets(v, baseDir, [...path, String(i)], problems));
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    const obj = value as Record<string, unknown>;
    if ('$secret' in obj) {
      const ref = obj.$secret as { env?: string; file?: string } | undefined;
      if (ref && typeof ref.env === 'string') {
        const v = process.env[ref.env];
        if (v === undefined) {
          problems.push(`${describePath(path)}: secret environment variable ${ref.env} is not set`);
          return undefined;
        }
        return new Secret(v, ref.env);
      }
      if (ref && typeof ref.file === 'string') {
        const p = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
        try {
          return new Secret(readFileSync(p, 'utf8').replace(/\n$/, ''), p);
        } catch (e) {
          problems.push(`${describePath(path)}: cannot read secret file ${p}: ${(e as Error).message}`);
          return undefined;
        }
      }
      problems.push(`${describePath(path)}: "$secret" needs {"env": NAME} or {"file": PATH}`);
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = materializeSecrets(v, baseDir, [...path, k], problems);
    return out;
  }
  return value;
}

/**
 * JSON.parse keeps the last of two equal keys without a word (YAML refuses them): a second
 * "lxc101" would silently replace the first. Returns the path and key of every duplicate.
 * `text` is known to be valid JSON.
 */
export function jsonDuplicateKeys(text: string): { path: string[]; key: string }[] {
  const dups: { path: string[]; key: string }[] = [];
  interface Frame { obj: boolean; keys: Set<string>; path: string[]; expectKey: boolean; idx: number; lastKey: string }
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    const top = stack[stack.length - 1];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (top?.obj && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) dups.push({ path: top.path, key });
        top.keys.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      const path = top ? [...top.path, top.obj ? top.lastKey : String(top.idx)] : [];
      stack.push({ obj: ch === '{', keys: new Set(), path, expectKey: ch === '{', idx: 0, lastKey: '' });
    } else if (ch === '}' || ch === ']') stack.pop();
    else if (ch === ',' && top) {
      if (top.obj) top.expectKey = true;
      else top.idx++;
    }
  }
  return dups;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The file kinds an inventory may be, in the order a folder or a bare name is searched. */
export const INVENTORY_EXTS = ['.ts', '.yaml', '.yml', '.json', '.mts', '.js', '.mjs'] as const;
/** What `phoenix` looks for in the current folder when no -i is given. */
const DEFAULT_EXTS = ['.ts', '.yaml', '.yml', '.json'];

export interface LocateOptions {
  /** Folder that relative paths and the default inventory are resolved against (default: the current one). */
  cwd?: string;
  /**
   * The playbook being run (its file). phoenix's own inventories ("lab", phoenix's
   * inventory.ts) are found by name only for phoenix's own playbooks run from inside the
   * phoenix checkout: a user's playbook is never aimed at phoenix's hosts.
   */
  playbook?: string;
}

const inside = (dir: string, p: string) => p === dir.replace(/\/$/, '') || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** True when `playbook` is one of phoenix's own files and `cwd` is inside the phoenix checkout. */
export function isPhoenixOwn(o: LocateOptions = {}): boolean {
  const cwd = resolve(o.cwd ?? process.cwd());
  return !!o.playbook && inside(ROOT, resolve(o.playbook)) && !resolve(o.playbook).includes('/node_modules/') && inside(ROOT, cwd);
}

const kindOf = (p: string): 'file' | 'dir' | 'other' | undefined => {
  try {
    const s = statSync(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return undefined;
  }
};

const firstFile = (candidates: string[]) => candidates.find((c) => kindOf(c) === 'file');

/**
 * Where `-i SPEC` points. Without SPEC: ./inventory.ts (then .yaml, .yml, .json) of the current
 * folder. With SPEC: that path (a file, or a folder holding inventory.*), else, for a bare name
 * such as "lab", ./inventories/NAME.* (and, for phoenix's own playbooks, phoenix's NAME/inventory.*).
 * A path that exists but is not an inventory is refused for what it is, never "not found".
 */
export function locateInventory(spec: string | undefined, o: LocateOptions = {}): string {
  const cwd = resolve(o.cwd ?? process.cwd());
  const own = isPhoenixOwn(o);
  const show = (c: string) => (inside(cwd, c) ? `./${relative(cwd, c)}` : c);
  if (spec === undefined || spec === '') {
    const candidates = DEFAULT_EXTS.map((e) => join(cwd, `inventory${e}`));
    if (own && cwd !== resolve(ROOT)) candidates.push(join(ROOT, 'inventory.ts'));
    const found = firstFile(candidates);
    if (found) return found;
    throw new InventoryError(
      `no inventory: none given with -i, and none in ${cwd} (looked for ${candidates.map(show).join(', ')}); pass -i PATH`,
    );
  }
  const p = resolve(cwd, spec);
  const kind = kindOf(p);
  if (kind === 'file') {
    if ((INVENTORY_EXTS as readonly string[]).includes(extname(p))) return p;
    throw new InventoryError(
      `inventory ${p}: cannot read a "${extname(p) || '(no extension)'}" file as an inventory (expected one of ${INVENTORY_EXTS.join(', ')})`,
    );
  }
  if (kind === 'dir') {
    const inDir = INVENTORY_EXTS.map((e) => join(p, `inventory${e}`));
    const found = firstFile(inDir);
    if (found) return found;
    throw new InventoryError(`inventory ${p} is a folder with no inventory in it (looked for ${inDir.map((c) => `inventory${extname(c)}`).join(', ')})`);
  }
  if (kind === 'other') throw new InventoryError(`inventory ${p} is not a regular file`);
  // A bare name ("lab"): the inventories folder, and phoenix's own named inventories.
  const bare = !/[\\/]/.test(spec) && !extname(spec);
  const named = bare
    ? [
        ...INVENTORY_EXTS.map((e) => join(cwd, 'inventories', `${spec}${e}`)),
        ...(own ? [...INVENTORY_EXTS.map((e) => join(ROOT, spec, `inventory${e}`)), ...INVENTORY_EXTS.map((e) => join(ROOT, 'inventories', `${spec}${e}`))] : []),
      ]
    : [];
  const found = firstFile(named);
  if (found) return found;
  throw new InventoryError(
    `inventory not found: ${p} does not exist${named.length ? ` (also looked for ${[...new Set(named)].map(show).join(', ')})` : ''}`,
  );
}

/** Loads an inventory file (TypeScript module, YAML or JSON) and resolves it. */
export async function loadInventory(spec?: string, o: LocateOptions = {}): Promise<ResolvedInventory> {
  const file = locateInventory(spec, o);
  const ext = extname(file);
  let raw: unknown;
  if (ext === '.json' || ext === '.yaml' || ext === '.yml') {
    const text = readFileSync(file, 'utf8');
    try {
      // yaml is loaded only for YAML inventories.
      raw = ext === '.json' ? JSON.parse(text) : (await import('yaml')).default.parse(text, { version: '1.2' });
    } catch (e) {
      throw new InventoryError(`cannot parse inventory ${file}: ${(e as Error).message}`);
    }
    const problems: string[] = [];
    if (ext === '.json') {
      for (const d of jsonDuplicateKeys(text)) {
        const what = d.path.length === 1 && (d.path[0] === 'hosts' || d.path[0] === 'groups') ? describePath([...d.path, d.key]) : `${describePath(d.path)}: key "${d.key}"`;
        problems.push(`${what} is defined twice`);
      }
    }
    if (!problems.length) raw = materializeSecrets(raw, dirname(file), [], problems);
    if (problems.length) throw new InventoryError(`invalid inventory ${file}:\n  - ${problems.join('\n  - ')}`);
  } else {
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown; inventory?: unknown };
      raw = mod.default ?? mod.inventory;
      if (typeof raw === 'function') raw = await (raw as () => unknown)();
    } catch (e) {
      // secretFromEnv() of an unset variable, evaluated as the inventory module loads.
      // By name: an inventory outside this package may load its own copy of secret.ts.
      if (e instanceof SecretError || (e as Error)?.name === 'SecretError') throw new InventoryError(`invalid inventory ${file}: ${(e as Error).message}`);
      // Any other mistake in the inventory's code (a throw, a syntax error, a bad import) is the
      // user's to fix: where, and what, without phoenix's stack.
      if ((e as Error)?.name === 'InventoryError') throw new InventoryError((e as Error).message);
      const d = describeLoadError(e);
      if (d.user) throw new InventoryError(`cannot load inventory ${file}: ${d.where ? `${d.where}: ` : ''}${d.message}`);
      throw e;
    }
    if (!raw) throw new InventoryError(`inventory ${file} exports no default inventory`);
  }
  return resolveInventory(raw as Inventory, file);
}

function expandHome(p: string): string {
  return p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

/** Validates an in-memory inventory and flattens it into Host records. */
export function resolveInventory<V extends Vars>(inv: Inventory<V>, source = '<inventory>'): ResolvedInventory<V> {
  validateInventory(inv, source);
  const base = source.startsWith('<') ? process.cwd() : dirname(source);
  const pathOf = (p: string | undefined) => (p === undefined ? undefined : resolve(base, expandHome(p)));

  const groups = new Map<string, string[]>();
  const addMember = (g: string, h: string) => {
    const m = groups.get(g) ?? [];
    if (!m.includes(h)) m.push(h);
    groups.set(g, m);
  };
  for (const [name, h] of Object.entries(inv.hosts)) for (const g of h.groups ?? []) addMember(g, name);
  for (const [gname, g] of Object.entries(inv.groups ?? {})) {
    if (!groups.has(gname)) groups.set(gname, []);
    for (const h of g.hosts ?? []) addMember(gname, h);
  }
  groups.set('all', Object.keys(inv.hosts));

  const groupOrder = Object.keys(inv.groups ?? {});
  const hosts = new Map<string, Host<V>>();
  for (const [name, spec] of Object.entries(inv.hosts)) {
    const memberOf = [...groups.entries()].filter(([g, m]) => g !== 'all' && m.includes(name)).map(([g]) => g);
    // Group settings apply in the order the groups are declared; the host's own win.
    const ordered = [...memberOf].sort((a, b) => groupOrder.indexOf(a) - groupOrder.indexOf(b));
    const merged: ConnectionSpec = {};
    let vars: Vars = { ...(inv.vars ?? {}) };
    for (const g of ordered) {
      const gs = inv.groups?.[g];
      if (!gs) continue;
      const { hosts: _h, vars: gv, ...conn } = gs;
      Object.assign(merged, conn);
      vars = { ...vars, ...(gv ?? {}) };
    }
    const { address, groups: _g, vars: hv, ...conn } = spec;
    Object.assign(merged, conn);
    vars = { ...vars, ...(hv ?? {}) };

    let jump: Host['jump'];
    if (typeof merged.jump === 'string') {
      if (merged.jump !== name) {
        const j = inv.hosts[merged.jump];
        if (!j) throw new InventoryError(`invalid inventory ${source}: host "${name}": field "jump": unknown host "${merged.jump}"`);
        jump = { name: merged.jump, address: j.address, port: j.port ?? 22, user: j.user ?? 'root', key: pathOf(j.key) };
      }
    } else if (merged.jump) {
      const j = merged.jump;
      jump = { name: `${j.user ?? 'root'}@${j.address}`, address: j.address, port: j.port ?? 22, user: j.user ?? 'root', key: pathOf(j.key) };
    }
    hosts.set(name, {
      name,
      address,
      port: merged.port ?? 22,
      user: merged.user ?? 'root',
      key: pathOf(merged.key),
      jump,
      become: merged.become ?? false,
      becomePassword: merged.becomePassword,
      connection: merged.connection ?? 'ssh',
      connectTimeout: merged.connectTimeout ?? 10,
      keepaliveInterval: merged.keepaliveInterval ?? 15,
      keepaliveCountMax: merged.keepaliveCountMax ?? 3,
      groups: memberOf,
      vars: vars as V,
    });
  }
  return {
    source,
    knownHosts: pathOf(inv.knownHosts) ?? join(homedir(), '.ssh', 'known_hosts'),
    hosts,
    groups,
  };
}
