import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stackDrift, type LiveService } from '../../stacks/drift.ts';
import { qdrantStack } from '../../stacks/qdrant.ts';
import { secret } from '../../runner/index.ts';
import { swarmDefaults } from '../../roles/swarm/vars.ts';
import { qdrantDefaults } from '../../roles/qdrant/vars.ts';

const topo = { swarmManager: { address: '192.168.201.111' }, swarmWorker: { address: '192.168.201.102' } };
function stack() {
  const v = { domain: 'internal.thinkheads.ai', ...swarmDefaults(topo, 'internal.thinkheads.ai'), ...qdrantDefaults() };
  v.qdrant.image = 'phoenix/qdrant-standin:lab';
  v.qdrant.apiKey = secret('unit-test-api-key-0123456789');
  // The live service below was recorded from a deploy without Qdrant's TLS settings.
  v.qdrant.tls.enabled = false;
  return qdrantStack(v);
}

/** What `docker service inspect` showed in the lab after `docker stack deploy` of that file. */
function live(secretName: string): LiveService {
  return JSON.parse(
    JSON.stringify({
      Spec: {
        Name: 'qdrant_service_qdrant',
        Labels: {
          'com.docker.stack.image': 'phoenix/qdrant-standin:lab',
          'com.docker.stack.namespace': 'qdrant_service',
        },
        TaskTemplate: {
          ContainerSpec: {
            Image: 'phoenix/qdrant-standin:lab',
            Labels: { 'com.docker.stack.namespace': 'qdrant_service' },
            Command: ['/bin/sh', '-c', 'QDRANT__SERVICE__API_KEY="$(cat /run/secrets/qdrant_api_key)" && export QDRANT__SERVICE__API_KEY && exec ./entrypoint.sh'],
            Env: ['QDRANT__LOG_LEVEL=INFO', 'QDRANT__SERVICE__GRPC_PORT=6334', 'QDRANT__SERVICE__HTTP_PORT=6333'],
            Mounts: [{ Type: 'volume', Source: 'qdrant_storage', Target: '/qdrant/storage' }],
            Secrets: [{ File: { Name: 'qdrant_api_key' }, SecretName: secretName }],
          },
          Placement: { Constraints: ['node.labels.phoenix.qdrant == true'] },
        },
        Mode: { Replicated: { Replicas: 1 } },
        EndpointSpec: {
          Mode: 'dnsrr',
          Ports: [
            { Protocol: 'tcp', TargetPort: 6333, PublishedPort: 6333, PublishMode: 'host' },
            { Protocol: 'tcp', TargetPort: 6334, PublishedPort: 6334, PublishMode: 'host' },
          ],
        },
      },
    }),
  );
}

test('the services docker made from the compose file are no drift ($$ is a literal $)', () => {
  const d = stack();
  assert.equal(stackDrift(d.compose, d.name, [live(d.secrets!.api_key.name)]), []);
});

test('a service changed by hand is drift, field by field', () => {
  const d = stack();
  const l = live(d.secrets!.api_key.name);
  l.Spec.TaskTemplate!.ContainerSpec!.Image = 'phoenix/qdrant-standin:other@sha256:' + 'a'.repeat(64);
  l.Spec.TaskTemplate!.ContainerSpec!.Env!.push('EXTRA=1');
  l.Spec.Mode = { Replicated: { Replicas: 3 } };
  l.Spec.Labels!['traefik.enable'] = 'true'; // a label added by hand
  l.Spec.TaskTemplate!.Placement!.Constraints = [];
  l.Spec.EndpointSpec!.Ports![0].PublishMode = 'ingress';
  const drift = stackDrift(d.compose, d.name, [l]).join('\n');
  for (const field of ['image', 'env', 'mode', 'labels', 'constraints', 'ports'])
    assert.match(drift, new RegExp(`^qdrant_service_qdrant: ${field} `, 'm'), `${field} missing in:\n${drift}`);
  assert.match(drift, /mode "replicated 3" -> "replicated 1"/);
});

test('a missing service and an extra one are drift; a digest pinned by docker is not', () => {
  const d = stack();
  assert.equal(stackDrift(d.compose, d.name, []), ['qdrant_service_qdrant: not running']);
  const l = live(d.secrets!.api_key.name);
  l.Spec.TaskTemplate!.ContainerSpec!.Image = `phoenix/qdrant-standin:lab@sha256:${'b'.repeat(64)}`;
  const extra = live('x');
  extra.Spec.Name = 'qdrant_service_old';
  assert.equal(stackDrift(d.compose, d.name, [l, extra]), ['qdrant_service_old: not in the compose file (prune removes it)']);
});

test('a new secret value (a new secret name) is drift of the live service', () => {
  const d = stack();
  assert.equal(stackDrift(d.compose, d.name, [live('qdrant_service_api_key_0000000000')]).length, 1);
});

test.run();
