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
// (roles that land later add their vars type and defaults here)

export interface BaseVars {
  /** Internal DNS domain; service names are <svc>.<domain>. */
  domain: string;
  gateway: string;
  /** The guest number on Proxmox (LXC/VM id). */
  guestId: number;
  /** Fixed addresses of the services, so roles never hard-code an IP. */
  topology: {
    stepCa: { address: string; port: number };
    nginx: { address: string };
    traefik: { address: string; http: number; https: number; dashboard: number };
    swarmManager: { address: string };
    swarmWorker: { address: string };
  };
}

export type PhoenixVars = BaseVars & StepCaVars & TrustVars & CertVars & NginxVars & TraefikVars & SwarmVars & PortainerVars & QdrantVars & ProxmoxVars;

const domain = 'internal.thinkheads.ai';
const topology: BaseVars['topology'] = {
  stepCa: { address: '10.0.0.10', port: 9000 },
  nginx: { address: '10.0.0.153' },
  traefik: { address: '10.0.0.12', http: 80, https: 443, dashboard: 8080 },
  swarmManager: { address: '10.0.0.111' },
  swarmWorker: { address: '10.0.0.102' },
};
const guests = { lxc103: '10.0.0.10', lxc101: '10.0.0.153', lxc102: '10.0.0.12', vm1001: '10.0.0.111', vm1002: '10.0.0.102' };

// --- proxmox: each guest's Proxmox shape (roles/proxmox/vars.ts, docs/proxmox.md) ---
const proxmoxGuests = guestDefaults(
  // phoenix's login key goes into sshPublicKeys/sshkeys (add yours: the guests are created with it).
  { domain, gateway: '10.0.0.1', bridge: 'vmbr0', prefix: 24, nameserver: '10.0.0.1', sshPublicKeys: [] },
  guests,
);
// --- end proxmox ---

/** Where site.ts leaves the CA's root certificate on the control machine (never a key). */
export const EXPORTED_ROOT = fileURLToPath(new URL('./.phoenix/phoenix-root-ca.crt', import.meta.url));

export const phoenix: Inventory<PhoenixVars> = defineInventory<PhoenixVars>({
  knownHosts: '~/.ssh/known_hosts',
  vars: {
    domain,
    gateway: '10.0.0.1',
    topology,
    ...stepCaDefaults(EXPORTED_ROOT),
    ...trustDefaults(domain, topology, guests),
    ...certDefaults(domain, topology.stepCa.port, 'acme'),
    ...nginxDefaults(domain),
    ...traefikDefaults(domain, topology),
    ...swarmDefaults(topology, domain),
    ...portainerDefaults(domain),
    ...qdrantDefaults(),
  },
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

export default phoenix;
