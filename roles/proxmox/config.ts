// Pure functions of the proxmox role: Proxmox property strings parsed into objects, a guest's
// declaration turned into API keys, and the per-key plan (what to write, what to resize, what
// to refuse) from the declared and the current config. Compared key by key on parsed values, so
// key order, defaults and encodings (1/true, 8G/8192M, URL-encoded sshkeys, tag separators)
// never show as a change. No I/O here: unit-tested in test/unit/proxmox-config.test.ts.
import type { GuestDecl, LxcGuest, VmGuest } from './vars.ts';

export type Kind = 'lxc' | 'qemu';
export const kindOf = (g: GuestDecl): Kind => (g.kind === 'lxc' ? 'lxc' : 'qemu');
export const kindName = (k: Kind) => (k === 'lxc' ? 'LXC container' : 'VM');

/** `a=1,b=2,bare` → { a: '1', b: '2', [defaultKey]: 'bare' }. Values keep their text. */
export function parsePropString(s: string, defaultKey?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of String(s).split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (!defaultKey) throw new Error(`property string "${s}": "${p}" has no key`);
      out[defaultKey] = p;
    } else out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

/** Keys in a stable order (the default key first), so phoenix's own strings are deterministic. */
export function formatPropString(o: Record<string, string | number | boolean | undefined>, defaultKey?: string): string {
  const parts: string[] = [];
  if (defaultKey && o[defaultKey] !== undefined) parts.push(String(o[defaultKey]));
  for (const [k, v] of Object.entries(o)) if (k !== defaultKey && v !== undefined) parts.push(`${k}=${typeof v === 'boolean' ? (v ? 1 : 0) : v}`);
  return parts.join(',');
}

/** Proxmox booleans: 1/0, true/false, yes/no, on/off. */
export function bool(v: unknown): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  const s = String(v).toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  return undefined;
}

/** A Proxmox disk size ("8G", "8192M", "32", "1T", bytes "…") in GiB, possibly fractional. Bare numbers are GiB. */
export function sizeGb(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/i.exec(String(s).trim());
  if (!m) throw new Error(`disk size "${s}" is not understood`);
  const n = Number(m[1]);
  const unit = m[2].toUpperCase();
  return unit === 'K' ? n / 1024 / 1024 : unit === 'M' ? n / 1024 : unit === 'T' ? n * 1024 : n;
}

/** The `startup` property: `[order=]N[,up=N][,down=N]`. */
export function parseStartup(s: string): { order?: number; up?: number; down?: number } {
  const p = parsePropString(s, 'order');
  const n = (v?: string) => (v === undefined ? undefined : Number(v));
  return { order: n(p.order), up: n(p.up), down: n(p.down) };
}

/** Tags: Proxmox stores them `;`-separated (also accepts `,` and spaces) and sorts them. */
export const parseTags = (s: string | undefined) => [...new Set(String(s ?? '').split(/[;, ]+/).filter(Boolean))].sort();
/** Nameserver lists: space-, comma- or semicolon-separated. */
export const parseList = (s: string | undefined) => String(s ?? '').split(/[;, ]+/).filter(Boolean);
/** VM sshkeys: URL-encoded by Proxmox (spaces as %20, newlines as %0A); one key per line. */
export function parseSshKeys(s: string | undefined): string[] {
  let t = String(s ?? '');
  try {
    t = decodeURIComponent(t.replace(/\+/g, '%20'));
  } catch {
    /* already plain */
  }
  return t.split('\n').map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')).filter(Boolean).sort();
}
/** What Proxmox wants for `sshkeys`: the keys, one per line, URL-encoded (as its own GUI sends them). */
export const encodeSshKeys = (keys: string[]) => encodeURIComponent(keys.join('\n')).replace(/'/g, '%27');

export const startupString = (s: { order: number; up?: number; down?: number }) => formatPropString({ order: s.order, up: s.up, down: s.down });

export function lxcNet0(n: LxcGuest['net0']): string {
  return formatPropString({ name: n.name, bridge: n.bridge, ip: n.ip, gw: n.gw, hwaddr: n.hwaddr, firewall: n.firewall });
}
export function lxcFeatures(f: LxcGuest['features']): string {
  return formatPropString({ nesting: f.nesting, keyctl: f.keyctl, fuse: f.fuse });
}
export const ipconfig0 = (c: VmGuest['ipconfig0']) => formatPropString({ ip: c.ip, gw: c.gw });

/** The description line phoenix writes at creation: how it learns later what the guest was made from. */
export const createdFrom = (g: GuestDecl) => `managed by phoenix (created from ${g.kind === 'lxc' ? g.ostemplate : `template ${g.cloneFrom}`})`;
export function parseCreatedFrom(description: string | undefined): string | undefined {
  const m = /managed by phoenix \(created from ([^)\s]+(?: \d+)?)\)/.exec(decodeURIComponentSafe(description ?? ''));
  return m?.[1];
}
function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The keys phoenix manages after creation, in API form. `POST …/lxc` sends these plus the
 * create-only keys; a VM gets them with `PUT …/config` after its clone.
 */
