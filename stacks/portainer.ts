// portainer_service: the Portainer server on the manager (node.role == manager and the
// phoenix.portainer label), the agent on every node (global), on an overlay network of their
// own plus traefik-public.
//
// Exported API (stable; playbooks/sync.ts imports it):
//   portainerStack(vars: PortainerStackVars): StackDefinition
//     compose: version 3.8, services `portainer` (server) and `agent`
//     the server runs with: -H unix:///var/run/docker.sock
//                           --admin-password-file /run/secrets/portainer_admin_password
//                           --sslcert /certs/live/portainer/fullchain.pem
//                           --sslkey /certs/live/portainer/privkey.pem
//                           (+ vars.portainer.extraArgs); /etc/letsencrypt of the manager is
//                           mounted read-only at /certs (certbot's step-ca certificate)
//     secrets: { admin_password }
//     health:  https://<tls.names[0]>:<httpsPort>/api/system/status (verified)
//   It reads the admin password (a SecretRef), so call it when a task runs, not at import.
//   preparePortainerStack(vars): Promise<void>   its secret's fingerprint ahead (a role's prepare)
import { PORTAINER_CERT, type PortainerVars } from '../roles/portainer/vars.ts';
import type { SwarmVars } from '../roles/swarm/vars.ts';
import type { ComposeFile } from './compose.ts';
import { COMPOSE_VERSION, primeStackSecret, stackSecret, type StackDefinition } from './types.ts';

export type PortainerStackVars = PortainerVars & SwarmVars & { domain: string };

/** The admin password's stack secret: stack, key, ref and the field named in errors. */
const adminSecret = (p: PortainerVars['portainer']) => [p.stack, 'admin_password', p.adminPassword, 'portainer.adminPassword'] as const;

/** Computes the admin password's secret name ahead, in the thread pool (the role's prepare); a secret it cannot read yet is left to the stack task. */
export const preparePortainerStack = (vars: Pick<PortainerStackVars, 'portainer'>): Promise<void> => primeStackSecret(...adminSecret(vars.portainer));

export function portainerStack(vars: PortainerStackVars): StackDefinition {
  const p = vars.portainer;
  const secret = stackSecret(...adminSecret(p));
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
        command: [
          '-H',
          'unix:///var/run/docker.sock',
          '--admin-password-file',
          '/run/secrets/portainer_admin_password',
          '--sslcert',
          `/certs/live/${PORTAINER_CERT}/fullchain.pem`,
          '--sslkey',
          `/certs/live/${PORTAINER_CERT}/privkey.pem`,
          ...p.extraArgs,
        ],
        ports: [
          { target: 9443, published: p.httpsPort, protocol: 'tcp', mode: 'host' },
          { target: 8000, published: p.tunnelPort, protocol: 'tcp', mode: 'host' },
        ],
        volumes: [
          { type: 'volume', source: 'data', target: '/data' },
          { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' },
          // certbot's live/ links point into archive/: mount the whole tree, read-only.
          { type: 'bind', source: '/etc/letsencrypt', target: '/certs', read_only: true },
        ],
        networks: ['agent_network', net],
        secrets: [{ source: 'admin_password', target: 'portainer_admin_password', mode: 0o400 }],
        deploy: {
          mode: 'replicated',
          replicas: 1,
          endpoint_mode: 'dnsrr',
          placement: { constraints: p.constraints },
          // No traefik.* labels: Traefik runs outside the swarm (LXC 102) and routes portainer.<domain> with
          // its file provider to the host-mode port; a router its swarm provider made from labels would
          // point at this task's overlay address, which LXC 102 cannot reach (README: Traefik and the swarm).
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
  return {
    name: p.stack,
    compose,
    env: {},
    secrets: { admin_password: secret },
    health: p.tls.names.length ? [{ what: 'portainer /api/system/status', url: `https://${p.tls.names[0]}:${p.httpsPort}/api/system/status` }] : [],
  };
}
