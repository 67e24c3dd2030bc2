import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ComposeValidationError, parseCompose, renderCompose, validateCompose, type ComposeFile } from '../../stacks/compose.ts';
import { COMPOSE_VALIDATOR_PATH, composeValidatorSource } from '../../stacks/gen-validator.ts';
import { qdrantStack } from '../../stacks/qdrant.ts';
import { portainerStack } from '../../stacks/portainer.ts';
import { secretName, resolveSecret } from '../../stacks/types.ts';
import { secret } from '../../runner/index.ts';
import { swarmDefaults } from '../../roles/swarm/vars.ts';
import { qdrantDefaults } from '../../roles/qdrant/vars.ts';
import { portainerDefaults } from '../../roles/portainer/vars.ts';

const topo = { swarmManager: { address: '10.0.0.111' }, swarmWorker: { address: '10.0.0.102' } };
function vars() {
  const v = { domain: 'example.test', ...swarmDefaults(topo, 'example.test'), ...qdrantDefaults(), ...portainerDefaults('example.test') };
  v.qdrant.apiKey = secret('qdrant-key-0123456789abcdef');
  v.portainer.adminPassword = secret('portainer-pw-0123456789');
  return v;
}

function errorsOf(c: unknown): string[] {
  try {
    validateCompose(c, 'test stack');
  } catch (e) {
    assert.instance(e, ComposeValidationError);
    return (e as ComposeValidationError).errors;
  }
  return [];
}

test('the generated compose validator is fresh (npm: node --import=tsx stacks/gen-validator.ts)', () => {
  assert.is(readFileSync(COMPOSE_VALIDATOR_PATH, 'utf8'), composeValidatorSource());
});

test('both stacks validate against the compose spec and round-trip through YAML', () => {
  for (const d of [qdrantStack(vars()), portainerStack(vars())]) {
    validateCompose(d.compose, d.name);
    const text = renderCompose(d.compose);
    assert.equal(parseCompose(text), JSON.parse(JSON.stringify(d.compose)));
    // Rendering is deterministic: the same vars give the same bytes (what deploy compares).
    assert.is(renderCompose(d.compose), text);
  }
});

test('qdrant: placed by node label, dnsrr, ports in host mode, named volume, the key only as a secret', () => {
  const d = qdrantStack(vars());
  const s = d.compose.services.qdrant;
  assert.equal(s.deploy?.placement?.constraints, ['node.labels.phoenix.qdrant == true']);
  assert.is(s.deploy?.endpoint_mode, 'dnsrr');
  assert.equal(s.ports?.map((p) => [p.published, p.mode]), [[6333, 'host'], [6334, 'host']]);
  assert.equal(s.volumes, [
    { type: 'volume', source: 'storage', target: '/qdrant/storage' },
    // Qdrant's certificate (certbot on its node), read-only, for its own TLS settings.
    { type: 'bind', source: '/etc/letsencrypt', target: '/etc/letsencrypt', read_only: true },
  ]);
  assert.is(s.environment?.QDRANT__SERVICE__ENABLE_TLS, 'true');
  assert.is(s.environment?.QDRANT__TLS__CERT, '/etc/letsencrypt/live/qdrant/fullchain.pem');
  assert.is(s.environment?.QDRANT__TLS__KEY, '/etc/letsencrypt/live/qdrant/privkey.pem');
  assert.is(d.compose.volumes?.storage.name, 'qdrant_storage');
  const text = renderCompose(d.compose);
  assert.not.ok(text.includes('qdrant-key-0123456789abcdef'), 'the API key is not in the compose file');
  assert.match(d.compose.secrets!.api_key.name, /^qdrant_service_api_key_[0-9a-f]{10}$/);
  assert.is(d.secrets!.api_key.value.reveal(), 'qdrant-key-0123456789abcdef');
  // Over TLS, by the name in Qdrant's certificate.
  assert.equal(d.health, [{ what: 'qdrant /readyz', url: 'https://vm1002.example.test:6333/readyz' }]);
});

test('portainer: server on the manager with --admin-password-file, agent global; password not in the file', () => {
  const d = portainerStack(vars());
  const s = d.compose.services.portainer;
  assert.ok(s.deploy?.placement?.constraints?.includes('node.role == manager'));
  assert.is(d.compose.services.agent.deploy?.mode, 'global');
  const i = s.command!.indexOf('--admin-password-file');
  assert.is(s.command![i + 1], '/run/secrets/portainer_admin_password');
  assert.not.ok(renderCompose(d.compose).includes('portainer-pw-0123456789'));
});

test('a new secret value is a new secret name (docker secrets are immutable); the same value the same name', () => {
  const a = secretName('s', 'k', secret('value-one-xxxxxxxx'));
  assert.is(secretName('s', 'k', secret('value-one-xxxxxxxx')), a);
  assert.is.not(secretName('s', 'k', secret('value-two-xxxxxxxx')), a);
  assert.is.not(secretName('s', 'other', secret('value-one-xxxxxxxx')), a);
});

test('a lazily read secret: a missing env var names the field, only when read', () => {
  delete process.env.PHX_TEST_UNSET;
  const v = vars();
  v.qdrant.apiKey = { env: 'PHX_TEST_UNSET' };
  assert.throws(() => qdrantStack(v), /qdrant\.apiKey: environment variable PHX_TEST_UNSET is not set/);
  process.env.PHX_TEST_SET = 'from-env-value-123';
  assert.is(resolveSecret({ env: 'PHX_TEST_SET' }, 'f').reveal(), 'from-env-value-123');
  assert.throws(() => resolveSecret({ file: '/nonexistent/phx' }, 'portainer.adminPassword'), /portainer\.adminPassword: cannot read secret file \/nonexistent\/phx/);
});

test('validation errors name the field', () => {
  const bad = { version: '3.8', services: { web: { image: 'x', ports: [{ target: 80, mode: 3 }], bogus: true } } };
  const errs = errorsOf(bad);
  assert.ok(errs.includes('services.web.ports[0].mode: must be string'), errs.join('\n'));
  assert.ok(errs.includes('services.web: must NOT have additional properties "bogus"'), errs.join('\n'));
  assert.equal(errorsOf({ version: '3.8', services: { web: { ports: [] } } } as unknown as ComposeFile), ['services.web.image: required for a swarm stack (no builds)']);
  const undeclared = { version: '3.8', services: { web: { image: 'x', secrets: [{ source: 'nope' }] } } };
  assert.equal(errorsOf(undeclared), ['services.web.secrets: "nope" is not declared in the top-level secrets']);
  assert.equal(errorsOf(qdrantStack(vars()).compose), []);
});

test.run();