export function managedKeys(g: GuestDecl): Record<string, string | number> {
  const common: Record<string, string | number | undefined> = {
    cores: g.cores,
    memory: g.memory,
    onboot: g.onboot ? 1 : 0,
    startup: startupString(g.startup),
    tags: [...g.tags].sort().join(';'),
    nameserver: g.nameserver,
    searchdomain: g.searchdomain,
  };
  if (g.kind === 'lxc') {
    Object.assign(common, { hostname: g.hostname, swap: g.swap, net0: lxcNet0(g.net0), features: lxcFeatures(g.features) });
  } else {
    Object.assign(common, { name: g.name, ipconfig0: ipconfig0(g.ipconfig0), ciuser: g.ciuser, sshkeys: encodeSshKeys(g.sshkeys), agent: g.agent ? 1 : 0 });
  }
  if (!g.tags.length) delete common.tags;
  return Object.fromEntries(Object.entries(common).filter(([, v]) => v !== undefined)) as Record<string, string | number>;
}

/** `POST /nodes/{node}/lxc`: everything a new container needs, its root password never (key login only). */
export function lxcCreateBody(vmid: number, g: LxcGuest): Record<string, string | number> {
  return {
    vmid,
    ostemplate: g.ostemplate,
    ...managedKeys(g),
    rootfs: `${g.rootfs.storage}:${g.rootfs.sizeGb}`,
    unprivileged: g.unprivileged ? 1 : 0,
    'ssh-public-keys': g.sshPublicKeys.join('\n'),
    description: createdFrom(g),
    start: 0,
  };
}

/** `POST /nodes/{node}/qemu/{template}/clone`: a full clone. */
export function vmCloneBody(vmid: number, g: VmGuest): Record<string, string | number> {
  const b: Record<string, string | number> = { newid: vmid, name: g.name, full: 1, description: createdFrom(g) };
  if (g.storage) b.storage = g.storage;
  return b;
}

// ------------------------------------------------------------------ the plan

export interface Change {
  /** API key, e.g. memory or net0. */
  key: string;
  /** For property strings: the sub-key that differs, e.g. ip of net0. */
  sub?: string;
  from: string;
  to: string;
}

export interface Resize {
  disk: string;
  fromGb: number;
  toGb: number;
}

export interface GuestPlan {
  host: string;
  vmid: number;
  kind: Kind;
  /** The guest does not exist: create it (the body of POST lxc, or the clone then the config). */
  create?: { summary: string };
  /** Keys to write with PUT config (whole values, in API form). */
  put: Record<string, string | number>;
  changes: Change[];
  resize: Resize[];
  /** Changes phoenix will not make, each naming the key and why. A guest with refusals is not touched. */
  refusals: string[];
}

const show = (v: unknown) => (v === undefined || v === '' ? '(unset)' : String(v));

