// Portainer's typed vars and production defaults (docs/ARCHITECTURE.md: server on VM 1001 at
// :9443 and :8000, agent on every node at :9001).
import type { SecretRef } from '../../stacks/types.ts';
import { PORTAINER_NODE_LABEL } from '../swarm/vars.ts';

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
    /** How readiness reaches :httpsPort (https, verified; the lab's stand-in speaks plain http). */
    healthScheme: 'https' | 'http';
  };
}

export const PORTAINER_VERSION = '2.21.5';

export function portainerDefaults(): PortainerVars {
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
      healthScheme: 'https',
    },
  };
}
