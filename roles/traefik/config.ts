// Traefik's configuration, generated from the typed inventory as objects and written as YAML:
// the static config (traefik.yml: entrypoints, providers, logs, ping, api) and the file
// provider's dynamic config (routers, services, middlewares, TLS). Before anything reaches a
// host it is checked against Traefik's official JSON schemas (precompiled: schemas/) and by the
// checks Traefik itself only logs at runtime (a router's service, entrypoints, middlewares and
// certResolver exist; rules parse). Every problem names the inventory field it came from.
import { isIP } from 'node:net';
import { ACME_CHALLENGE_PORT, type TraefikVars } from './vars.ts';
import { parseRule, RuleError } from './rules.ts';

type T = TraefikVars['traefik'];
type Obj = Record<string, unknown>;

/** File names inside traefik.dynamicDir. */
export const DYNAMIC_FILE = 'phoenix.yml';
export const TLS_FILE = 'phoenix-tls.yml';

/** Generated objects phoenix adds beside the inventory's own (their names are reserved). */
export const ACME_ROUTER = 'phoenix-acme-challenge';
export const DASHBOARD_ROUTER = 'phoenix-dashboard';
export const DASHBOARD_ALLOW = 'phoenix-dashboard-allow';
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';
/** Services Traefik provides itself. */
export const INTERNAL_SERVICES = ['api@internal', 'dashboard@internal', 'ping@internal', 'noop@internal', 'rest@internal', 'prometheus@internal'];

export class TraefikConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid Traefik config (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`);
    this.problems = problems;
    this.name = 'TraefikConfigError';
  }
}

/** Traefik's copies of its certificate and key (certbot's deploy hook keeps them up to date). */
export function certificatePaths(t: T): { dir: string; certFile: string; keyFile: string } {
  const dir = `${t.certificate.tlsDir}/${t.certificate.name}`;
  return { dir, certFile: `${dir}/fullchain.pem`, keyFile: `${dir}/privkey.pem` };
}

export function staticConfig(t: T): Obj {
  const entryPoints: Obj = {};
  for (const [name, ep] of Object.entries(t.entryPoints)) {
    const e: Obj = { address: ep.address };
    const http: Obj = {};
    if (ep.redirectTo) http.redirections = { entryPoint: { to: ep.redirectTo.entryPoint, scheme: ep.redirectTo.scheme, permanent: ep.redirectTo.permanent, priority: ep.redirectTo.priority } };
    if (ep.tls) http.tls = {};
    if (Object.keys(http).length) e.http = http;
    entryPoints[name] = e;
  }
  const providers: Obj = { file: { directory: t.dynamicDir, watch: true } };
  if (t.swarm.enabled) {
    providers.swarm = {
      endpoint: t.swarm.endpoint,
      tls: { ca: t.swarm.tls.ca, cert: t.swarm.tls.cert, key: t.swarm.tls.key },
      exposedByDefault: t.swarm.exposedByDefault,
      network: t.swarm.network,
      refreshSeconds: t.swarm.refreshSeconds,
    };
  }
  const out: Obj = {
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    log: { level: t.log.level, format: t.log.format },
  };
  if (t.accessLog) out.accessLog = { format: t.log.format };
  // The API and dashboard are only reachable through the router phoenix adds (never insecure mode).
  if (t.dashboard.enabled) out.api = { dashboard: true, insecure: false };
  out.ping = { entryPoint: t.pingEntryPoint };
  out.entryPoints = entryPoints;
  out.providers = providers;
  if (Object.keys(t.certResolvers).length) {
    const res: Obj = {};
    for (const [name, r] of Object.entries(t.certResolvers)) res[name] = { acme: { ...r.acme } };
    out.certificatesResolvers = res;
  }
  return out;
}

function middlewareObject(m: T['middlewares'][string]): Obj {
  return structuredClone(m) as Obj;
}

/** The file provider's routers, services and middlewares (and TLS options). */
export function dynamicConfig(t: T): Obj {
  const routers: Obj = {};
  const services: Obj = {};
  const middlewares: Obj = {};
  // certbot's http-01 answers on loopback; this router wins over the entrypoint's redirect.
  routers[ACME_ROUTER] = {
    rule: `PathPrefix(\`${ACME_CHALLENGE_PATH}\`)`,
    entryPoints: [t.certificate.challengeEntryPoint],
    service: ACME_ROUTER,
    priority: 1000,
  };
  services[ACME_ROUTER] = { loadBalancer: { servers: [{ url: `http://127.0.0.1:${ACME_CHALLENGE_PORT}` }] } };
  if (t.dashboard.enabled) {
    routers[DASHBOARD_ROUTER] = {
      rule: 'PathPrefix(`/api`) || PathPrefix(`/dashboard`)',
      entryPoints: [t.dashboard.entryPoint],
      service: 'api@internal',
      middlewares: [DASHBOARD_ALLOW],
    };
    middlewares[DASHBOARD_ALLOW] = { ipAllowList: { sourceRange: [...t.dashboard.allowFrom] } };
  }
  for (const [name, r] of Object.entries(t.routers)) {
    const o: Obj = { rule: r.rule, entryPoints: [...r.entryPoints], service: r.service };
    if (r.priority !== undefined) o.priority = r.priority;
    if (r.middlewares?.length) o.middlewares = [...r.middlewares];
    if (r.tls) o.tls = r.tls.certResolver ? { certResolver: r.tls.certResolver } : {};
    routers[name] = o;
  }
  for (const [name, s] of Object.entries(t.services)) {
    const lb: Obj = { servers: s.servers.map((url) => ({ url })) };
    if (s.passHostHeader !== undefined) lb.passHostHeader = s.passHostHeader;
    services[name] = { loadBalancer: lb };
  }
  for (const [name, m] of Object.entries(t.middlewares)) middlewares[name] = middlewareObject(m);
  const http: Obj = { routers, services };
  if (Object.keys(middlewares).length) http.middlewares = middlewares;
  return { http, tls: { options: { default: { minVersion: t.minTlsVersion, sniStrict: false } } } };
}

