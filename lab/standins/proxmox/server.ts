// proxmox-standin: a STAND-IN for the Proxmox VE API, for the phoenix lab. NOT Proxmox.
// It serves the endpoints phoenix's proxmox role uses (roles/proxmox/api.ts), with the response
// shapes of Proxmox's schema, over TLS with its own CA, backed by the lab's real guests
// (containers on the lab's dockerd):
//   - creating an LXC or cloning a VM registers it; its first start runs a new guest container
//     (lab/base or lab/vm) on the phoenix-lab network at the declared address;
//   - memory and cores apply live (docker update); start/stop/reboot/status map to the container;
//   - every call Proxmox answers with a UPID gets one and finishes asynchronously;
//   - the digest is the sha1 of the stored config; a PUT with another digest is refused;
//   - every request is logged (method, path, parameter names; never the token) to requests.log.
// What it does not do: docs/proxmox.md ("The lab's stand-in").
//
//   node --import=tsx lab/standins/proxmox/server.ts   (lab/up.sh starts it; env below)
import { createServer } from 'node:https';
import { get as httpGet } from 'node:http';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const STATE = process.env.PVE_STANDIN_STATE ?? '/var/lib/phoenix-lab/proxmox';
const SOCK = process.env.PVE_STANDIN_DOCKER ?? 'unix:///run/phoenix-lab/docker.sock';
const LISTEN = process.env.PVE_STANDIN_LISTEN ?? '127.0.0.1:8006';
const NODE = process.env.PVE_STANDIN_NODE ?? 'phoenix-lab';
const TOKEN_ID = process.env.PVE_STANDIN_TOKEN_ID ?? 'phoenix@pve!lab';
const TOKEN_FILE = process.env.PVE_STANDIN_TOKEN_FILE ?? '/var/lib/phoenix-lab/secrets/proxmox-token';
const NETWORK = 'phoenix-lab';
/** Storages the stand-in knows; any other is "does not exist" (a failing task). */
const STORAGES = new Set(['local', 'local-lvm']);
/** Templates: the LXC template volumes and what lab image they stand for. */
const OSTEMPLATES: Record<string, string> = {
  'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst': 'lab/base',
};
const CONFIGS = join(STATE, 'configs');
const LOG = join(STATE, 'requests.log');

interface Guest {
  vmid: number;
  kind: 'lxc' | 'qemu';
  /** The lab container backing it (created at first start). */
  container: string;
  image: string;
  config: Record<string, string>;
  /** Keys to install at first start (ssh-public-keys / sshkeys). */
  firstBootKeys?: { user: string; keys: string };
  /** A VM's cloud-init (user and keys) ran at its first start. */
  cloudInitDone?: boolean;
  /** Changes to a running guest that wait for its next start (Proxmox's [pending] section). */
  pending?: Record<string, string>;
}

/**
 * Keys a running guest takes only at its next start (the rest apply at once): a container's
 * features; a VM's cloud-init settings (Proxmox regenerates the cloud-init drive at start).
 */
const PENDING_KEYS: Record<Guest['kind'], string[]> = {
  lxc: ['features'],
  qemu: ['ipconfig0', 'ciuser', 'sshkeys', 'nameserver', 'searchdomain', 'agent'],
};
const digestOfGuest = (g: Guest) => digestOf({ ...g.config, ...Object.fromEntries(Object.entries(g.pending ?? {}).map(([k, v]) => [`[pending]${k}`, v])) });
/** A start applies what was pending. */
function applyPending(g: Guest, log: (l: string) => void) {
  if (!g.pending || !Object.keys(g.pending).length) return;
  Object.assign(g.config, g.pending);
  log(`applied pending changes: ${Object.keys(g.pending).join(', ')}`);
  delete g.pending;
  save(g);
}

const docker = (...args: string[]) => run('/usr/bin/docker', ['-H', SOCK, ...args], { env: { ...process.env, DOCKER_CONFIG: '/var/lib/phoenix-lab/cli' }, timeout: 120_000 });

