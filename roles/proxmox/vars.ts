// The proxmox role's typed vars: the Proxmox VE API the role talks to (on the `proxmox` host)
// and each guest's Proxmox shape (on the guest's own host: lxc101 … vm1002). Field names follow
// the Proxmox API's own keys where there is one (memory, cores, swap, onboot, ipconfig0 …), in
// structured form: the role turns them into property strings (net0, rootfs, startup …).
// Defaults follow docs/ARCHITECTURE.md.
import type { SecretRef } from '../../stacks/types.ts';
import { Secret } from '../../runner/secret.ts';

/** The Proxmox VE API, as the `proxmox` host's vars declare it. */
export interface ProxmoxApi {
  /** Base URL, e.g. https://10.0.0.13:8006 (the role appends /api2/json). */
  url: string;
  /** The node name (`pvecm nodes` / the host's hostname), e.g. "pve". */
  node: string;
  /** USER@REALM!TOKENID, e.g. "phoenix@pve!site". */
  tokenId: string;
  /** The token's secret (a UUID): a Secret, an env var or a 0600 file. */
  tokenSecret: SecretRef;
  /** PEM file on the control machine that signs the API's certificate (Proxmox's pve-root-ca.pem). */
  caFile: string;
  /** Seconds to wait for one Proxmox task (UPID) before failing (default 300). */
  taskTimeout?: number;
  /**
   * Commands on the proxmox host (over its verified SSH connection) that run a command inside a
   * guest, to learn a new guest's SSH host key without trust-on-first-use. Defaults: `pct`
   * (`pct exec <vmid> -- …`) and `qm` (`qm guest exec <vmid> -- …`, through the guest agent).
   */
  pct?: string;
  qm?: string;
}

export interface Startup {
  /** Start order: lower starts first (Proxmox `order=`). */
  order: number;
  /** Seconds to wait after this guest started before the next (Proxmox `up=`). */
  up?: number;
  down?: number;
}

/** An LXC container (Proxmox `pct`). Its vmid is the host's `guestId`. */
export interface LxcGuest {
  kind: 'lxc';
  hostname: string;
  /** The template volume, e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst. Only used to create. */
  ostemplate: string;
  cores: number;
  /** MiB. */
  memory: number;
  /** MiB. */
  swap: number;
  /** The root disk: storage id and size in GiB (grown, never shrunk; the storage never changes). */
  rootfs: { storage: string; sizeGb: number };
  net0: { name: string; bridge: string; /** address/prefix, or "dhcp" */ ip: string; gw?: string; hwaddr?: string; firewall?: boolean };
  nameserver?: string;
  searchdomain?: string;
  /** Fixed at creation: Proxmox cannot change it without re-creating the container. */
  unprivileged: boolean;
  features: { nesting?: boolean; keyctl?: boolean; fuse?: boolean };
  onboot: boolean;
  startup: Startup;
  tags: string[];
  /** Public keys installed for root at creation (phoenix's login key among them). */
  sshPublicKeys: string[];
  /** Restart the guest when a change is pending until restart (default false: report only). */
  allowRestart?: boolean;
}

/** A VM: a full clone of a cloud-init template, configured after the clone. Its vmid is the host's `guestId`. */
export interface VmGuest {
  kind: 'vm';
  name: string;
  /** vmid of the cloud-init template to clone from. Only used to create. */
  cloneFrom: number;
  /** Storage for the full clone (Proxmox `storage` of clone); the template's storage when unset. */
  storage?: string;
  cores: number;
  /** MiB. */
  memory: number;
  /** The boot disk (key as in the template, e.g. scsi0) and its size in GiB (grown, never shrunk). */
  disk: { key: string; sizeGb: number };
  ipconfig0: { ip: string; gw?: string };
  nameserver?: string;
  searchdomain?: string;
  ciuser: string;
  /** Public keys cloud-init installs for `ciuser` (phoenix's login key among them). */
  sshkeys: string[];
  /** The QEMU guest agent is enabled (needed to learn the host key without trust-on-first-use). */
  agent: boolean;
  onboot: boolean;
  startup: Startup;
  tags: string[];
  allowRestart?: boolean;
}

