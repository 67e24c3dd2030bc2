// Qdrant's typed vars and production defaults (docs/ARCHITECTURE.md: qdrant_service on VM 1002,
// :6333 HTTP, :6334 gRPC, a named volume for /qdrant/storage), and its collections.
import type { SecretRef } from '../../stacks/types.ts';
import { QDRANT_NODE_LABEL } from '../swarm/vars.ts';
import { needsVars } from '../../runner/vars-schema.ts';

export type QdrantDistance = 'Cosine' | 'Euclid' | 'Dot' | 'Manhattan';

/** A collection as declared; field names follow Qdrant's REST API (CreateCollection). */
export interface QdrantCollection {
  name: string;
  /** The single unnamed vector. size and distance are immutable once created. */
  vectors: { size: number; distance: QdrantDistance; on_disk?: boolean };
  /** Immutable once created. */
  shard_number?: number;
  on_disk_payload?: boolean;
  replication_factor?: number;
  write_consistency_factor?: number;
  hnsw_config?: { m?: number; ef_construct?: number; full_scan_threshold?: number; on_disk?: boolean };
  optimizers_config?: { indexing_threshold?: number; memmap_threshold?: number; default_segment_number?: number };
}

export interface QdrantVars {
  qdrant: {
    stack: string;
    image: string;
    httpPort: number;
    grpcPort: number;
    /** Named volume for /qdrant/storage. */
    volume: string;
    constraints: string[];
    apiKey: SecretRef;
    /** QDRANT__LOG_LEVEL. */
    logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
    /** Further QDRANT__* settings for the container (not secrets). */
    env: Record<string, string>;
    collections: QdrantCollection[];
    /**
     * HTTPS on both ports with a step-ca certificate for the node it runs on (<host>.<domain>,
     * certbot on that node, roles/certs/qdrant.ts), by Qdrant's own settings
     * (service.enable_tls, tls.cert, tls.key); Qdrant re-reads the files every certTtl seconds
     * (tls.cert_ttl), so a renewal reaches it without a restart.
     */
    tls: { enabled: boolean; certTtl: number };
  };
}

export const QDRANT_VERSION = 'v1.19.2';

export function qdrantDefaults(): QdrantVars {
  return {
    qdrant: {
      stack: 'qdrant_service',
      image: `qdrant/qdrant:${QDRANT_VERSION}`,
      httpPort: 6333,
      grpcPort: 6334,
      volume: 'qdrant_storage',
      constraints: [`node.labels.${QDRANT_NODE_LABEL} == true`],
      apiKey: { env: 'PHOENIX_QDRANT_API_KEY' },
      logLevel: 'INFO',
      env: {},
      collections: [],
      tls: { enabled: true, certTtl: 3600 },
    },
  };
}

/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const qdrantVarsSchema = needsVars({ qdrant: {}, swarm: {} });
