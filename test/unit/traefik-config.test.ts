// Traefik config generation and validation: the production defaults render and pass the
// official schemas; each kind of bad value is refused with the inventory field it came from.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { traefikDefaults, type TraefikVars } from '../../roles/traefik/vars.ts';
import { renderTraefik, schemaProblems, semanticProblems, staticConfig, dynamicConfig, tlsConfig, TraefikConfigError, ACME_ROUTER } from '../../roles/traefik/config.ts';
import phoenix from '../../inventory.ts';

type T = TraefikVars['traefik'];
const base = (): T => traefikDefaults('example.test', { traefik: { http: 80, https: 443, dashboard: 8080 } }).traefik;

async function problems(edit: (t: T) => void): Promise<string[]> {
  const t = base();
  edit(t);
  try {
    await renderTraefik(t);
  } catch (e) {
    assert.instance(e, TraefikConfigError);
    return (e as TraefikConfigError).problems;
  }
  return [];
}

test('production defaults: pinned v3 release verified by its checksums file', () => {
  const t = base();
  assert.match(t.version, /^3\.\d+\.\d+$/);
  assert.equal(t.source, {
    url: `https://github.com/traefik/traefik/releases/download/v${t.version}/traefik_v${t.version}_linux_amd64.tar.gz`,
    checksumsUrl: `https://github.com/traefik/traefik/releases/download/v${t.version}/traefik_v${t.version}_checksums.txt`,
    binaryInArchive: 'traefik',
  });
  assert.is(t.swarm.enabled, true, 'the swarm provider is on (docs/ARCHITECTURE.md: providers file + swarm)');
});