/** Traefik's certificate (and the default one for clients without SNI); written once the files exist. */
export function tlsConfig(t: T): Obj {
  const { certFile, keyFile } = certificatePaths(t);
  return { tls: { certificates: [{ certFile, keyFile }], stores: { default: { defaultCertificate: { certFile, keyFile } } } } };
}

// ---------------------------------------------------------------- semantic checks

const portOf = (address: string): number | undefined => {
  const m = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})(?:\/(?:tcp|udp))?$/.exec(address);
  const p = m ? Number(m[1]) : NaN;
  return p >= 1 && p <= 65535 ? p : undefined;
};

const cidrOk = (v: string) => {
  const [ip, bits, more] = v.split('/');
  const fam = isIP(ip ?? '');
  return !!fam && more === undefined && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (fam === 4 ? 32 : 128)));
};

/** What Traefik would only log at runtime, as a list of "<inventory field>: <problem>". */
export function semanticProblems(t: T): string[] {
  const p: string[] = [];
  const eps = Object.keys(t.entryPoints);
  const have = (xs: string[]) => (xs.length ? xs.map((x) => `"${x}"`).join(', ') : 'none');
  const needEp = (field: string, name: string) => {
    if (!Object.hasOwn(t.entryPoints, name)) p.push(`${field}: no such entrypoint "${name}" (have: ${have(eps)})`);
  };
  if (!eps.length) p.push('traefik.entryPoints: no entrypoints');
  const ports = new Map<number, string>();
  for (const [name, ep] of Object.entries(t.entryPoints)) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) p.push(`traefik.entryPoints.${name}: bad name (letters, digits, - and _ only)`);
    const port = portOf(ep.address);
    if (port === undefined) p.push(`traefik.entryPoints.${name}.address: "${ep.address}" is not [host]:port`);
    else if (ports.has(port)) p.push(`traefik.entryPoints.${name}.address: port ${port} is already used by entrypoint "${ports.get(port)}"`);
    else ports.set(port, name);
    if (ep.redirectTo) {
      needEp(`traefik.entryPoints.${name}.redirectTo.entryPoint`, ep.redirectTo.entryPoint);
      if (ep.redirectTo.entryPoint === name) p.push(`traefik.entryPoints.${name}.redirectTo.entryPoint: redirects to itself`);
    }
  }
  needEp('traefik.pingEntryPoint', t.pingEntryPoint);
  if (t.dashboard.enabled) {
    needEp('traefik.dashboard.entryPoint', t.dashboard.entryPoint);
    t.dashboard.allowFrom.forEach((r, i) => cidrOk(r) || p.push(`traefik.dashboard.allowFrom[${i}]: "${r}" is not an IP or CIDR range`));
    if (!t.dashboard.allowFrom.length) p.push('traefik.dashboard.allowFrom: empty (nobody could reach the dashboard); set dashboard.enabled: false instead');
  }
  needEp('traefik.certificate.challengeEntryPoint', t.certificate.challengeEntryPoint);
  if (ports.has(ACME_CHALLENGE_PORT)) p.push(`traefik.entryPoints.${ports.get(ACME_CHALLENGE_PORT)}.address: port ${ACME_CHALLENGE_PORT} is where certbot answers the ACME challenge`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(t.certificate.name)) p.push(`traefik.certificate.name: "${t.certificate.name}" is not a plain file name`);
  if (!/^\/[A-Za-z0-9._/-]+$/.test(t.certificate.tlsDir)) p.push(`traefik.certificate.tlsDir: "${t.certificate.tlsDir}" is not an absolute path`);
  for (const k of ['configFile', 'dynamicDir', 'binary'] as const) if (!/^\/[A-Za-z0-9._/-]+$/.test(t[k])) p.push(`traefik.${k}: "${t[k]}" is not an absolute path`);
  if (!/^[a-z_][a-z0-9_-]*$/.test(t.user)) p.push(`traefik.user: "${t.user}" is not a user name`);
  t.certificate.domains.forEach((d, i) => /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(d) || p.push(`traefik.certificate.domains[${i}]: "${d}" is not a DNS name`));
  if (!t.certificate.domains.length) p.push('traefik.certificate.domains: empty');
  for (const [name, r] of Object.entries(t.certResolvers)) {
    if (r.acme.httpChallenge) needEp(`traefik.certResolvers.${name}.acme.httpChallenge.entryPoint`, r.acme.httpChallenge.entryPoint);
    if (!/^https:\/\//.test(r.acme.caServer)) p.push(`traefik.certResolvers.${name}.acme.caServer: must be an https URL`);
  }
  if (t.swarm.enabled) {
    if (!/^tcp:\/\/[^/:]+:\d+$/.test(t.swarm.endpoint)) p.push(`traefik.swarm.endpoint: "${t.swarm.endpoint}" is not tcp://host:port`);
    for (const k of ['ca', 'cert', 'key'] as const) if (!t.swarm.tls[k].startsWith('/')) p.push(`traefik.swarm.tls.${k}: must be an absolute path`);
  }

  const reservedRouters = [ACME_ROUTER, ...(t.dashboard.enabled ? [DASHBOARD_ROUTER] : [])];
  for (const n of reservedRouters) if (Object.hasOwn(t.routers, n)) p.push(`traefik.routers.${n}: the name is reserved for the router phoenix generates`);
  if (Object.hasOwn(t.services, ACME_ROUTER)) p.push(`traefik.services.${ACME_ROUTER}: the name is reserved for the service phoenix generates`);
  if (t.dashboard.enabled && Object.hasOwn(t.middlewares, DASHBOARD_ALLOW)) p.push(`traefik.middlewares.${DASHBOARD_ALLOW}: the name is reserved for the middleware phoenix generates`);

  const services = Object.keys(t.services);
  const middlewares = Object.keys(t.middlewares);
  const resolvers = Object.keys(t.certResolvers);
  for (const [name, r] of Object.entries(t.routers)) {
    const f = `traefik.routers.${name}`;
    if (!/^[A-Za-z0-9_-]+$/.test(name)) p.push(`${f}: bad name (letters, digits, - and _ only)`);
    try {
      parseRule(r.rule);
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      p.push(`${f}.rule: ${e.message} in ${JSON.stringify(r.rule)}`);
    }
    if (!r.entryPoints.length) p.push(`${f}.entryPoints: empty (Traefik would listen on every entrypoint: name them)`);
    r.entryPoints.forEach((ep, i) => needEp(`${f}.entryPoints[${i}]`, ep));
    const svc = r.service;
    const [base, provider] = svc.split('@');
    if (provider === undefined || provider === 'file') {
      if (!Object.hasOwn(t.services, base!)) p.push(`${f}.service: no such service "${svc}" (have: ${have(services)})`);
    } else if (provider === 'internal') {
      if (!INTERNAL_SERVICES.includes(svc)) p.push(`${f}.service: no such internal service "${svc}" (have: ${have(INTERNAL_SERVICES)})`);
      if (svc === 'api@internal' && !t.dashboard.enabled) p.push(`${f}.service: api@internal needs traefik.dashboard.enabled`);
    } else if (provider === 'swarm') {
      if (!t.swarm.enabled) p.push(`${f}.service: "${svc}" comes from the swarm provider, which is off (traefik.swarm.enabled)`);
    } else p.push(`${f}.service: unknown provider "@${provider}" in "${svc}" (file, internal${t.swarm.enabled ? ', swarm' : ''})`);
    (r.middlewares ?? []).forEach((m, i) => {
      const [mb, mp] = m.split('@');
      if ((mp === undefined || mp === 'file') && !Object.hasOwn(t.middlewares, mb!)) p.push(`${f}.middlewares[${i}]: no such middleware "${m}" (have: ${have(middlewares)})`);
      else if (mp !== undefined && mp !== 'file' && !(mp === 'swarm' && t.swarm.enabled)) p.push(`${f}.middlewares[${i}]: unknown provider "@${mp}" in "${m}"`);
    });
    if (r.tls?.certResolver !== undefined && !Object.hasOwn(t.certResolvers, r.tls.certResolver))
      p.push(`${f}.tls.certResolver: no such certResolver "${r.tls.certResolver}" (have: ${have(resolvers)})`);
    if (r.priority !== undefined && !(Number.isInteger(r.priority) && r.priority >= 0)) p.push(`${f}.priority: must be a whole number >= 0`);
  }
  for (const [name, s] of Object.entries(t.services)) {
    const f = `traefik.services.${name}`;
    if (!/^[A-Za-z0-9_-]+$/.test(name)) p.push(`${f}: bad name (letters, digits, - and _ only)`);
    if (!s.servers.length) p.push(`${f}.servers: empty`);
    s.servers.forEach((u, i) => {
      let url: URL | undefined;
      try {
        url = new URL(u);
      } catch {
        /* reported below */
      }
      if (!url || !['http:', 'https:'].includes(url.protocol) || !url.hostname) p.push(`${f}.servers[${i}]: "${u}" is not an http(s) URL`);
      else if (url.pathname !== '/' || url.search) p.push(`${f}.servers[${i}]: "${u}" has a path; Traefik ignores it (use a middleware)`);
    });
  }
  for (const [name, m] of Object.entries(t.middlewares)) {
    const f = `traefik.middlewares.${name}`;
    const kinds = Object.keys(m);
    if (kinds.length !== 1) p.push(`${f}: exactly one kind per middleware, got ${kinds.length ? kinds.join(', ') : 'none'}`);
    if ('ipAllowList' in m) m.ipAllowList.sourceRange.forEach((r, i) => cidrOk(r) || p.push(`${f}.ipAllowList.sourceRange[${i}]: "${r}" is not an IP or CIDR range`));
  }
  return p;
}

