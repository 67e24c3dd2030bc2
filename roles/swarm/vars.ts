// The swarm's typed vars and production defaults (docs/ARCHITECTURE.md: VM 1001 manager,
// VM 1002 worker, overlay network traefik-public, Docker's TLS API on the manager at :2376).

import { needsVars } from '../../runner/vars-schema.ts';

/** Where the Docker engine comes from. Debian's docker.io is the lab's and production's default. */
export type DockerEngineSource =
  | { kind: 'debian'; packages: string[] }
  | {
      kind: 'docker-ce';
      /** e.g. https://download.docker.com/linux/debian */
      repo: string;
      suite: string;
      /** The repository's signing key (ASCII armoured), checked against its sha256. */
      keyUrl: string;
      keySha256: string;
      packages: string[];
    };

export interface SwarmVars {
  swarm: {
    engine: DockerEngineSource;
    /** Inventory name of the manager that inits the swarm and whose worker token workers use. */
    manager: string;
    /** Address each node advertises (and listens on for 2377), by inventory host name. */
    advertise: Record<string, string>;
    /** Node labels by inventory host name; stacks place services with node.labels.<key>. */
    nodeLabels: Record<string, Record<string, string>>;
    /** The attachable overlay network Traefik and the stacks share. */
    network: string;
    /**
     * Docker's TCP API on the manager, TLS with client certificates (tlsverify): the server
     * certificate (certbot over ACME http-01 against step-ca) covers `names` (the first is what
     * clients connect to); clients must present a certificate of the Docker API's own client CA
     * on the manager (roles/swarm/client-ca.ts), never just any step-ca one.
     * `clientNames`: the names of the client certificate signed for the Traefik host's swarm
     * provider. `refuse`: step-ca certificates on other guests (certbot lineage names) that the
     * self-test proves are refused, by curl on that guest with its own key.
     */
    tlsApi: { port: number; names: string[]; clientNames: string[]; refuse?: { host: string; certName: string }[] };
    /** Where the manager keeps the compose file of each stack as last deployed. */
    stackDir: string;
    /**
     * Who owns the stacks (Portainer's and Qdrant's), in site.ts as in `phoenix sync`:
     * - 'portainer' (default, the seed's flow): site deploys Portainer's own stack (a one-off
     *   Portainer creates it on a fresh swarm, then hands over) and hands the other stacks to
     *   it through its API, exactly as `phoenix sync` does; so sync right after site changes 0.
     * - 'docker': site runs `docker stack deploy` on the manager; `phoenix sync` refuses those
     *   stacks, because Portainer cannot adopt a stack deployed outside it.
     * The stack plan (stacks/plan.ts) is the same; only the transport differs. docs/stacks.md.
     */
    deployStacksWith?: 'docker' | 'portainer';
    /**
     * With Portainer as the owner: a stack found running but deployed outside Portainer (by
     * `docker stack deploy`, e.g. an older site run) is handed to Portainer: `docker stack rm`
     * (named volumes, i.e. the data, and phoenix's secrets are kept; the services stop for the
     * moment of the switch), then created through the API. Portainer's own stack is migrated
     * through the one-off Portainer, on the same data volume. Default false: such a stack is
     * refused with an error naming this setting.
     */
    migrateDockerStacks?: boolean;
  };
}

export const QDRANT_NODE_LABEL = 'phoenix.qdrant';
export const PORTAINER_NODE_LABEL = 'phoenix.portainer';

export function swarmDefaults(t: { swarmManager: { address: string }; swarmWorker: { address: string } }, domain: string): SwarmVars {
  return {
    swarm: {
      engine: { kind: 'debian', packages: ['docker.io'] },
      manager: 'vm1001',
      advertise: { vm1001: t.swarmManager.address, vm1002: t.swarmWorker.address },
      nodeLabels: {
        vm1001: { [PORTAINER_NODE_LABEL]: 'true' },
        vm1002: { [QDRANT_NODE_LABEL]: 'true' },
      },
      network: 'traefik-public',
      tlsApi: { port: 2376, names: [`vm1001.${domain}`], clientNames: [`traefik.${domain}`], refuse: [{ host: 'lxc101', certName: 'gateway' }] },
      stackDir: '/etc/phoenix/stacks',
    },
  };
}

/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const swarmVarsSchema = needsVars({ swarm: { required: ['engine', 'manager', 'advertise', 'nodeLabels', 'network'] } });
