// The lab as an inventory: the Phoenix topology of ../inventory.ts with the lab's addresses,
// key and known_hosts, read from .lab/lab.json (written by `npm run lab:up`). Only sources,
// addresses and lab-only secrets differ here; the roles are the same as in production.
// Used as `npx phoenix site --inventory lab`.
import { readFileSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { InventoryError, secret, type Inventory, type HostSpec } from '../runner/index.ts';
import { DOMAIN, phoenix, phoenixVars, type GuestAddresses, type PhoenixVars, type PhoenixVarsInput } from '../inventory.ts';
import { guestDefaults, type GuestDecl, type ProxmoxApi } from '../roles/proxmox/vars.ts';

export const LAB_STATE = fileURLToPath(new URL('../.lab/lab.json', import.meta.url));
/** The lab's copy of the CA root, exported by site.ts (never a key). */
export const LAB_ROOT = fileURLToPath(new URL('../.lab/phoenix-root-ca.crt', import.meta.url));

export interface LabState {
  user: string;
  key: string;
  knownHosts: string;
  hosts: Record<string, { address: string; port: number }>;
  stepCa: { binary: string; sha256: string } | null;
  standins?: { images: string[] };
  /** The stand-in for the Traefik binary (lab/standins/traefik/), built by lab:up; null when its build failed. */
  traefikStandin?: { binary: string; sha256: string } | null;
}

/** A lab build's sha256 as its build script wrote it beside the binary (a rebuild between lab:up runs updates it), else lab.json's. */
function builtSha256(b: { binary: string; sha256: string }): string {
  try {
    return readFileSync(`${b.binary}.sha256`, 'utf8').trim();
  } catch {
    return b.sha256;
  }
}

export function readLabState(): LabState {
  if (!existsSync(LAB_STATE)) throw new InventoryError(`lab inventory: ${LAB_STATE} not found; run \`npm run lab:up\` first`);
  return JSON.parse(readFileSync(LAB_STATE, 'utf8')) as LabState;
}

/**
 * Where the lab's own random secrets live: beside the lab's guests (which belong to this machine,
 * not to one checkout), so a second clone's `lab:up` that reuses running guests also reuses the
 * passwords their keys and databases were made with. Root-only; `lab:down --purge` removes them.
 */
export const LAB_SECRETS = process.env.PHOENIX_LAB_SECRETS ?? '/var/lib/phoenix-lab/secrets';

/** The file of a lab-only secret (0600), made once on first use. */
export function labSecretFile(name: string): string {
  const f = `${LAB_SECRETS}/${name}`;
  if (!existsSync(f)) {
    mkdirSync(LAB_SECRETS, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(f, randomBytes(24).toString('base64url'), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return f;
}

/** A lab-only random secret, handed to the roles as a Secret. */
function labSecret(name: string, label = `lab ${name}`) {
  return secret(readFileSync(labSecretFile(name), 'utf8').trim(), label);
}

/** The lab CA's key password. */
const labKeyPassword = () => labSecret('stepca-key-password', 'lab step-ca key password');

// --- proxmox: the lab's Proxmox host is proxmox-standin (lab/standins/proxmox/, docs/proxmox.md) ---
export const PVE_STANDIN_STATE = '/var/lib/phoenix-lab/proxmox';
const STANDIN_BIN = fileURLToPath(new URL('./standins/proxmox/bin/', import.meta.url));

/** The stand-in's API: its own CA, the lab's token; pct/qm "exec" are docker exec on this machine. */
export function labProxmoxApi(): ProxmoxApi {
  return {
    url: 'https://127.0.0.1:8006',
    node: 'phoenix-lab',
    tokenId: 'phoenix@pve!lab',
    tokenSecret: { file: `${LAB_SECRETS}/proxmox-token` },
    caFile: `${PVE_STANDIN_STATE}/tls/ca.crt`,
    taskTimeout: 180,
    pct: `${STANDIN_BIN}pct`,
    qm: `${STANDIN_BIN}qm`,
  };
}

/** The lab's gateway and nameserver (the bridge's address on this machine). */
const LAB_GATEWAY = '192.168.201.1';

/** The production guest shapes with the lab's addresses, gateway and login key. */
export function labGuests(state: LabState, domain = DOMAIN): Record<string, GuestDecl> {
  const addr = (n: string) => state.hosts[n]?.address ?? '';
  let pub = '';
  try {
    pub = readFileSync(`${state.key}.pub`, 'utf8').trim();
  } catch {
    /* no key yet: the role refuses to create a guest without one */
  }
  return guestDefaults(
    { domain, gateway: LAB_GATEWAY, bridge: 'vmbr0', prefix: 24, nameserver: LAB_GATEWAY, sshPublicKeys: pub ? [pub] : [] },
    { lxc103: addr('lxc103'), lxc101: addr('lxc101'), lxc102: addr('lxc102'), vm1001: addr('vm1001'), vm1002: addr('vm1002') },
  );
}
// --- end proxmox ---

/**
 * The lab's inventory: production's hosts and groups with the lab's addresses, and its vars from
 * the same phoenixVars() as production, with the lab's guests, gateway and sources. `o` overrides
 * any input of phoenixVars() (e.g. a test's domain): every derived name follows it.
 */
export function labInventory(state: LabState = readLabState(), o: Partial<PhoenixVarsInput> = {}): Inventory<PhoenixVars> {
  const addr = (name: keyof GuestAddresses) => {
    const h = state.hosts[name];
    if (!h) throw new InventoryError(`lab inventory: ${LAB_STATE} has no host "${name}"`);
    return h.address;
  };
  const guests: GuestAddresses = { lxc103: addr('lxc103'), lxc101: addr('lxc101'), lxc102: addr('lxc102'), vm1001: addr('vm1001'), vm1002: addr('vm1002') };
  const domain = o.domain ?? DOMAIN;
  const hosts: Record<string, HostSpec<PhoenixVars>> = {};
  const pveGuests = labGuests(state, domain);
  for (const [name, spec] of Object.entries(phoenix.hosts)) {
    if (name === 'proxmox') {
      // The lab machine itself plays the Proxmox host: its API is proxmox-standin (local connection).
      hosts[name] = { address: 'localhost', connection: 'local', groups: [], vars: { ...spec.vars, proxmox: labProxmoxApi() } };
      continue;
    }
    const lab = state.hosts[name];
    if (!lab) throw new InventoryError(`lab inventory: ${LAB_STATE} has no host "${name}"`);
    hosts[name] = { ...spec, address: lab.address, port: lab.port, user: state.user, key: state.key, become: true, vars: { ...spec.vars, guest: pveGuests[name] } };
  }
  return {
    knownHosts: state.knownHosts,
    // Same groups, but no jump host: the lab's bridge is reachable from this machine.
    groups: { ...phoenix.groups, guests: {} },
    vars: phoenixVars({
      domain,
      gateway: LAB_GATEWAY,
      guests,
      exportRoot: LAB_ROOT,
      nginx: { pageText: `Gateway for ${domain} (phoenix lab)` },
      stepCa: (s) => ({
        ...s,
        // The lab's step-ca is built offline from Debian's Go sources (lab/stepca/).
        source: state.stepCa ? { localPath: state.stepCa.binary, sha256: state.stepCa.sha256 } : s.source,
        keyPassword: labKeyPassword(),
      }),
      // Swarm and stacks: the lab's addresses; Portainer and Qdrant are stand-ins (lab/README.md).
      // The lab is disposable: stacks an older run deployed with docker are handed to Portainer
      // (the default owner) rather than refused (docs/stacks.md).
      swarm: { migrateDockerStacks: true },
      portainer: {
        image: 'phoenix/portainer-standin:lab',
        agentImage: 'phoenix/portainer-agent-standin:lab',
        adminPassword: labSecret('portainer-admin-password'),
      },
      qdrant: {
        image: 'phoenix/qdrant-standin:lab',
        apiKey: labSecret('qdrant-api-key'),
        collections: [{ name: 'phoenix_docs', vectors: { size: 4, distance: 'Cosine' }, on_disk_payload: true }],
      },
      traefik: (t) => ({
        ...t,
        // Traefik cannot be had in the lab: its stand-in (lab/standins/traefik/) goes where the binary goes.
        source: state.traefikStandin ? { localPath: state.traefikStandin.binary, sha256: builtSha256(state.traefikStandin) } : t.source,
        dashboard: { ...t.dashboard, allowFrom: ['127.0.0.1/32', '192.168.201.0/24'] },
        // The e2e tests watch the swarm provider pick up a labelled service: poll every 2 s.
        swarm: { ...t.swarm, refreshSeconds: '2s' },
      }),
      ...o,
    }),
    hosts,
  };
}

export default labInventory;