/** Compares a property string key by key over the declared sub-keys; defaults fill what Proxmox omits. */
function compareProp(key: string, want: string, have: string | undefined, defaultKey: string | undefined, defaults: Record<string, string>, normalize: Record<string, (v: string) => string> = {}): Change[] {
  const w = parsePropString(want, defaultKey);
  const h = have === undefined ? {} : parsePropString(have, defaultKey);
  const out: Change[] = [];
  for (const [k, wv] of Object.entries(w)) {
    const n = normalize[k] ?? ((v: string) => (bool(v) !== undefined && /^(0|1|true|false|yes|no|on|off)$/i.test(v) ? String(Number(bool(v))) : v));
    const hv = h[k] ?? defaults[k];
    if (hv === undefined || n(hv) !== n(wv)) out.push({ key, sub: k, from: show(h[k] ?? defaults[k]), to: wv });
  }
  return out;
}

const upper = (v: string) => v.toUpperCase();
const lower = (v: string) => v.toLowerCase();

/**
 * The per-key plan for one guest. `current` is GET …/config's data (undefined: the guest does
 * not exist as `existingKind`/at all). `existingKind` is the kind /cluster/resources reports for
 * the vmid, if any.
 */
export function planGuest(host: string, vmid: number, g: GuestDecl, existingKind: Kind | undefined, current: Record<string, unknown> | undefined): GuestPlan {
  const kind = kindOf(g);
  const plan: GuestPlan = { host, vmid, kind, put: {}, changes: [], resize: [], refusals: [] };
  const refuse = (key: string, why: string) => plan.refusals.push(`${host} (${kind === 'lxc' ? 'lxc' : 'vm'} ${vmid}): ${key}: ${why}; nothing was changed (phoenix never destroys a guest)`);
  if (existingKind && existingKind !== kind) {
    refuse('vmid', `${vmid} exists as ${existingKind === 'lxc' ? 'an LXC container' : 'a VM'} but is declared as ${kind === 'lxc' ? 'an LXC container' : 'a VM'}; choose another guestId or remove that guest by hand`);
    return plan;
  }
  if (!existingKind || !current) {
    plan.create = { summary: g.kind === 'lxc' ? `create lxc ${vmid} from ${g.ostemplate}` : `create vm ${vmid} as a full clone of template ${g.cloneFrom}` };
    return plan;
  }
  const cur = current as Record<string, string | number | undefined>;
  const str = (k: string) => (cur[k] === undefined ? undefined : String(cur[k]));

  // Created from something else: only a re-creation could change that.
  const from = parseCreatedFrom(str('description'));
  const wantFrom = g.kind === 'lxc' ? g.ostemplate : `template ${g.cloneFrom}`;
  if (from && from !== wantFrom) refuse(g.kind === 'lxc' ? 'ostemplate' : 'cloneFrom', `the guest was created from ${from}, the inventory says ${wantFrom}; that takes re-creating the guest`);

  const want = managedKeys(g);
  for (const [key, wv] of Object.entries(want)) {
    const hv = str(key);
    let changes: Change[];
    switch (key) {
      case 'net0':
        changes = compareProp(key, String(wv), hv, undefined, { firewall: '0' }, { hwaddr: upper });
        break;
      case 'ipconfig0':
        changes = compareProp(key, String(wv), hv, undefined, {});
        break;
      case 'features':
        changes = compareProp(key, String(wv), hv, undefined, { nesting: '0', keyctl: '0', fuse: '0' });
        break;
      case 'startup': {
        const a = parseStartup(String(wv));
        const b = parseStartup(hv ?? '');
        changes = (['order', 'up', 'down'] as const)
          .filter((k) => a[k] !== undefined && a[k] !== b[k])
          .map((k) => ({ key, sub: k, from: show(b[k]), to: String(a[k]) }));
        break;
      }
      case 'tags':
        changes = parseTags(String(wv)).join(';') === parseTags(hv).join(';') ? [] : [{ key, from: show(parseTags(hv).join(';')), to: parseTags(String(wv)).join(';') }];
        break;
      case 'nameserver':
        changes = parseList(String(wv)).join(' ') === parseList(hv).join(' ') ? [] : [{ key, from: show(hv), to: String(wv) }];
        break;
      case 'sshkeys': {
        const a = parseSshKeys(String(wv));
        const b = parseSshKeys(hv);
        changes = a.join('\n') === b.join('\n') ? [] : [{ key, from: `${b.length} key(s)`, to: `${a.length} key(s)` }];
        break;
      }
      case 'searchdomain':
      case 'hostname':
      case 'name':
        changes = lower(String(wv)) === lower(hv ?? '') ? [] : [{ key, from: show(hv), to: String(wv) }];
        break;
      case 'onboot':
      case 'agent': {
        // agent is a property string whose default key is `enabled`.
        const h = key === 'agent' ? bool(parsePropString(hv ?? '0', 'enabled').enabled) ?? false : bool(hv) ?? false;
        changes = h === (wv === 1) ? [] : [{ key, from: h ? '1' : '0', to: String(wv) }];
        break;
      }
      default: {
        // Integers (cores, memory, swap) and plain strings (ciuser).
        const defaults: Record<string, string> = { memory: '512', swap: '512' };
        const h = hv ?? defaults[key];
        changes = h !== undefined && String(h) === String(wv) ? [] : [{ key, from: show(h), to: String(wv) }];
      }
    }
    if (changes.length) {
      // A property string is written whole, but only the declared sub-keys are phoenix's: keep the rest as they are.
      plan.put[key] = key === 'net0' || key === 'ipconfig0' || key === 'features' ? mergeProp(String(wv), hv) : wv;
      plan.changes.push(...changes);
    }
  }

  if (g.kind === 'lxc') {
    const u = bool(cur.unprivileged) ?? false;
    if (u !== g.unprivileged) refuse('unprivileged', `the container is ${u ? 'unprivileged' : 'privileged'}, the inventory says ${g.unprivileged ? 'unprivileged' : 'privileged'}; Proxmox can only change that by re-creating the container`);
    const rootfs = str('rootfs');
    if (!rootfs) refuse('rootfs', 'the container has no rootfs in its config');
    else {
      const r = parsePropString(rootfs, 'volume');
      const storage = r.volume.split(':')[0];
      if (storage !== g.rootfs.storage)
        refuse('rootfs.storage', `the root disk is on storage "${storage}", the inventory says "${g.rootfs.storage}"; moving it is not something phoenix does (pct move-volume by hand)`);
      diskSize(r.size, 'rootfs', g.rootfs.sizeGb);
    }
  } else {
    const disk = str(g.disk.key);
    if (!disk) refuse(`disk.key`, `the VM has no disk ${g.disk.key}`);
    else diskSize(parsePropString(disk, 'volume').size, g.disk.key, g.disk.sizeGb);
  }

  function diskSize(size: string | undefined, disk: string, want: number) {
    const have = size ? sizeGb(size) : 0;
    if (want < have) refuse(`${disk}.size`, `the disk is ${fmtGb(have)}, the inventory says ${want}G; disks are never shrunk`);
    else if (want > have) {
      plan.resize.push({ disk, fromGb: have, toGb: want });
      plan.changes.push({ key: disk, sub: 'size', from: fmtGb(have), to: `${want}G` });
    }
  }
  if (plan.refusals.length) {
    plan.put = {};
    plan.resize = [];
  }
  return plan;
}

const fmtGb = (n: number) => `${Math.round(n * 100) / 100}G`;

/** The declared sub-keys over the current ones (e.g. net0's hwaddr and type are kept). */
export function mergeProp(want: string, have: string | undefined): string {
  if (!have) return want;
  const h = parsePropString(have);
  const w = parsePropString(want);
  return formatPropString({ ...h, ...w });
}

/** The plan as --diff shows it: `memory: 1024 → 2048`, `net0.ip: a → b`, `create lxc 104 from …`. */
export function planLines(p: GuestPlan): string[] {
  if (p.create) return [p.create.summary];
  return [...p.changes.map((c) => `${c.key}${c.sub ? `.${c.sub}` : ''}: ${c.from} → ${c.to}`)];
}
