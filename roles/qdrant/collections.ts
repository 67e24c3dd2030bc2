// What to do for one declared Qdrant collection, given what the server says (GET
// /collections/{name} → CollectionInfo, shapes of Qdrant's OpenAPI spec). Pure: unit-tested.
// Immutable params (vector size and distance, shard_number) that differ are an error naming
// the field: phoenix never drops or recreates a collection, which would lose its points.
import type { QdrantCollection } from './vars.ts';

/** The part of CollectionInfo.config compared here. */
export interface LiveCollectionConfig {
  params: {
    vectors: { size: number; distance: string; on_disk?: boolean } | Record<string, unknown>;
    shard_number?: number;
    replication_factor?: number;
    write_consistency_factor?: number;
    on_disk_payload?: boolean;
  };
  hnsw_config?: Record<string, unknown>;
  /** Note: `optimizer_config` in responses, `optimizers_config` in requests. */
  optimizer_config?: Record<string, unknown>;
}

export type CollectionPlan =
  | { action: 'create'; body: Record<string, unknown>; summary: string }
  | { action: 'patch'; body: Record<string, unknown>; changes: string[] }
  | { action: 'none' };

export class ImmutableFieldError extends Error {
  readonly collection: string;
  readonly field: string;
  readonly live: unknown;
  readonly wanted: unknown;
  constructor(
    collection: string,
    field: string,
    live: unknown,
    wanted: unknown,
  ) {
    super(
      `qdrant collection "${collection}": ${field} is ${JSON.stringify(live)} on the server but the inventory says ${JSON.stringify(wanted)} ` +
        `(inventory field qdrant.collections[].${field}); it cannot change once created, and phoenix never drops or recreates a collection (its points would be lost): ` +
        `create a new collection and migrate, or change the inventory back`,
    );
    this.collection = collection;
    this.field = field;
    this.live = live;
    this.wanted = wanted;
    this.name = 'ImmutableFieldError';
  }
}

/** The CreateCollection body for a declared collection. */
export function createBody(c: QdrantCollection): Record<string, unknown> {
  const b: Record<string, unknown> = { vectors: { ...c.vectors } };
  for (const k of ['shard_number', 'on_disk_payload', 'replication_factor', 'write_consistency_factor', 'hnsw_config', 'optimizers_config'] as const) {
    if (c[k] !== undefined) b[k] = c[k];
  }
  return b;
}

export function planCollection(c: QdrantCollection, live: LiveCollectionConfig | undefined): CollectionPlan {
  if (!live) return { action: 'create', body: createBody(c), summary: `create ${c.name} (size ${c.vectors.size}, ${c.vectors.distance})` };
  const v = live.params.vectors as { size?: number; distance?: string; on_disk?: boolean };
  if (typeof v.size !== 'number') throw new ImmutableFieldError(c.name, 'vectors', 'named vectors', 'one unnamed vector');
  if (v.size !== c.vectors.size) throw new ImmutableFieldError(c.name, 'vectors.size', v.size, c.vectors.size);
  if (v.distance !== c.vectors.distance) throw new ImmutableFieldError(c.name, 'vectors.distance', v.distance, c.vectors.distance);
  if (c.shard_number !== undefined && live.params.shard_number !== c.shard_number) throw new ImmutableFieldError(c.name, 'shard_number', live.params.shard_number, c.shard_number);

  const changes: string[] = [];
  const body: Record<string, unknown> = {};
  const note = (field: string, from: unknown, to: unknown) => changes.push(`${field} ${JSON.stringify(from)} -> ${JSON.stringify(to)}`);
  // Only what the inventory declares is managed; the server's other settings are left alone.
  if (c.vectors.on_disk !== undefined && (v.on_disk ?? false) !== c.vectors.on_disk) {
    body.vectors = { '': { on_disk: c.vectors.on_disk } };
    note('vectors.on_disk', v.on_disk ?? false, c.vectors.on_disk);
  }
  const params: Record<string, unknown> = {};
  for (const k of ['on_disk_payload', 'replication_factor', 'write_consistency_factor'] as const) {
    if (c[k] !== undefined && live.params[k] !== c[k]) {
      params[k] = c[k];
      note(k, live.params[k], c[k]);
    }
  }
  if (Object.keys(params).length) body.params = params;
  for (const [decl, liveKey, reqKey] of [
    ['hnsw_config', 'hnsw_config', 'hnsw_config'],
    ['optimizers_config', 'optimizer_config', 'optimizers_config'],
  ] as const) {
    const want = c[decl] as Record<string, unknown> | undefined;
    if (!want) continue;
    const have = live[liveKey] ?? {};
    const d: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(want)) {
      if (val !== undefined && have[k] !== val) {
        d[k] = val;
        note(`${decl}.${k}`, have[k], val);
      }
    }
    if (Object.keys(d).length) body[reqKey] = d;
  }
  return changes.length ? { action: 'patch', body, changes } : { action: 'none' };
}
