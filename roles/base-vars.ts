// The vars every phoenix role may read besides its own: the domain and the host's guest number.
// A role's vars type is its own vars, what it reads of other roles (a Pick of their vars type)
// and BaseVars, e.g. `NginxVars & Pick<CertVars, 'certs'> & BaseVars`, so the compiler refuses a
// read the role does not declare (docs/vars.md). Where the services are (TopologyVars) is read
// only by the roles that declare it. inventory.ts builds all of them with phoenixVars().

/** Fixed addresses of the services, so roles never hard-code an IP. */
export interface Topology {
  stepCa: { address: string; port: number };
  nginx: { address: string };
  traefik: { address: string; http: number; https: number; dashboard: number };
  swarmManager: { address: string };
  swarmWorker: { address: string };
}

export interface BaseVars {
  /** Internal DNS domain; service names are <svc>.<domain>. */
  domain: string;
  /** The guest number on Proxmox (LXC/VM id). */
  guestId: number;
}

/** The homelab's network: its gateway and where each service is (a role reads a Pick of it). */
export interface TopologyVars {
  gateway: string;
  topology: Topology;
}
