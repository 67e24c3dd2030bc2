// The Phoenix Hypervisor, as docs/ARCHITECTURE.md describes it: three LXC guests and two
// swarm VMs on vmbr0 behind the Proxmox host. Every IP, port and name the roles use lives here.
// Each role owns its vars type and production defaults (roles/<name>/vars.ts); this file
// composes them and sets what is specific to this homelab.
import { fileURLToPath } from 'node:url';
import { defineInventory, type Inventory } from './runner/index.ts';
import { stepCaDefaults, type StepCaVars } from './roles/step-ca/vars.ts';
import { trustDefaults, type TrustVars } from './roles/trust/vars.ts';
import { nginxDefaults, type NginxVars } from './roles/nginx/vars.ts';
import { certDefaults, type CertVars } from './roles/certs/vars.ts';
import { traefikDefaults, type TraefikVars } from './roles/traefik/vars.ts';
import { swarmDefaults, type SwarmVars } from './roles/swarm/vars.ts';
import { portainerDefaults, type PortainerVars } from './roles/portainer/vars.ts';
import { qdrantDefaults, type QdrantVars } from './roles/qdrant/vars.ts';
import { guestDefaults, type ProxmoxVars } from './roles/proxmox/vars.ts';
import type { PortainerApiVars } from './roles/portainer/api.ts';
import { nodesFor } from './stacks/qdrant.ts';
import type { BaseVars, Topology, TopologyVars } from './roles/base-vars.ts';
// (roles that land later add their vars type and defaults here)

export type { BaseVars, Topology, TopologyVars } from './roles/base-vars.ts';

/** The whole homelab's vars: every role's vars type and the base (each role reads only its part: docs/vars.md). */
export type PhoenixVars = BaseVars & TopologyVars & StepCaVars & TrustVars & CertVars & NginxVars & TraefikVars & SwarmVars & PortainerVars & PortainerApiVars & QdrantVars & ProxmoxVars;

/** What phoenixVars() sets for every host; the host-level vars (guestId, guest, proxmox) are each host's own. */
export type PhoenixGlobalVars = Omit<PhoenixVars, 'guestId' | 'guest' | 'proxmox'>;

/** The five guests of docs/ARCHITECTURE.md by inventory name, and their addresses. */
export type GuestAddresses = Record<'lxc103' | 'lxc101' | 'lxc102' | 'vm1001' | 'vm1002', string>;

/** The role vars phoenixVars() derives and an override may change. */
type RoleKey = 'stepCa' | 'trust' | 'certs' | 'nginx' | 'traefik' | 'swarm' | 'portainer' | 'qdrant';

/**
 * An override of one role's vars: fields that replace the derived ones (one level deep, like
 * Ansible's hash_behaviour=replace), or a function of the derived value for deeper edits.
 */
export type VarsOverride<T> = Partial<T> | ((derived: T) => T);

export interface PhoenixVarsInput extends Partial<{ [K in RoleKey]: VarsOverride<PhoenixGlobalVars[K]> }> {
  /** Internal DNS domain: every derived name is <name>.<domain>. */
  domain: string;
  gateway: string;
  /** The guests' addresses (each also gets <guest>.<domain> in /etc/hosts). */
  guests: GuestAddresses;
  /** Where the services are; default topologyOf(guests) (phoenix's ports). */
  topology?: Topology;
  /** Where site.ts leaves the CA's root certificate on the control machine. */
  exportRoot: string;
  /** How sync reaches the Portainer API (every field has a default). */
  portainerApi?: PortainerApiVars['portainerApi'];
}

/** docs/ARCHITECTURE.md's topology: which guest runs which service, and phoenix's ports. */
export function topologyOf(g: GuestAddresses): Topology {
  return {
    stepCa: { address: g.lxc103, port: 9000 },
    nginx: { address: g.lxc101 },
    traefik: { address: g.lxc102, http: 80, https: 443, dashboard: 8080 },
    swarmManager: { address: g.vm1001 },
    swarmWorker: { address: g.vm1002 },
  };
}

function apply<T>(derived: T, o: VarsOverride<T> | undefined): T {
  if (o === undefined) return derived;
  return typeof o === 'function' ? o(derived) : { ...derived, ...o };
}

/**
 * Every var of the homelab, derived once from the domain, the guests' addresses and the topology
 * (service names, /etc/hosts entries, advertise addresses, certificate names, URLs), then the
 * overrides. A role's override applies before the roles that read it are derived, so e.g. a
 * changed portainer.httpsPort reaches Traefik's service URL. Production (this file) and the lab
 * (lab/inventory.ts) both build their vars here, so an override of `domain` reaches every name.
 */