export type GuestDecl = LxcGuest | VmGuest;

export interface ProxmoxVars {
  /** On the `proxmox` host: how to reach its API. */
  proxmox?: ProxmoxApi;
  /** On a guest host: its Proxmox shape (vmid = guestId). */
  guest?: GuestDecl;
}

/** ARCHITECTURE.md's guests: name, address, role. */
export interface GuestDefaultsInput {
  domain: string;
  gateway: string;
  bridge: string;
  /** Prefix length of the guests' network. */
  prefix: number;
  nameserver: string;
  sshPublicKeys: string[];
}

export const DEBIAN_TEMPLATE = 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst';
/** The cloud-init template VM the swarm VMs are cloned from. */
export const VM_TEMPLATE = 9000;

export function lxcDefaults(o: GuestDefaultsInput, hostname: string, ip: string, startup: Startup, extra: Partial<LxcGuest> = {}): LxcGuest {
  return {
    kind: 'lxc',
    hostname,
    ostemplate: DEBIAN_TEMPLATE,
    cores: 1,
    memory: 1024,
    swap: 512,
    rootfs: { storage: 'local-lvm', sizeGb: 8 },
    net0: { name: 'eth0', bridge: o.bridge, ip: `${ip}/${o.prefix}`, gw: o.gateway },
    nameserver: o.nameserver,
    searchdomain: o.domain,
    unprivileged: true,
    features: { nesting: true },
    onboot: true,
    startup,
    tags: ['phoenix'],
    sshPublicKeys: o.sshPublicKeys,
    ...extra,
  };
}

export function vmDefaults(o: GuestDefaultsInput, name: string, ip: string, startup: Startup, extra: Partial<VmGuest> = {}): VmGuest {
  return {
    kind: 'vm',
    name,
    cloneFrom: VM_TEMPLATE,
    cores: 2,
    memory: 4096,
    disk: { key: 'scsi0', sizeGb: 32 },
    ipconfig0: { ip: `${ip}/${o.prefix}`, gw: o.gateway },
    nameserver: o.nameserver,
    searchdomain: o.domain,
    ciuser: 'phoenix',
    sshkeys: o.sshPublicKeys,
    agent: true,
    onboot: true,
    startup,
    tags: ['phoenix', 'swarm'],
    ...extra,
  };
}

/** The five guests of docs/ARCHITECTURE.md, keyed by inventory host: LXC 103 (step-ca) boots first. */
export function guestDefaults(o: GuestDefaultsInput, ips: Record<'lxc103' | 'lxc101' | 'lxc102' | 'vm1001' | 'vm1002', string>): Record<string, GuestDecl> {
  return {
    lxc103: lxcDefaults(o, 'Step-CA', ips.lxc103, { order: 1, up: 10 }),
    lxc101: lxcDefaults(o, 'Nginx-Phoenix', ips.lxc101, { order: 3 }),
    lxc102: lxcDefaults(o, 'Traefik-Internal', ips.lxc102, { order: 2 }),
    vm1001: vmDefaults(o, 'Portainer', ips.vm1001, { order: 4, up: 30 }),
    vm1002: vmDefaults(o, 'drphoenix', ips.vm1002, { order: 5 }),
  };
}

// ------------------------------------------------------------------ validation
// Errors name the host and the field, like the inventory's own: host "lxc101": field "guest.memory": …

const HOSTNAME = /^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const STORAGE = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const BRIDGE = /^[-_.\w\d]+$/;
const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const CIDR4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const VOLID = /^[a-z][a-z0-9\-_.]*:.+$/i;
const SSHKEY = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9-@.]+) [A-Za-z0-9+/=]+( .*)?$/;

function ipv4ok(s: string, cidr: boolean): boolean {
  const m = (cidr ? CIDR4 : IPV4).exec(s);
  if (!m) return false;
  const octets = m.slice(1, 5).map(Number);
  return octets.every((n) => n <= 255) && (!cidr || Number(m[5]) <= 32);
}

export class GuestDeclError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid Proxmox declarations:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
    this.name = 'GuestDeclError';
  }
}

type Check = (ok: boolean, field: string, what: string) => void;