// ---------------------------------------------------------------- schema checks

type SchemaError = { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> };

const seg = (ptr: string) =>
  ptr
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));

const dotted = (parts: string[]) => parts.map((x) => (/^\d+$/.test(x) ? `[${x}]` : `.${x}`)).join('');

/** The inventory field a generated config path came from. */
export function fieldOf(file: 'static' | 'dynamic' | 'tls', pointer: string): string {
  const s = seg(pointer);
  const [a, b, c, ...rest] = s;
  if (file === 'static') {
    if (a === 'entryPoints' && b) {
      if (c === 'http' && rest[0] === 'redirections') return `traefik.entryPoints.${b}.redirectTo${dotted(rest.slice(2))}`;
      return `traefik.entryPoints.${b}${dotted(s.slice(2))}`;
    }
    if (a === 'providers' && b === 'swarm') return `traefik.swarm${dotted(s.slice(2))}`;
    if (a === 'providers' && b === 'file') return 'traefik.dynamicDir';
    if (a === 'ping') return 'traefik.pingEntryPoint';
    if (a === 'api') return 'traefik.dashboard';
    if (a === 'log' || a === 'accessLog') return `traefik.log${dotted(s.slice(1))}`;
    if (a === 'certificatesResolvers' && b) return `traefik.certResolvers.${b}${dotted(s.slice(2))}`;
    return `traefik (static config ${pointer || '/'})`;
  }
  if (file === 'dynamic' && a === 'http' && c) {
    if (c === ACME_ROUTER) return 'traefik.certificate';
    if (c === DASHBOARD_ROUTER || c === DASHBOARD_ALLOW) return 'traefik.dashboard';
    if (b === 'routers') return `traefik.routers.${c}${dotted(rest)}`;
    if (b === 'services') {
      // loadBalancer.servers[i].url -> servers[i]
      if (rest[0] === 'loadBalancer' && rest[1] === 'servers') return `traefik.services.${c}.servers${rest[2] ? `[${rest[2]}]` : ''}`;
      if (rest[0] === 'loadBalancer') return `traefik.services.${c}${dotted(rest.slice(1))}`;
      return `traefik.services.${c}`;
    }
    if (b === 'middlewares') return `traefik.middlewares.${c}${dotted(rest)}`;
  }
  if (file === 'dynamic' && a === 'tls') return 'traefik.minTlsVersion';
  if (file === 'tls') return 'traefik.certificate';
  return `traefik (${file} config ${pointer || '/'})`;
}