test('the defaults render YAML that reads back as the generated objects and passes the schemas', async () => {
  const t = base();
  const r = await renderTraefik(t);
  assert.equal(parse(r.staticYaml), staticConfig(t));
  assert.equal(parse(r.dynamicYaml), dynamicConfig(t));
  assert.equal(parse(r.tlsYaml), tlsConfig(t));
  assert.match(r.staticYaml, /^# Managed by phoenix/);
  assert.match(r.staticYaml, /address: ":443"/);
  const s = parse(r.staticYaml);
  assert.equal(s.entryPoints.web.http.redirections.entryPoint, { to: 'websecure', scheme: 'https', permanent: true, priority: 1 });
  assert.equal(Object.keys(s.providers).sort(), ['file', 'swarm']);
  assert.equal(s.providers.file, { directory: '/etc/traefik/dynamic', watch: true });
  assert.equal(s.ping, { entryPoint: 'traefik' });
  assert.is(s.api.insecure, false);
  const d = parse(r.dynamicYaml);
  assert.equal(d.http.routers.portainer, { rule: 'Host(`portainer.example.test`)', entryPoints: ['websecure'], service: 'portainer', tls: {} });
  assert.equal(d.http.services.qdrant.loadBalancer.servers, [{ url: 'https://vm1002.example.test:6333' }]);
  assert.equal(d.http.services.portainer.loadBalancer.servers, [{ url: 'https://vm1001.example.test:9443' }]);
  // The ACME challenge goes to certbot on loopback, above the entrypoint's redirect.
  assert.equal(d.http.routers[ACME_ROUTER], { rule: 'PathPrefix(`/.well-known/acme-challenge/`)', entryPoints: ['web'], service: ACME_ROUTER, priority: 1000 });
  assert.ok(d.http.routers[ACME_ROUTER].priority > s.entryPoints.web.http.redirections.entryPoint.priority);
  assert.equal(parse(r.tlsYaml).tls.certificates, [{ certFile: '/etc/traefik/tls/traefik/fullchain.pem', keyFile: '/etc/traefik/tls/traefik/privkey.pem' }]);
});

test('the inventory composes the Traefik defaults', async () => {
  const t = (phoenix.vars as unknown as TraefikVars).traefik;
  assert.ok(t, 'inventory.ts has no traefik vars');
  assert.equal(t.routers.portainer!.rule, 'Host(`portainer.internal.thinkheads.ai`)');
  await renderTraefik(t);
});

test('the swarm provider is Docker TLS with client certificates, the server verified against the step-ca root alone', async () => {
  const t = base();
  const s = (await renderTraefik(t)).static as { providers: { swarm: Record<string, unknown> } };
  assert.equal(s.providers.swarm, {
    endpoint: 'tcp://vm1001.example.test:2376',
    tls: { ca: '/usr/local/share/ca-certificates/phoenix-root-ca.crt', cert: '/etc/traefik/docker/cert.pem', key: '/etc/traefik/docker/key.pem' },
    exposedByDefault: false,
    network: 'traefik-public',
    refreshSeconds: '15s',
  });
  assert.not.ok('insecureSkipVerify' in (s.providers.swarm.tls as object));
  t.swarm.enabled = false;
  assert.equal(Object.keys(((await renderTraefik(t)).static as { providers: object }).providers), ['file'], 'off: no swarm provider at all');
});

test('a router naming a missing service, entrypoint, middleware or certResolver is refused, by field', async () => {
  const p = await problems((t) => {
    t.routers.qdrant!.service = 'qdrnt';
    t.routers.portainer!.entryPoints = ['websecure', 'webscure'];
    t.routers.portainer!.middlewares = ['nope'];
    t.routers.portainer!.tls = { certResolver: 'stepca' };
  });
  assert.equal(p, [
    'traefik.routers.portainer.entryPoints[1]: no such entrypoint "webscure" (have: "web", "websecure", "traefik")',
    'traefik.routers.portainer.middlewares[0]: no such middleware "nope" (have: none)',
    'traefik.routers.portainer.tls.certResolver: no such certResolver "stepca" (have: none)',
    'traefik.routers.qdrant.service: no such service "qdrnt" (have: "portainer", "qdrant")',
  ]);
});

test('a rule that does not parse is refused with the router field and the parser message', async () => {
  const p = await problems((t) => void (t.routers.qdrant!.rule = 'Host(`qdrant.example.test`) && PathPrefix(`api`)'));
  assert.equal(p, ['traefik.routers.qdrant.rule: PathPrefix(`api`): must start with "/" in "Host(`qdrant.example.test`) && PathPrefix(`api`)"']);
});

test('providers: @internal, @swarm (only when the swarm provider is on), unknown providers', async () => {
  assert.equal(await problems((t) => void (t.routers.qdrant!.service = 'api@internal')), []);
  assert.equal(await problems((t) => void (t.routers.qdrant!.service = 'qdrant@file')), []);
  assert.equal(await problems((t) => void (t.routers.qdrant!.service = 'bogus@internal')).then((p) => p.length), 1);
  assert.match(
    (
      await problems((t) => {
        t.swarm.enabled = false;
        t.routers.qdrant!.service = 'qdrant@swarm';
      })
    )[0]!,
    /traefik\.routers\.qdrant\.service: "qdrant@swarm" comes from the swarm provider, which is off/,
  );
  assert.equal(
    await problems((t) => {
      t.swarm.enabled = true;
      t.routers.qdrant!.service = 'qdrant@swarm';
    }),
    [],
  );
  assert.match((await problems((t) => void (t.routers.qdrant!.service = 'x@docker')))[0]!, /unknown provider "@docker"/);
});

test('entrypoints, addresses, ping, redirect, dashboard and certificate settings are checked', async () => {
  const p = await problems((t) => {
    t.entryPoints.traefik!.address = ':443';
    t.entryPoints.web!.redirectTo!.entryPoint = 'secure';
    t.pingEntryPoint = 'admin';
    t.dashboard.allowFrom = ['10.0.0.0/99'];
  });
  assert.equal(p, [
    'traefik.entryPoints.web.redirectTo.entryPoint: no such entrypoint "secure" (have: "web", "websecure", "traefik")',
    'traefik.entryPoints.traefik.address: port 443 is already used by entrypoint "websecure"',
    'traefik.pingEntryPoint: no such entrypoint "admin" (have: "web", "websecure", "traefik")',
    'traefik.dashboard.allowFrom[0]: "10.0.0.0/99" is not an IP or CIDR range',
  ]);
  assert.equal(await problems((t) => void (t.entryPoints.websecure!.address = ':8402')), [
    'traefik.entryPoints.websecure.address: port 8402 is where certbot answers the ACME challenge',
  ]);
  assert.equal(await problems((t) => void (t.entryPoints.web!.address = '80')), ['traefik.entryPoints.web.address: "80" is not [host]:port']);
});

test('service URLs and reserved names', async () => {
  assert.equal(
    await problems((t) => {
      t.services.qdrant!.servers = ['vm1002:6333', 'http://vm1002:6333/api'];
      t.routers[ACME_ROUTER] = { rule: 'Path(`/`)', service: 'qdrant', entryPoints: ['web'] };
    }),
    [
      `traefik.routers.${ACME_ROUTER}: the name is reserved for the router phoenix generates`,
      'traefik.services.qdrant.servers[0]: "vm1002:6333" is not an http(s) URL',
      'traefik.services.qdrant.servers[1]: "http://vm1002:6333/api" has a path; Traefik ignores it (use a middleware)',
    ],
  );
});

test('schema errors (what the types cannot stop, e.g. YAML or JSON inventories) name the inventory field', async () => {
  const p = await problems((t) => {
    (t.log as { level: unknown }).level = 5;
    (t.services.qdrant as { passHostHeader: unknown }).passHostHeader = 'yes';
    (t.routers.qdrant as { priority: unknown }).priority = 1.5;
  });
  assert.ok(p.includes('traefik.log.level: must be string (schema, at static /log/level)'), p.join('\n'));
  assert.ok(p.includes('traefik.services.qdrant.passHostHeader: must be boolean (schema, at dynamic /http/services/qdrant/loadBalancer/passHostHeader)'), p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('traefik.routers.qdrant.priority: must be integer (schema')), p.join('\n'));
  // The oneOf branches a service did not take are not reported as noise.
  assert.not.ok(p.some((x) => /unknown key "loadBalancer"/.test(x)), p.join('\n'));
});

test('the schemas really check: an unknown key at any level is reported', async () => {
  const t = base();
  const s = staticConfig(t) as Record<string, Record<string, unknown>>;
  (s.entryPoints!.web as Record<string, unknown>).adress = ':81';
  const d = dynamicConfig(t) as { http: { routers: Record<string, Record<string, unknown>> } };
  d.http.routers.qdrant!.servce = 'x';
  const p = await schemaProblems({ static: s, dynamic: d });
  assert.ok(p.some((x) => x.startsWith('traefik.entryPoints.web.adress: unknown key "adress"')), p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('traefik.routers.qdrant.servce: unknown key "servce"')), p.join('\n'));
  assert.equal(semanticProblems(t), []);
});

test('the precompiled validators are generated from the schemas in the repo (gen-validators.ts)', async () => {
  const { validatorsSource, VALIDATORS_PATH } = await import('../../roles/traefik/gen-validators.ts');
  assert.ok(readFileSync(VALIDATORS_PATH, 'utf8') === validatorsSource(), 'roles/traefik/schemas/validators.generated.js is stale: run node --import=tsx roles/traefik/gen-validators.ts');
});

test.run();