function checkStartup(s: unknown, f: string, c: Check) {
  if (!s || typeof s !== 'object') return c(false, f, 'must be { order, up?, down? }');
  const st = s as Startup;
  c(Number.isInteger(st.order) && st.order >= 0, `${f}.order`, 'must be an integer >= 0');
  if (st.up !== undefined) c(Number.isInteger(st.up) && st.up >= 0, `${f}.up`, 'must be an integer >= 0 (seconds)');
  if (st.down !== undefined) c(Number.isInteger(st.down) && st.down >= 0, `${f}.down`, 'must be an integer >= 0 (seconds)');
}

const int = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Problems of one guest declaration, each naming host and field. */
export function guestProblems(host: string, vmid: unknown, g: GuestDecl): string[] {
  const out: string[] = [];
  const c: Check = (ok, field, what) => {
    if (!ok) out.push(`host "${host}": field "${field}": ${what}`);
  };
  c(int(vmid, 100, 999999999), 'guestId', 'must be an integer 100 … 999999999 (the Proxmox vmid)');
  if (!g || typeof g !== 'object') return [...out, `host "${host}": field "guest": must be an LXC or VM declaration`];
  if (g.kind !== 'lxc' && g.kind !== 'vm') return [...out, `host "${host}": field "guest.kind": must be "lxc" or "vm"`];
  c(int(g.cores, 1, 8192), 'guest.cores', 'must be an integer 1 … 8192');
  c(int(g.memory, 16), 'guest.memory', 'must be an integer >= 16 (MiB)');
  c(typeof g.onboot === 'boolean', 'guest.onboot', 'must be true or false');
  checkStartup(g.startup, 'guest.startup', c);
  c(Array.isArray(g.tags) && g.tags.every((t) => typeof t === 'string' && TAG.test(t)), 'guest.tags', 'must be a list of tags (letters, digits, _ - + .)');
  if (g.nameserver !== undefined) c(typeof g.nameserver === 'string' && g.nameserver.split(/[ ,;]+/).every((a) => ipv4ok(a, false) || a.includes(':')), 'guest.nameserver', 'must be IP addresses');
  if (g.searchdomain !== undefined) c(typeof g.searchdomain === 'string' && /^[A-Za-z0-9.-]+$/.test(g.searchdomain), 'guest.searchdomain', 'must be a domain name');
  if (g.allowRestart !== undefined) c(typeof g.allowRestart === 'boolean', 'guest.allowRestart', 'must be true or false');
  if (g.kind === 'lxc') {
    c(typeof g.hostname === 'string' && HOSTNAME.test(g.hostname), 'guest.hostname', 'must be a DNS label (letters, digits, -)');
    c(typeof g.ostemplate === 'string' && VOLID.test(g.ostemplate), 'guest.ostemplate', 'must be a volume id like local:vztmpl/debian-12-standard_….tar.zst');
    c(int(g.swap, 0), 'guest.swap', 'must be an integer >= 0 (MiB)');
    c(!!g.rootfs && typeof g.rootfs.storage === 'string' && STORAGE.test(g.rootfs.storage), 'guest.rootfs.storage', 'must be a storage id, e.g. local-lvm');
    c(!!g.rootfs && int(g.rootfs.sizeGb, 1), 'guest.rootfs.sizeGb', 'must be an integer >= 1 (GiB)');
    const n = g.net0;
    c(!!n && typeof n.name === 'string' && /^[A-Za-z0-9_.-]{1,15}$/.test(n.name), 'guest.net0.name', 'must be an interface name, e.g. eth0');
    c(!!n && typeof n.bridge === 'string' && BRIDGE.test(n.bridge), 'guest.net0.bridge', 'must be a bridge name, e.g. vmbr0');
    c(!!n && (n.ip === 'dhcp' || ipv4ok(n.ip, true)), 'guest.net0.ip', 'must be address/prefix (e.g. 10.0.0.12/24) or "dhcp"');
    if (n?.gw !== undefined) c(ipv4ok(n.gw, false), 'guest.net0.gw', 'must be an IPv4 address');
    if (n?.hwaddr !== undefined) c(MAC.test(n.hwaddr), 'guest.net0.hwaddr', 'must be a MAC address like BC:24:11:00:00:01');
    c(typeof g.unprivileged === 'boolean', 'guest.unprivileged', 'must be true or false');
    c(!!g.features && typeof g.features === 'object' && Object.entries(g.features).every(([k, v]) => ['nesting', 'keyctl', 'fuse'].includes(k) && typeof v === 'boolean'), 'guest.features', 'may only set nesting, keyctl, fuse (true/false)');
    c(Array.isArray(g.sshPublicKeys) && g.sshPublicKeys.every((k) => typeof k === 'string' && SSHKEY.test(k.trim())), 'guest.sshPublicKeys', 'must be a list of OpenSSH public keys');
  } else {
    c(typeof g.name === 'string' && HOSTNAME.test(g.name), 'guest.name', 'must be a DNS label (letters, digits, -)');
    c(int(g.cloneFrom, 100, 999999999), 'guest.cloneFrom', 'must be the vmid of a template (100 … 999999999)');
    if (g.storage !== undefined) c(STORAGE.test(g.storage), 'guest.storage', 'must be a storage id, e.g. local-lvm');
    c(!!g.disk && /^(scsi|virtio|sata|ide)\d+$/.test(g.disk.key), 'guest.disk.key', 'must be a disk key like scsi0');
    c(!!g.disk && int(g.disk.sizeGb, 1), 'guest.disk.sizeGb', 'must be an integer >= 1 (GiB)');
    const ip = g.ipconfig0;
    c(!!ip && (ip.ip === 'dhcp' || ipv4ok(ip.ip, true)), 'guest.ipconfig0.ip', 'must be address/prefix (e.g. 10.0.0.111/24) or "dhcp"');
    if (ip?.gw !== undefined) c(ipv4ok(ip.gw, false), 'guest.ipconfig0.gw', 'must be an IPv4 address');
    c(typeof g.ciuser === 'string' && /^[a-z_][a-z0-9_-]*$/.test(g.ciuser), 'guest.ciuser', 'must be a user name');
    c(Array.isArray(g.sshkeys) && g.sshkeys.every((k) => typeof k === 'string' && SSHKEY.test(k.trim())), 'guest.sshkeys', 'must be a list of OpenSSH public keys');
    c(typeof g.agent === 'boolean', 'guest.agent', 'must be true or false');
  }
  return out;
}

