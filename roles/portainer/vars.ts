// Portainer's typed vars and production defaults (docs/ARCHITECTURE.md: server on VM 1001 at
// :9443 and :8000, agent on every node at :9001).
import type { SecretRef } from '../../stacks/types.ts';
import { PORTAINER_NODE_LABEL } from '../swarm/vars.ts';
import { needsVars } from '../../runner/vars-schema.ts';

export interface PortainerVars {
  portainer: {
    /** Swarm stack name. */
    stack: string;
    image: string;
    agentImage: string;
    httpsPort: number;
    /** Edge tunnel port. */
    tunnelPort: number;
    agentPort: number;
    /** Placement of the server (the agent is global). */
    constraints: string[];
    /** The admin's password: a docker secret read by --admin-password-file. */
    adminPassword: SecretRef;
    /** Extra arguments for the server (e.g. --log-level DEBUG). */
    extraArgs: string[];
    /**
     * TLS on :9443 with a step-ca certificate (certbot over ACME http-01 on the manager, see
     * roles/certs): the names it covers (each must resolve to the manager, as <guest>.<domain>
     * does through roles/trust). The first is what readiness and Traefik connect to.
     */
    tls: { names: string[] };
  };
}

/** certbot's lineage on the manager: /etc/letsencrypt/live/portainer/. */
export const PORTAINER_CERT = 'portainer';

export const PORTAINER_VERSION = '2.45.2';

export function portainerDefaults(domain: string, managerGuest = 'vm1001'): PortainerVars {
  return {
    portainer: {
      stack: 'portainer_service',
      image: `portainer/portainer-ce:${PORTAINER_VERSION}`,
      agentImage: `portainer/agent:${PORTAINER_VERSION}`,
      httpsPort: 9443,
      tunnelPort: 8000,
      agentPort: 9001,
      constraints: ['node.role == manager', `node.labels.${PORTAINER_NODE_LABEL} == true`],
      adminPassword: { env: 'PHOENIX_PORTAINER_ADMIN_PASSWORD' },
      extraArgs: [],
      tls: { names: [`${managerGuest}.${domain}`] },
    },
  };
}

/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const portainerVarsSchema = needsVars({ portainer: {}, swarm: {}, certs: {} }, { domain: { type: 'string', minLength: 1 } });