function load(vmid: number): Guest | undefined {
  const f = join(CONFIGS, `${vmid}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Guest) : undefined;
}
function save(g: Guest) {
  mkdirSync(CONFIGS, { recursive: true });
  const f = join(CONFIGS, `${g.vmid}.json`);
  writeFileSync(`${f}.tmp`, JSON.stringify(g, null, 1));
  renameSync(`${f}.tmp`, f);
}
const all = (): Guest[] =>
  existsSync(CONFIGS) ? readdirSync(CONFIGS).filter((f) => /^\d+\.json$/.test(f)).map((f) => load(Number(f.slice(0, -5)))!) : [];
const digestOf = (c: Record<string, string>) =>
  createHash('sha1').update(JSON.stringify(Object.keys(c).sort().map((k) => [k, c[k]]))).digest('hex');

// ------------------------------------------------------------------ tasks (UPIDs)
interface Task { upid: string; status: 'running' | 'stopped'; exitstatus?: string; log: string[]; starttime: number; type: string; id: string }
const tasks = new Map<string, Task>();
let pidCounter = 0x1000;

/** Starts `work` asynchronously; the UPID is returned at once, as Proxmox does. */
function startTask(type: string, id: string, work: (log: (l: string) => void) => Promise<void>): string {
  const pid = (pidCounter++).toString(16).toUpperCase().padStart(8, '0');
  const now = Math.floor(Date.now() / 1000);
  const upid = `UPID:${NODE}:${pid}:${(now * 100).toString(16).toUpperCase().padStart(8, '0')}:${now.toString(16).toUpperCase().padStart(8, '0')}:${type}:${id}:${TOKEN_ID}:`;
  const t: Task = { upid, status: 'running', log: [], starttime: now, type, id };
  tasks.set(upid, t);
  setTimeout(() => {
    work((l) => t.log.push(l))
      .then(() => {
        t.log.push('TASK OK');
        t.exitstatus = 'OK';
      })
      .catch((e: Error) => {
        const msg = e.message.split('\n')[0];
        t.log.push(`TASK ERROR: ${msg}`);
        t.exitstatus = msg;
      })
      .finally(() => (t.status = 'stopped'));
  }, 150);
  return upid;
}

// ------------------------------------------------------------------ guests
const parseProp = (s: string | undefined, def?: string) => {
  const o: Record<string, string> = {};
  for (const p of String(s ?? '').split(',').filter(Boolean)) {
    const i = p.indexOf('=');
    if (i < 0 && def) o[def] = p;
    else o[p.slice(0, i)] = p.slice(i + 1);
  }
  return o;
};

async function containerState(g: Guest): Promise<'running' | 'stopped'> {
  try {
    const { stdout } = await docker('inspect', '-f', '{{.State.Running}}', g.container);
    return stdout.trim() === 'true' ? 'running' : 'stopped';
  } catch {
    return 'stopped';
  }
}

/**
 * Every container's state in one Engine API call on the lab's docker socket (/containers/json),
 * for /cluster/resources: one `docker inspect` per guest cost ~0.1 s per listing, a real
 * Proxmox answers it from memory. Undefined when the socket is not a unix one (then per guest).
 */
function containerStates(): Promise<Map<string, 'running' | 'stopped'> | undefined> {
  if (!SOCK.startsWith('unix://')) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const q = httpGet({ socketPath: SOCK.slice('unix://'.length), path: '/containers/json?all=1', timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) return resolve(undefined);
          const list = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Names?: string[]; State?: string }[];
          const m = new Map<string, 'running' | 'stopped'>();
          for (const c of list) for (const n of c.Names ?? []) m.set(n.replace(/^\//, ''), /^(running|paused|restarting)$/.test(c.State ?? '') ? 'running' : 'stopped');
          resolve(m);
        } catch {
          resolve(undefined);
        }
      });
    });
    q.on('error', () => resolve(undefined));
    q.on('timeout', () => q.destroy());
  });
}

function ipOf(g: Guest): string | undefined {
  const ip = g.kind === 'lxc' ? parseProp(g.config.net0).ip : parseProp(g.config.ipconfig0).ip;
  return ip && ip !== 'dhcp' ? ip.split('/')[0] : undefined;
}

const mem = (g: Guest) => Number(parseProp(g.config.memory, 'current').current ?? 512);

async function applyLimits(g: Guest, log: (l: string) => void) {
  const m = mem(g);
  const swap = g.kind === 'lxc' ? Number(g.config.swap ?? 512) : 0;
  const args = ['update', '--memory', `${m}m`, '--memory-swap', `${m + swap}m`];
  if (g.config.cores) args.push('--cpus', String(Number(g.config.cores)));
  await docker(...args, g.container);
  log(`limits applied to ${g.container}: memory ${m} MiB, swap ${swap} MiB, cores ${g.config.cores ?? 'all'}`);
}

async function startGuest(g: Guest, log: (l: string) => void) {
  const exists = await docker('inspect', '-f', '{{.Id}}', g.container).then(() => true, () => false);
  if (!exists) {
    const ip = ipOf(g);
    if (!ip) throw new Error(`no static IPv4 address in ${g.kind === 'lxc' ? 'net0' : 'ipconfig0'}`);
    const extra: string[] = [];
    if (g.image === 'lab/vm') {
      await docker('volume', 'create', '--label', 'phoenix-lab=volume', `phoenix-lab-${g.container}-docker`);
      extra.push('-v', `phoenix-lab-${g.container}-docker:/var/lib/docker`);
    }
    const hostname = g.kind === 'lxc' ? g.config.hostname : g.config.name;
    await docker('run', '-d', '--name', g.container, '--hostname', hostname ?? g.container, '--label', 'phoenix-lab=guest', '--label', `phoenix.lab.ip=${ip}`, '--label', `phoenix.pve.vmid=${g.vmid}`,
      '--network', NETWORK, '--ip', ip, '--privileged', '--tmpfs', '/run', '--tmpfs', '/run/lock', '--stop-signal', 'SIGRTMIN+3', '-e', 'container=docker', ...extra, g.image, '/sbin/init');
    log(`guest container ${g.container} (${g.image}) started at ${ip}`);
  } else {
    await docker('start', g.container);
    log(`guest container ${g.container} started`);
  }
  await applyLimits(g, log);
  if (g.kind === 'qemu' && !g.cloudInitDone && g.config.ciuser && g.config.sshkeys) {
    // cloud-init, as far as the stand-in goes: ciuser and its sshkeys (URL-encoded in the config).
    g.firstBootKeys = { user: g.config.ciuser, keys: decodeURIComponent(g.config.sshkeys) };
    g.cloudInitDone = true;
    log(`cloud-init: user ${g.config.ciuser}`);
  }
  if (g.firstBootKeys) {
    const { user, keys } = g.firstBootKeys;
    const home = user === 'root' ? '/root' : `/home/${user}`;
    // Like cloud-init / pct create: the keys into the user's authorized_keys (the user made if missing).
    const script = `set -e; id ${user} >/dev/null 2>&1 || useradd -m -s /bin/bash ${user}; mkdir -p ${home}/.ssh; printf '%s\\n' "$1" >> ${home}/.ssh/authorized_keys; chmod 700 ${home}/.ssh; chmod 600 ${home}/.ssh/authorized_keys; chown -R ${user}: ${home}/.ssh`;
    await docker('exec', g.container, 'sh', '-c', script, 'sh', keys);
    log(`ssh keys installed for ${user}`);
    delete g.firstBootKeys;
    save(g);
  }
}

// ------------------------------------------------------------------ HTTP
class HttpError extends Error {
  readonly status: number;
  readonly errors?: Record<string, string>;
  constructor(status: number, message: string, errors?: Record<string, string>) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

function logRequest(method: string, path: string, params: Record<string, string>, status: number) {
  appendFileSync(LOG, `${JSON.stringify({ t: new Date().toISOString(), method, path, params: Object.keys(params).sort(), status })}\n`);
}

type Handler = (m: RegExpMatchArray, p: Record<string, string>) => Promise<unknown> | unknown;
const routes: [string, RegExp, Handler][] = [];
const route = (method: string, re: RegExp, h: Handler) => routes.push([method, re, h]);
const vmidOf = (s: string) => Number(s);
const kindParam = (s: string) => (s === 'lxc' ? 'lxc' : 'qemu') as Guest['kind'];

function mustGet(kind: Guest['kind'], vmid: number): Guest {
  const g = load(vmid);
  if (!g || g.kind !== kind) throw new HttpError(500, `Configuration file 'nodes/${NODE}/${kind === 'lxc' ? 'lxc' : 'qemu-server'}/${vmid}.conf' does not exist`);
  return g;
}

route('GET', /^\/version$/, () => ({ version: '9.1-standin', release: '9.1', repoid: 'phoenix-lab-standin' }));
route('GET', /^\/cluster\/resources$/, async () => {
  const states = await containerStates();
  return Promise.all(
    all().map(async (g) => ({
      id: `${g.kind}/${g.vmid}`, type: g.kind, vmid: g.vmid, node: NODE, name: g.config.hostname ?? g.config.name,
      status: g.config.template === '1' ? 'stopped' : states ? (states.get(g.container) ?? 'stopped') : await containerState(g), template: g.config.template === '1' ? 1 : 0, maxmem: mem(g) * 1024 * 1024,
    })),
  );
});
route('GET', /^\/nodes\/[^/]+\/(lxc|qemu)\/(\d+)\/config$/, (m) => {
  const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
  return { ...g.config, digest: digestOfGuest(g) };
});
route('GET', /^\/nodes\/[^/]+\/(lxc|qemu)\/(\d+)\/pending$/, (m) => {
  const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
  const keys = [...new Set([...Object.keys(g.config), ...Object.keys(g.pending ?? {})])].sort();
  return keys.map((key) => ({ key, ...(g.config[key] !== undefined ? { value: g.config[key] } : {}), ...(g.pending?.[key] !== undefined ? { pending: g.pending[key] } : {}) }));
});
route('GET', /^\/nodes\/[^/]+\/(lxc|qemu)\/(\d+)\/status\/current$/, async (m) => {
  const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
  return { vmid: g.vmid, status: await containerState(g), name: g.config.hostname ?? g.config.name, maxmem: mem(g) * 1024 * 1024, cpus: Number(g.config.cores ?? 1) };
});
route('PUT', /^\/nodes\/[^/]+\/(lxc|qemu)\/(\d+)\/config$/, async (m, p) => {
  const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
  if (p.digest !== undefined && p.digest !== digestOfGuest(g)) throw new HttpError(500, 'detected modified configuration - file changed by other user? Try again.');
  const { digest: _d, delete: del, ...keys } = p;
  const running = (await containerState(g)) === 'running';
  for (const [k, v] of Object.entries(keys)) {
    if (['rootfs', 'unprivileged', 'ostemplate'].includes(k)) throw new HttpError(400, 'Parameter verification failed.', { [k]: 'property is not allowed here / read only' });
    if (running && PENDING_KEYS[g.kind].includes(k)) {
      g.pending ??= {};
      if (g.config[k] === v) delete g.pending[k];
      else g.pending[k] = v;
    } else g.config[k] = v;
  }
  for (const k of String(del ?? '').split(/[,; ]+/).filter(Boolean)) delete g.config[k];
  save(g);
  if (running && ('memory' in keys || 'cores' in keys || 'swap' in keys)) await applyLimits(g, () => undefined);
  return null;
});
route('PUT', /^\/nodes\/[^/]+\/(lxc|qemu)\/(\d+)\/resize$/, (m, p) => {
  const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
  if (p.digest !== undefined && p.digest !== digestOfGuest(g)) throw new HttpError(500, 'detected modified configuration - file changed by other user? Try again.');
  const disk = p.disk;
  if (!g.config[disk]) throw new HttpError(400, 'Parameter verification failed.', { disk: `no such disk '${disk}'` });
  return startTask(g.kind === 'lxc' ? 'resize' : 'resize', String(g.vmid), async (log) => {
    const cur = parseProp(g.config[disk], 'volume');
    const toG = Number(String(p.size).replace(/^\+/, '').replace(/G$/i, ''));
    const fromG = Number(String(cur.size ?? '0').replace(/G$/i, ''));
    const want = String(p.size).startsWith('+') ? fromG + toG : toG;
    if (want < fromG) throw new Error(`unable to shrink disk size`);
    const fresh = load(g.vmid)!;
    fresh.config[disk] = Object.entries({ ...cur, size: `${want}G` }).map(([k, v]) => (k === 'volume' ? v : `${k}=${v}`)).join(',');
    save(fresh);
    log(`resized ${disk} to ${want}G (the stand-in records the size; the container's filesystem is not resized)`);
  });
});
route('POST', /^\/nodes\/[^/]+\/lxc$/, (_m, p) => {
  const vmid = Number(p.vmid);
  if (load(vmid)) throw new HttpError(500, `CT ${vmid} already exists on node '${NODE}'`);
  if (!p.ostemplate) throw new HttpError(400, 'Parameter verification failed.', { ostemplate: 'property is missing and it is not optional' });
  return startTask('vzcreate', String(vmid), async (log) => {
    const rootfs = parseProp(p.rootfs ?? 'local:4', 'volume');
    const [storage, size] = rootfs.volume.split(':');
    log(`creating container ${vmid} from ${p.ostemplate}`);
    if (!STORAGES.has(storage)) throw new Error(`storage '${storage}' does not exist`);
    const image = OSTEMPLATES[p.ostemplate];
    if (!image) throw new Error(`volume '${p.ostemplate}' does not exist`);
    if (load(vmid)) throw new Error(`CT ${vmid} already exists`);
    const { vmid: _v, ostemplate: _o, rootfs: _r, 'ssh-public-keys': keys, start: _s, password: _p, storage: _st, ...rest } = p;
    const config: Record<string, string> = { arch: 'amd64', ostype: 'debian', ...rest, rootfs: `${storage}:vm-${vmid}-disk-0,size=${size}G` };
    if (p.unprivileged === undefined) config.unprivileged = '1';
    const net = parseProp(config.net0);
    if (config.net0 && !net.hwaddr) config.net0 = `${config.net0},hwaddr=BC:24:11:${[1, 2, 3].map(() => Math.floor(Math.random() * 256).toString(16).padStart(2, '0').toUpperCase()).join(':')},type=veth`;
    save({ vmid, kind: 'lxc', container: `pve-ct-${vmid}`, image, config, firstBootKeys: keys ? { user: 'root', keys } : undefined });
    log(`extracting archive '${p.ostemplate}' (stand-in: image ${image})`);
  });
});
route('POST', /^\/nodes\/[^/]+\/qemu\/(\d+)\/clone$/, (m, p) => {
  const tpl = load(Number(m[1]));
  if (!tpl || tpl.kind !== 'qemu') throw new HttpError(500, `Configuration file 'nodes/${NODE}/qemu-server/${m[1]}.conf' does not exist`);
  const vmid = Number(p.newid);
  if (load(vmid)) throw new HttpError(500, `unable to create VM ${vmid}: config file already exists`);
  return startTask('qmclone', String(tpl.vmid), async (log) => {
    if (tpl.config.template !== '1') throw new Error(`VM ${tpl.vmid} is not a template`);
    const storage = p.storage ?? parseProp(tpl.config.scsi0, 'volume').volume.split(':')[0];
    log(`create full clone of drive scsi0 (${tpl.config.scsi0})`);
    if (!STORAGES.has(storage)) throw new Error(`storage '${storage}' does not exist`);
    const { template: _t, ...base } = tpl.config;
    const size = parseProp(tpl.config.scsi0, 'volume').size ?? '4G';
    const config: Record<string, string> = { ...base, name: p.name ?? `Copy-of-VM-${tpl.config.name}`, scsi0: `${storage}:vm-${vmid}-disk-0,size=${size}` };
    if (p.description !== undefined) config.description = p.description;
    save({ vmid, kind: 'qemu', container: `pve-vm-${vmid}`, image: tpl.image, config });
  });
});
for (const [action, fn] of [
  ['start', async (g: Guest, log: (l: string) => void) => {
    applyPending(g, log);
    await startGuest(g, log);
  }],
  ['stop', async (g: Guest) => void (await docker('stop', '-t', '5', g.container))],
  ['shutdown', async (g: Guest) => void (await docker('stop', '-t', '30', g.container))],
  ['reboot', async (g: Guest, log: (l: string) => void) => {
    applyPending(g, log);
    await docker('restart', '-t', '10', g.container);
    log(`guest container ${g.container} restarted`);
  }],
] as const) {
  route('POST', new RegExp(`^/nodes/[^/]+/(lxc|qemu)/(\\d+)/status/${action}$`), (m) => {
    const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
    if (g.config.template === '1') throw new HttpError(500, 'you can\'t start a vm if it\'s a template');
    return startTask(`${g.kind === 'lxc' ? 'vz' : 'qm'}${action}`, String(g.vmid), async (log) => fn(load(g.vmid)!, log));
  });
}
// Not used by phoenix: removing guests (the e2e test cleans up with it; phoenix never destroys).
route('DELETE', /^\/nodes\/[^/]+\/(lxc|qemu)\/(\d+)$/, (m) => {
  const g = mustGet(kindParam(m[1]), vmidOf(m[2]));
  return startTask(g.kind === 'lxc' ? 'vzdestroy' : 'qmdestroy', String(g.vmid), async (log) => {
    await docker('rm', '-f', g.container).catch(() => undefined);
    await docker('volume', 'rm', '-f', `phoenix-lab-${g.container}-docker`).catch(() => undefined);
    rmSync(join(CONFIGS, `${g.vmid}.json`), { force: true });
    log(`destroyed ${g.vmid}`);
  });
});
route('GET', /^\/nodes\/[^/]+\/tasks\/([^/]+)\/status$/, (m) => {
  const t = tasks.get(decodeURIComponent(m[1]));
  if (!t) throw new HttpError(500, `no such task`);
  const [, node, pid, pstart] = t.upid.split(':');
  return { upid: t.upid, node, pid: parseInt(pid, 16), pstart: parseInt(pstart, 16), starttime: t.starttime, type: t.type, id: t.id, user: TOKEN_ID, status: t.status, ...(t.status === 'stopped' ? { exitstatus: t.exitstatus } : {}) };
});
route('GET', /^\/nodes\/[^/]+\/tasks\/([^/]+)\/log$/, (m) => {
  const t = tasks.get(decodeURIComponent(m[1]));
  if (!t) throw new HttpError(500, `no such task`);
  return t.log.map((t, i) => ({ n: i + 1, t }));
});