function describe(e: SchemaError): string {
  if (e.keyword === 'additionalProperties') return `unknown key "${String(e.params.additionalProperty)}"`;
  if (e.keyword === 'enum') return `${e.message} (${(e.params.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')})`;
  return e.message ?? e.keyword;
}

/** Schema errors of one generated object, deepest first, one per path, named by inventory field. */
function schemaMessages(file: 'static' | 'dynamic' | 'tls', errors: SchemaError[] | null | undefined): string[] {
  if (!errors?.length) return [];
  // oneOf (services, middlewares) reports every branch: keep the most specific errors.
  const specific = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if');
  const list = specific.length ? specific : errors;
  const byPath = new Map<string, string[]>();
  for (const e of list) {
    const path = e.keyword === 'additionalProperties' ? `${e.instancePath}/${String(e.params.additionalProperty)}` : e.instancePath;
    const msgs = byPath.get(path) ?? [];
    const m = describe(e);
    if (!msgs.includes(m)) msgs.push(m);
    byPath.set(path, msgs);
  }
  // A key that a oneOf branch calls unknown, when the real branch reports something deeper in it, is noise.
  const paths = [...byPath.keys()];
  for (const path of paths) if (paths.some((q) => q !== path && q.startsWith(`${path}/`))) byPath.delete(path);
  return [...byPath].map(([path, msgs]) => `${fieldOf(file, path)}: ${msgs.join('; ')} (schema, at ${file} ${path || '/'})`);
}

