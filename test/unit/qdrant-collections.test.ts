import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImmutableFieldError, planCollection, type LiveCollectionConfig } from '../../roles/qdrant/collections.ts';
import type { QdrantCollection } from '../../roles/qdrant/vars.ts';

// CollectionInfo.config as Qdrant's GET /collections/{name} returns it (OpenAPI: CollectionConfig).
function live(over: Partial<LiveCollectionConfig['params']> = {}): LiveCollectionConfig {
  return {
    params: { vectors: { size: 4, distance: 'Cosine' }, shard_number: 1, replication_factor: 1, write_consistency_factor: 1, on_disk_payload: true, ...over },
    hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
    optimizer_config: { deleted_threshold: 0.2, indexing_threshold: 20000, default_segment_number: 0 },
  };
}
const decl = (over: Partial<QdrantCollection> = {}): QdrantCollection => ({ name: 'docs', vectors: { size: 4, distance: 'Cosine' }, ...over });

test('absent: created with the declared params (CreateCollection body)', () => {
  const p = planCollection(decl({ on_disk_payload: true, hnsw_config: { m: 32 } }), undefined);
  assert.is(p.action, 'create');
  assert.equal(p.action === 'create' && p.body, { vectors: { size: 4, distance: 'Cosine' }, on_disk_payload: true, hnsw_config: { m: 32 } });
});

test('same params: nothing to do; undeclared server settings are left alone', () => {
  assert.equal(planCollection(decl({ on_disk_payload: true }), live()), { action: 'none' });
});

test('mutable params that differ are patched (UpdateCollection body), and listed', () => {
  const p = planCollection(decl({ vectors: { size: 4, distance: 'Cosine', on_disk: true }, replication_factor: 2, hnsw_config: { m: 32 }, optimizers_config: { indexing_threshold: 1000 } }), live());
  assert.is(p.action, 'patch');
  if (p.action !== 'patch') return;
  assert.equal(p.body, { vectors: { '': { on_disk: true } }, params: { replication_factor: 2 }, hnsw_config: { m: 32 }, optimizers_config: { indexing_threshold: 1000 } });
  assert.equal(p.changes, ['vectors.on_disk false -> true', 'replication_factor 1 -> 2', 'hnsw_config.m 16 -> 32', 'optimizers_config.indexing_threshold 20000 -> 1000']);
});

test('immutable params that differ: an error naming the field; never a drop or recreate', () => {
  for (const [d, field] of [
    [decl({ vectors: { size: 8, distance: 'Cosine' } }), 'vectors.size'],
    [decl({ vectors: { size: 4, distance: 'Dot' } }), 'vectors.distance'],
    [decl({ shard_number: 2 }), 'shard_number'],
  ] as const) {
    try {
      planCollection(d, live());
      assert.unreachable(`no error for ${field}`);
    } catch (e) {
      assert.instance(e, ImmutableFieldError);
      assert.is((e as ImmutableFieldError).field, field);
      assert.match((e as Error).message, new RegExp(`qdrant collection "docs": ${field.replace('.', '\\.')} is `));
      assert.match((e as Error).message, /never drops or recreates/);
    }
  }
});

test.run();