function readToken(): string {
  return readFileSync(TOKEN_FILE, 'utf8').trim();
}

/** The server's key and certificate (made by lab/standins/proxmox/start.sh, signed by the stand-in's own CA). */
function readTls(): { key: Buffer; cert: Buffer } {
  const dir = join(STATE, 'tls');
  return { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) };
}

async function main() {
  mkdirSync(CONFIGS, { recursive: true });
  const tls = readTls();
  const token = readToken();
  const server = createServer(tls, (q, res) => {
    const chunks: Buffer[] = [];
    q.on('data', (c: Buffer) => chunks.push(c));
    q.on('end', async () => {
      const url = new URL(q.url ?? '/', 'https://x');
      const method = q.method ?? 'GET';
      let path = url.pathname;
      const params: Record<string, string> = Object.fromEntries(url.searchParams);
      const body = Buffer.concat(chunks).toString('utf8');
      if (body) {
        if ((q.headers['content-type'] ?? '').includes('json')) Object.assign(params, Object.fromEntries(Object.entries(JSON.parse(body) as Record<string, unknown>).map(([k, v]) => [k, String(v)])));
        else Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
      }
      const send = (status: number, payload: unknown) => {
        logRequest(method, path, params, status);
        res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8' });
        res.end(JSON.stringify(payload));
      };
      if (!path.startsWith('/api2/json/')) return send(404, { data: null, message: 'not found' });
      path = path.slice('/api2/json'.length);
      if (q.headers.authorization !== `PVEAPIToken=${TOKEN_ID}=${token}`) return send(401, { data: null, message: 'authentication failure' });
      for (const [m, re, h] of routes) {
        const hit = method === m ? path.match(re) : null;
        if (!hit) continue;
        try {
          return send(200, { data: (await h(hit, params)) ?? null });
        } catch (e) {
          if (e instanceof HttpError) return send(e.status, { data: null, message: `${e.message}\n`, ...(e.errors ? { errors: e.errors } : {}) });
          return send(500, { data: null, message: `${(e as Error).message}\n` });
        }
      }
      send(501, { data: null, message: `Method '${method} ${path}' not implemented` });
    });
  });
  const [host, port] = LISTEN.split(':');
  server.listen(Number(port), host, () => process.stdout.write(`proxmox-standin listening on https://${LISTEN} (node ${NODE}, state ${STATE})\n`));
}

await main();