let validators: Promise<typeof import('./schemas/validators.generated.js')> | undefined;

/** Schema problems of the generated objects (the precompiled validators load on first use). */
export async function schemaProblems(objs: { static: Obj; dynamic: Obj; tls?: Obj }): Promise<string[]> {
  validators ??= import('./schemas/validators.generated.js');
  const v = await validators;
  const out: string[] = [];
  if (!v.validateStatic(objs.static)) out.push(...schemaMessages('static', v.validateStatic.errors as SchemaError[]));
  if (!v.validateDynamic(objs.dynamic)) out.push(...schemaMessages('dynamic', v.validateDynamic.errors as SchemaError[]));
  if (objs.tls && !v.validateDynamic(objs.tls)) out.push(...schemaMessages('tls', v.validateDynamic.errors as SchemaError[]));
  return out;
}

export interface RenderedTraefik {
  static: Obj;
  dynamic: Obj;
  tls: Obj;
  staticYaml: string;
  dynamicYaml: string;
  tlsYaml: string;
}

const HEADER = ' Managed by phoenix (roles/traefik), generated from the inventory: local edits are overwritten.';

async function toYaml(obj: Obj, what: string): Promise<string> {
  const { Document, isScalar, visit } = await import('yaml');
  const doc = new Document(obj);
  // ":80" is a string to every YAML parser, but quoted it is obviously one.
  visit(doc, { Scalar: (_k, n) => void (isScalar(n) && typeof n.value === 'string' && n.value.startsWith(':') && (n.type = 'QUOTE_DOUBLE')) });
  doc.commentBefore = `${HEADER}\n ${what}`;
  return doc.toString({ lineWidth: 0 });
}

/** Generates and checks everything; throws TraefikConfigError listing every problem. */
export async function renderTraefik(t: T): Promise<RenderedTraefik> {
  const problems = semanticProblems(t);
  const objs = { static: staticConfig(t), dynamic: dynamicConfig(t), tls: tlsConfig(t) };
  problems.push(...(await schemaProblems(objs)));
  if (problems.length) throw new TraefikConfigError(problems);
  return {
    ...objs,
    staticYaml: await toYaml(objs.static, 'Static configuration: a change restarts Traefik.'),
    dynamicYaml: await toYaml(objs.dynamic, `Dynamic configuration (file provider, watched: no restart).`),
    tlsYaml: await toYaml(objs.tls, "Traefik's certificate from step-ca (certbot, roles/certs)."),
  };
}
