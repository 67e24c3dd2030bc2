// The full run, in the order of docs/ARCHITECTURE.md: step-ca (LXC 103) first, then trust in
// its root and the service names on every guest, then the gateway (nginx, LXC 101) and
// Traefik (LXC 102), then the swarm and its stacks. Each play says what it waits for (`after`,
// docs/playbooks.md "Overlapping plays"), so the gateway, Traefik, Qdrant's certificate and the
// swarm chain run beside each other once every guest trusts the CA; a guest runs one play at a
// time. Why each play waits for what it does is said beside it.
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
  play({ name: 'proxmox', hosts: 'proxmox', roles: [proxmox], after: [] }),
  // Every guest needs its root: the CA comes first on the guests (it exports the root to this machine).
  play({ name: 'certificate authority', hosts: 'stepca', roles: [stepCa], after: ['proxmox'] }),
  // The root exported by the CA play into every guest's trust store, and the service names.
  play({ name: 'trust', hosts: 'guests', roles: [trust], after: ['certificate authority'] }),
  // Certificates need the CA to resolve the names (its /etc/hosts) and each guest to trust the root:
  // every play that issues one (gateway, traefik, docker api, portainer, qdrant certificate) is after trust.
  play({ name: 'gateway', hosts: 'nginx', roles: [nginx], after: ['trust'] }),
  play({ name: 'traefik', hosts: 'traefik', roles: [traefik], after: ['trust'] }),
  // The swarm chain, in its order. The manager inits before workers join (they read its join
  // token); docker's own repository (swarm.engine docker-ce) is fetched over the trust play's
  // ca-certificates; labels, network and readiness once all are in.
  play({ name: 'swarm manager', hosts: 'swarm_managers', roles: [swarmNode], after: ['trust'] }),
  play({ name: 'swarm workers', hosts: 'swarm_workers', roles: [swarmNode], after: ['swarm manager'] }),
  play({ name: 'swarm', hosts: 'swarm_managers', roles: [swarmCluster], after: ['swarm workers'] }),
  // Docker's TLS API on the manager (tlsverify): restarts dockerd, so after the swarm is formed; its
  // self-test proves the gateway's step-ca certificate is refused, so after the gateway issued it.
  play({ name: 'docker api', hosts: 'swarm_managers', roles: [dockerApi], after: ['swarm', 'gateway'] }),
  // The client certificate for Traefik's swarm provider: signed by the API's client CA on the
  // manager, owned by Traefik's system user.
  play({ name: 'docker api client', hosts: 'traefik', roles: [dockerApiClient], after: ['docker api', 'traefik'] }),
  // Stacks are deployed from the manager (placement puts their services on the right nodes):
  // Portainer needs the whole swarm (its agent runs on every node) and dockerd past its TLS restart.
  play({ name: 'portainer', hosts: 'swarm_managers', roles: [portainer], after: ['docker api'] }),
  // Qdrant serves HTTPS: its certificate on the node that runs it (group qdrant), before its stack.
  play({ name: 'qdrant certificate', hosts: 'qdrant', roles: [qdrantCertificate], after: ['trust'] }),
  // Deployed through Portainer's API, with the certificate in place on its node.
  play({ name: 'qdrant', hosts: 'swarm_managers', roles: [qdrant], after: ['portainer', 'qdrant certificate'] }),
]);

if (isMain(import.meta.url)) await main(site);
