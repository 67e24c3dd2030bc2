// The Phoenix Hypervisor, as ../shared/ARCHITECTURE.md describes it: three LXC guests and two
// swarm VMs on vmbr0 behind the Proxmox host. Every IP, port and name the roles use lives here.
import { defineInventory, type Inventory } from './runner/index.ts';

export interface PhoenixVars {
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
  nginx: {
    /** Title and text of the gateway's landing page. */
    pageTitle: string;
    pageText: string;
    listenHttp: number;
  };
  stepCa: {
    name: string;
    provisioner: string;
    acmeProvisioner: string;
    /** Where the step-ca binary comes from: a release URL with its sha256, or a local artifact. */
    source: { url: string; sha256: string } | { localPath: string; sha256: string };
  };
}

const domain = 'internal.thinkheads.ai';

export const phoenix: Inventory<PhoenixVars> = defineInventory<PhoenixVars>({
  knownHosts: '~/.ssh/known_hosts',
  vars: {
    domain,
    gateway: '10.0.0.1',
    topology: {
      stepCa: { address: '10.0.0.10', port: 9000 },
      nginx: { address: '10.0.0.153' },
      traefik: { address: '10.0.0.12', http: 80, https: 443, dashboard: 8080 },
      swarmManager: { address: '10.0.0.111' },
      swarmWorker: { address: '10.0.0.102' },
    },
    nginx: {
      pageTitle: 'Phoenix Hypervisor',
      pageText: `Gateway for ${domain}`,
      listenHttp: 80,
    },
    stepCa: {
      name: 'Phoenix Internal CA',
      provisioner: 'admin',
      acmeProvisioner: 'acme',
      // Production pins a release artifact by URL and sha256; the lab inventory points at its
      // own offline build instead. The sha256 below is a placeholder to replace with the
      // release's published checksum: until then get_url refuses the download (mismatch).
      source: {
        url: 'https://github.com/smallstep/certificates/releases/download/v0.19.0/step-ca_linux_0.19.0_amd64.tar.gz',
        sha256: '0000000000000000000000000000000000000000000000000000000000000000',
      },
    },
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
    proxmox: { address: '10.0.0.13', user: 'root', groups: [], vars: { guestId: 0 } },
    lxc103: { address: '10.0.0.10', groups: ['guests', 'lxc', 'stepca'], vars: { guestId: 103 } },
    lxc101: { address: '10.0.0.153', groups: ['guests', 'lxc', 'nginx'], vars: { guestId: 101 } },
    lxc102: { address: '10.0.0.12', groups: ['guests', 'lxc', 'traefik'], vars: { guestId: 102 } },
    vm1001: { address: '10.0.0.111', groups: ['guests', 'vms', 'swarm', 'swarm_managers', 'portainer'], vars: { guestId: 1001 } },
    vm1002: { address: '10.0.0.102', groups: ['guests', 'vms', 'swarm', 'swarm_workers', 'qdrant'], vars: { guestId: 1002 } },
  },
});

export default phoenix;
