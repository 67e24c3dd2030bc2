// The full run, in the order of docs/ARCHITECTURE.md: step-ca (LXC 103) first, then trust in
// its root and the service names on every guest, then the gateway (nginx, LXC 101) and
// Traefik (LXC 102), then the swarm and its stacks.
import { isMain, main, play, playbook } from '../runner/index.ts';
import type { PhoenixVars } from '../inventory.ts';
import stepCa from '../roles/step-ca/index.ts';
import trust from '../roles/trust/index.ts';
import nginx from '../roles/nginx/index.ts';
import traefik from '../roles/traefik/index.ts';
import { swarmCluster, swarmNode } from '../roles/swarm/index.ts';
import { dockerApi, dockerApiClient } from '../roles/swarm/api.ts';
import portainer from '../roles/portainer/index.ts';
import qdrant from '../roles/qdrant/index.ts';
import proxmox from '../roles/proxmox/index.ts';
import { qdrantCertificate } from '../roles/certs/qdrant.ts';

export const site = playbook<PhoenixVars>('site', [
  // The guests themselves first: created and kept in shape through the Proxmox VE API (docs/proxmox.md).
  play({ name: 'proxmox', hosts: 'proxmox', roles: [proxmox] }),
  play({ name: 'certificate authority', hosts: 'stepca', roles: [stepCa] }),
  play({ name: 'trust', hosts: 'guests', roles: [trust] }),
  play({ name: 'gateway', hosts: 'nginx', roles: [nginx] }),
  play({ name: 'traefik', hosts: 'traefik', roles: [traefik] }),
  // The manager inits before workers join; labels, network and readiness once all are in.
  play({ name: 'swarm manager', hosts: 'swarm_managers', roles: [swarmNode] }),
  play({ name: 'swarm workers', hosts: 'swarm_workers', roles: [swarmNode] }),
  play({ name: 'swarm', hosts: 'swarm_managers', roles: [swarmCluster] }),
  // Docker's TLS API on the manager (tlsverify), and the client certificate for Traefik's swarm provider.
  play({ name: 'docker api', hosts: 'swarm_managers', roles: [dockerApi] }),
  play({ name: 'docker api client', hosts: 'traefik', roles: [dockerApiClient] }),
  // Stacks are deployed from the manager (placement puts their services on the right nodes).
  play({ name: 'portainer', hosts: 'swarm_managers', roles: [portainer] }),
  // Qdrant serves HTTPS: its certificate on the node that runs it (group qdrant), before its stack.
  play({ name: 'qdrant certificate', hosts: 'qdrant', roles: [qdrantCertificate] }),
  play({ name: 'qdrant', hosts: 'swarm_managers', roles: [qdrant] }),
]);

if (isMain(import.meta.url)) await main(site);
