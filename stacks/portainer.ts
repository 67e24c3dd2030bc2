// portainer_service: the Portainer server on the manager (node.role == manager and the
// phoenix.portainer label), the agent on every node (global), on an overlay network of their
// own plus traefik-public.
//
// Exported API (stable; playbooks/sync.ts imports it):
//   portainerStack(vars: PortainerStackVars): StackDefinition
//     compose: version 3.8, services `portainer` (server) and `agent`
//     the server runs with: -H unix:///var/run/docker.sock
//                           --admin-password-file /run/secrets/portainer_admin_password
//                           (+ vars.portainer.extraArgs)
//     secrets: { admin_password }
//     health:  http(s)://<manager>:<httpsPort>/api/system/status
//   It reads the admin password (a SecretRef), so call it when a task runs, not at import.
import type { PortainerVars } from '../roles/portainer/vars.ts';
import type { SwarmVars } from '../roles/swarm/vars.ts';
import type { ComposeFile } from './compose.ts';
import { nodesFor } from './qdrant.ts';
import { COMPOSE_VERSION, stackSecret, type StackDefinition } from './types.ts';

export type PortainerStackVars = PortainerVars & SwarmVars & { domain: string };

export function portainerStack(vars: PortainerStackVars): StackDefinition {
  const p = vars.portainer;
  const secret = stackSecret(p.stack, 'admin_password', p.adminPassword, 'portainer.adminPassword');
  const net = vars.swarm.network;
  const compose: ComposeFile = {
    version: COMPOSE_VERSION,
    services: {
      agent: {
        image: p.agentImage,
        environment: { AGENT_CLUSTER_ADDR: 'tasks.agent', AGENT_PORT: String(p.agentPort) },
        ports: [{ target: p.agentPort, published: p.agentPort, protocol: 'tcp', mode: 'host' }],
        volumes: [
          { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' },
          { type: 'bind', source: '/var/lib/docker/volumes', target: '/var/lib/docker/volumes' },
        ],
        networks: ['agent_network'],
        deploy: { mode: 'global', endpoint_mode: 'dnsrr', placement: { constraints: ['node.platform.os == linux'] } },
      },
      portainer: {
        image: p.image,
        // The server talks to the manager's own socket: no agent TLS to skip-verify.
        command: ['-H', 'unix:///var/run/docker.sock', '--admin-password-file', '/run/secrets/portainer_admin_password', ...p.extraArgs],
        ports: [
          { target: 9443, published: p.httpsPort, protocol: 'tcp', mode: 'host' },
          { target: 8000, published: p.tunnelPort, protocol: 'tcp', mode: 'host' },
        ],
        volumes: [
          { type: 'volume', source: 'data', target: '/data' },
          { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' },
        ],
        networks: ['agent_network', net],
        secrets: [{ source: 'admin_password', target: 'portainer_admin_password', mode: 0o400 }],
        deploy: {
          mode: 'replicated',
          replicas: 1,
          endpoint_mode: 'dnsrr',
          placement: { constraints: p.constraints },
          labels: {
            'traefik.enable': 'true',
            'traefik.swarm.network': net,
            'traefik.http.routers.portainer.rule': `Host(\`portainer.${vars.domain}\`)`,
            'traefik.http.services.portainer.loadbalancer.server.port': '9443',
            'traefik.http.services.portainer.loadbalancer.server.scheme': 'https',
          },
          restart_policy: { condition: 'any' },
        },
      },
    },
    networks: {
      agent_network: { driver: 'overlay', attachable: true },
      [net]: { external: true, name: net },
    },
    volumes: { data: { name: 'portainer_data' } },
    secrets: { admin_password: { external: true, name: secret.name } },
  };
  const node = nodesFor(p.constraints, vars.swarm.nodeLabels)[0] ?? vars.swarm.manager;
  const addr = vars.swarm.advertise[node];
  return {
    name: p.stack,
    compose,
    env: {},
    secrets: { admin_password: secret },
    health: addr ? [{ what: 'portainer /api/system/status', url: `${p.healthScheme}://${addr}:${p.httpsPort}/api/system/status` }] : [],
  };
}