export function phoenixVars(input: PhoenixVarsInput): PhoenixGlobalVars {
  const { domain, gateway, guests, exportRoot } = input;
  const topology = input.topology ?? topologyOf(guests);
  const stepCa = apply({ ...stepCaDefaults(exportRoot).stepCa, port: topology.stepCa.port }, input.stepCa);
  const certs = apply(certDefaults(domain, topology.stepCa.port, stepCa.acmeProvisioner).certs, input.certs);
  const trust = apply(trustDefaults(domain, topology, guests).trust, input.trust);
  const nginx = apply(nginxDefaults(domain).nginx, input.nginx);
  const swarm = apply(swarmDefaults(topology, domain).swarm, input.swarm);
  const portainer = apply(portainerDefaults(domain, swarm.manager).portainer, input.portainer);
  const qdrant = apply(qdrantDefaults().qdrant, input.qdrant);
  // Traefik reaches the swarm's Docker API and the two stacks by the names their certificates carry.
  const t = traefikDefaults(domain, topology).traefik;
  const qdrantNode = nodesFor(qdrant.constraints, swarm.nodeLabels)[0] ?? 'vm1002';
  const traefik = apply(
    {
      ...t,
      swarm: { ...t.swarm, endpoint: `tcp://${swarm.tlsApi.names[0] ?? `${swarm.manager}.${domain}`}:${swarm.tlsApi.port}` },
      services: {
        ...t.services,
        portainer: { servers: [`https://${portainer.tls.names[0] ?? `${swarm.manager}.${domain}`}:${portainer.httpsPort}`] },
        qdrant: { servers: [`${qdrant.tls.enabled ? 'https' : 'http'}://${qdrantNode}.${domain}:${qdrant.httpPort}`] },
      },
    },
    input.traefik,
  );
  return { domain, gateway, topology, stepCa, certs, trust, nginx, traefik, swarm, portainer, qdrant, ...(input.portainerApi ? { portainerApi: input.portainerApi } : {}) };
}

/** Production's domain, gateway and guests (docs/ARCHITECTURE.md). */
export const DOMAIN = 'internal.thinkheads.ai';
const GATEWAY = '10.0.0.1';
const guestAddresses: GuestAddresses = { lxc103: '10.0.0.10', lxc101: '10.0.0.153', lxc102: '10.0.0.12', vm1001: '10.0.0.111', vm1002: '10.0.0.102' };

/** Where site.ts leaves the CA's root certificate on the control machine (never a key). */
export const EXPORTED_ROOT = fileURLToPath(new URL('./.phoenix/phoenix-root-ca.crt', import.meta.url));

/** Production's inventory; every input of phoenixVars() may be overridden (a test's domain, say). */
export function phoenixInventory(o: Partial<PhoenixVarsInput> = {}): Inventory<PhoenixVars> {
  const input: PhoenixVarsInput = { domain: DOMAIN, gateway: GATEWAY, guests: guestAddresses, exportRoot: EXPORTED_ROOT, ...o };
  const guests = input.guests;
  // --- proxmox: each guest's Proxmox shape (roles/proxmox/vars.ts, docs/proxmox.md) ---
  const proxmoxGuests = guestDefaults(
    // phoenix's login key goes into sshPublicKeys/sshkeys (add yours: the guests are created with it).
    { domain: input.domain, gateway: input.gateway, bridge: 'vmbr0', prefix: 24, nameserver: input.gateway, sshPublicKeys: [] },
    guests,
  );
  // --- end proxmox ---
  return defineInventory<PhoenixVars>({
    knownHosts: '~/.ssh/known_hosts',
    vars: phoenixVars(input),
    groups: {
      // Guests are reached through the Proxmox host, which is the only address on the LAN.
      guests: { jump: 'proxmox' },
      lxc: {},
      vms: {},
      swarm: {},
      swarm_managers: {},
      swarm_workers: {},
    },
    hosts: {
      proxmox: {
        address: '10.0.0.13',
        user: 'root',
        groups: [],
        vars: {
          guestId: 0,
          // The Proxmox VE API (docs/proxmox.md: the token's least privileges; the CA is /etc/pve/pve-root-ca.pem, copied here).
          proxmox: {
            url: 'https://10.0.0.13:8006',
            node: 'pve',
            tokenId: 'phoenix@pve!site',
            tokenSecret: { env: 'PHOENIX_PROXMOX_TOKEN_SECRET' },
            caFile: fileURLToPath(new URL('./.phoenix/pve-root-ca.pem', import.meta.url)),
          },
        },
      },
      lxc103: { address: guests.lxc103, groups: ['guests', 'lxc', 'stepca'], vars: { guestId: 103, guest: proxmoxGuests.lxc103 } },
      lxc101: { address: guests.lxc101, groups: ['guests', 'lxc', 'nginx'], vars: { guestId: 101, guest: proxmoxGuests.lxc101 } },
      lxc102: { address: guests.lxc102, groups: ['guests', 'lxc', 'traefik'], vars: { guestId: 102, guest: proxmoxGuests.lxc102 } },
      vm1001: { address: guests.vm1001, groups: ['guests', 'vms', 'swarm', 'swarm_managers', 'portainer'], vars: { guestId: 1001, guest: proxmoxGuests.vm1001 } },
      vm1002: { address: guests.vm1002, groups: ['guests', 'vms', 'swarm', 'swarm_workers', 'qdrant'], vars: { guestId: 1002, guest: proxmoxGuests.vm1002 } },
    },
  });
}

export const phoenix: Inventory<PhoenixVars> = phoenixInventory();

export default phoenix;