export function apiProblems(host: string, a: ProxmoxApi | undefined): string[] {
  const out: string[] = [];
  const c: Check = (ok, field, what) => {
    if (!ok) out.push(`host "${host}": field "${field}": ${what}`);
  };
  if (!a || typeof a !== 'object') return [`host "${host}": field "proxmox": is required (the API: url, node, tokenId, tokenSecret, caFile)`];
  let url: URL | undefined;
  try {
    url = new URL(a.url);
  } catch {
    /* below */
  }
  c(!!url && url.protocol === 'https:', 'proxmox.url', 'must be an https:// URL (the API is only spoken over verified TLS)');
  c(typeof a.node === 'string' && /^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(a.node), 'proxmox.node', 'must be a node name');
  c(typeof a.tokenId === 'string' && /^[^@!\s]+@[^@!\s]+![A-Za-z][A-Za-z0-9._-]*$/.test(a.tokenId), 'proxmox.tokenId', 'must be USER@REALM!TOKENID, e.g. phoenix@pve!site');
  const s = a.tokenSecret as unknown;
  c(s instanceof Secret || (!!s && typeof s === 'object' && (typeof (s as { env?: unknown }).env === 'string' || typeof (s as { file?: unknown }).file === 'string')), 'proxmox.tokenSecret', 'must be a Secret, { env: NAME } or { file: PATH } (never a plain string)');
  c(typeof a.caFile === 'string' && a.caFile.length > 0, 'proxmox.caFile', 'must be the path of the PEM CA that signs the API certificate');
  if (a.taskTimeout !== undefined) c(int(a.taskTimeout, 1, 3600), 'proxmox.taskTimeout', 'must be seconds (1 … 3600)');
  return out;
}
