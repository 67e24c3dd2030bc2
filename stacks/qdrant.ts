// qdrant_service: Qdrant on the node labelled phoenix.qdrant=true (VM 1002), a named volume for
// /qdrant/storage, HTTP :6333 and gRPC :6334 published in host mode, on traefik-public.
//
// Exported API (stable; playbooks/sync.ts imports it):
//   qdrantStack(vars: QdrantStackVars): StackDefinition
//     compose: version 3.8, one service `qdrant` (swarm service name `<stack>_qdrant`)
//     secrets: { api_key }  — the API key; the container exports it as QDRANT__SERVICE__API_KEY
//                             from /run/secrets/qdrant_api_key before exec'ing ./entrypoint.sh
//     health:  http://<qdrant node>:<httpPort>/readyz (public in Qdrant, no key needed)
//   It reads the API key (a SecretRef), so call it when a task runs, not at import.
//   prepareQdrantStack(vars): Promise<void>   its secret's fingerprint ahead (a role's prepare)
import type { QdrantVars } from '../roles/qdrant/vars.ts';
import type { SwarmVars } from '../roles/swarm/vars.ts';
import type { ComposeFile } from './compose.ts';
import { COMPOSE_VERSION, primeStackSecret, stackSecret, type StackDefinition } from './types.ts';

export type QdrantStackVars = QdrantVars & SwarmVars & { domain: string };

/** Inventory hosts whose node labels satisfy every `node.labels.K == V` constraint. */
export function nodesFor(constraints: string[], labels: SwarmVars['swarm']['nodeLabels']): string[] {
  const want = constraints
    .map((c) => /^node\.labels\.(\S+)\s*==\s*(\S+)$/.exec(c.trim()))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => [m[1], m[2]] as const);
  return Object.entries(labels)
    .filter(([, l]) => want.every(([k, v]) => l[k] === v))
    .map(([h]) => h);
}

/** The API key's stack secret: stack, key, ref and the field named in errors. */
const apiKeySecret = (q: QdrantVars['qdrant']) => [q.stack, 'api_key', q.apiKey, 'qdrant.apiKey'] as const;

/** Computes the API key's secret name ahead, in the thread pool (the role's prepare); a secret it cannot read yet is left to the stack task. */
export const prepareQdrantStack = (vars: Pick<QdrantStackVars, 'qdrant'>): Promise<void> => primeStackSecret(...apiKeySecret(vars.qdrant));

export function qdrantStack(vars: QdrantStackVars): StackDefinition {
  const q = vars.qdrant;
  const secret = stackSecret(...apiKeySecret(q));
  const compose: ComposeFile = {
    version: COMPOSE_VERSION,
    services: {
      qdrant: {
        image: q.image,
        // Qdrant reads its API key from the environment; the key comes from the docker secret
        // file, so it is in no compose file, no service spec and no process argument list.
        // `$$` is compose's escape for a literal `$`.
        entrypoint: ['/bin/sh', '-c', 'QDRANT__SERVICE__API_KEY="$$(cat /run/secrets/qdrant_api_key)" && export QDRANT__SERVICE__API_KEY && exec ./entrypoint.sh'],
        working_dir: '/qdrant',
        environment: {
          QDRANT__LOG_LEVEL: q.logLevel,
          QDRANT__SERVICE__HTTP_PORT: String(q.httpPort),
          QDRANT__SERVICE__GRPC_PORT: String(q.grpcPort),
          // TLS: Qdrant's own settings, the certbot lineage bind-mounted read-only (docs/security.md).
          ...(q.tls.enabled ? qdrantTlsEnv(q.tls.certTtl) : {}),
          ...q.env,
        },
        ports: [
          { target: q.httpPort, published: q.httpPort, protocol: 'tcp', mode: 'host' },
          { target: q.grpcPort, published: q.grpcPort, protocol: 'tcp', mode: 'host' },
        ],
        volumes: [
          { type: 'volume', source: 'storage', target: '/qdrant/storage' },
          ...(q.tls.enabled ? [{ type: 'bind' as const, source: '/etc/letsencrypt', target: '/etc/letsencrypt', read_only: true }] : []),
        ],
        networks: [vars.swarm.network],
        secrets: [{ source: 'api_key', target: 'qdrant_api_key', mode: 0o400 }],
        deploy: {
          mode: 'replicated',
          replicas: 1,
          // No IPVS in the lab, and one replica needs no VIP: DNS round robin.
          endpoint_mode: 'dnsrr',
          placement: { constraints: q.constraints },
          // No traefik.* labels: Traefik runs outside the swarm (LXC 102) and routes qdrant.<domain> with
          // its file provider to the host-mode port; a router its swarm provider made from labels would
          // point at this task's overlay address, which LXC 102 cannot reach (README: Traefik and the swarm).
          restart_policy: { condition: 'any' },
        },
      },
    },
    networks: { [vars.swarm.network]: { external: true, name: vars.swarm.network } },
    volumes: { storage: { name: q.volume } },
    secrets: { api_key: { external: true, name: secret.name } },
  };
  const node = nodesFor(q.constraints, vars.swarm.nodeLabels)[0];
  const addr = node ? vars.swarm.advertise[node] : undefined;
  return {
    name: q.stack,
    compose,
    env: {},
    secrets: { api_key: secret },
    health: addr ? [{ what: 'qdrant /readyz', url: q.tls.enabled && node ? `https://${qdrantTlsName(node, vars.domain)}:${q.httpPort}/readyz` : `http://${addr}:${q.httpPort}/readyz` }] : [],
  };
}

// --- TLS (trust lane, issue 16 item 3) ---
/** certbot's lineage of Qdrant's certificate on its node. */
export const QDRANT_CERT = 'qdrant';
/** The name Qdrant's certificate is for, and that its clients (Traefik, phoenix) connect to. */
export const qdrantTlsName = (node: string, domain: string) => `${node}.${domain}`;
/** Qdrant's TLS settings as environment (config.yaml v1.19: service.enable_tls, tls.cert, tls.key, tls.cert_ttl). */
export function qdrantTlsEnv(certTtl: number): Record<string, string> {
  const live = `/etc/letsencrypt/live/${QDRANT_CERT}`;
  return { QDRANT__SERVICE__ENABLE_TLS: 'true', QDRANT__TLS__CERT: `${live}/fullchain.pem`, QDRANT__TLS__KEY: `${live}/privkey.pem`, QDRANT__TLS__CERT_TTL: String(certTtl) };
}
// --- end TLS
