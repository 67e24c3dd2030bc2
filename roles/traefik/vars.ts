// Traefik's typed vars and production defaults (docs/ARCHITECTURE.md: LXC 102, the internal
// reverse proxy: entrypoints :80/:443, dashboard :8080, providers file + swarm, routes by
// hostname). The names mirror Traefik's own config keys, so an error about a generated file
// can name the inventory field it came from (traefik.routers.<name>.service, ...).
import type { BinarySource } from '../../runner/index.ts';
import { needsVars } from '../../runner/vars-schema.ts';

export const TRAEFIK_VERSION = '3.7.13';

/** Where certbot answers http-01 for Traefik's certificate (loopback only; Traefik forwards the challenge path there). */
export const ACME_CHALLENGE_PORT = 8402;

/** An HTTP router: a rule, the entrypoints it listens on, the service it forwards to. */
export interface TraefikRouter {
  /** Traefik v3 rule syntax, e.g. Host(`portainer.example`) && PathPrefix(`/api`). */
  rule: string;
  /** A service of `traefik.services`, an internal one (api@internal, ping@internal, noop@internal), or `<name>@swarm`. */
  service: string;
  entryPoints: string[];
  /** Higher wins; unset = the rule's length (Traefik's own default). */
  priority?: number;
  /** Names from `traefik.middlewares`, applied in order. */
  middlewares?: string[];
  /** TLS on this router (the websecure entrypoint). certResolver must name one of `traefik.certResolvers`. */
  tls?: { certResolver?: string };
}

/** An HTTP service: a load balancer over upstream URLs (http or https; https is verified against the system trust store). */
export interface TraefikService {
  servers: string[];
  /** Forward the client's Host header (Traefik's default: true). */
  passHostHeader?: boolean;
}

/** The middlewares the role knows how to type (one kind per middleware, as Traefik requires). */
export type TraefikMiddleware =
  | { ipAllowList: { sourceRange: string[] } }
  | { redirectScheme: { scheme: 'https' | 'http'; permanent?: boolean; port?: string } }
  | { headers: { customRequestHeaders?: Record<string, string>; customResponseHeaders?: Record<string, string>; stsSeconds?: number } };

export interface TraefikEntryPoint {
  /** e.g. ":443" */
  address: string;
  /** Redirect everything on this entrypoint to another one (web -> websecure). Low priority, so routers (the ACME challenge) still win. */
  redirectTo?: { entryPoint: string; scheme: 'https'; permanent: boolean; priority: number };
  /** TLS by default for every router on this entrypoint. */
  tls?: boolean;
}

/** An ACME certificate resolver in the static config (unused by default: see README, certificates). */
export interface TraefikCertResolver {
  acme: { email?: string; storage: string; caServer: string; httpChallenge?: { entryPoint: string } };
}

export interface TraefikVars {
  traefik: {
    version: string;
    /** Where the binary comes from: the vendor's release (checksummed), or a local file (the lab's stand-in). */
    source: BinarySource;
    binary: string;
    /** The dedicated system user Traefik runs as. */
    user: string;
    configFile: string;
    /** The file provider's directory (watched: dynamic changes need no restart). */
    dynamicDir: string;
    entryPoints: Record<string, TraefikEntryPoint>;
    /** /ping is served on this entrypoint. */
    pingEntryPoint: string;
    /** The dashboard and API (api@internal), on this entrypoint, limited to these source ranges. */
    dashboard: { enabled: boolean; entryPoint: string; allowFrom: string[] };
    log: { level: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL' | 'PANIC'; format: 'common' | 'json' };
    accessLog: boolean;
    /** The swarm provider: Docker's TLS API on the manager, client certificates verified both ways. */
    swarm: {
      enabled: boolean;
      endpoint: string;
      tls: { ca: string; cert: string; key: string };
      network: string;
      exposedByDefault: boolean;
      refreshSeconds: string;
    };
    certResolvers: Record<string, TraefikCertResolver>;
    routers: Record<string, TraefikRouter>;
    services: Record<string, TraefikService>;
    middlewares: Record<string, TraefikMiddleware>;
    /**
     * Traefik's own TLS certificate, from step-ca through roles/certs (certbot, http-01).
     * certbot answers the challenge on 127.0.0.1:ACME_CHALLENGE_PORT; Traefik routes
     * /.well-known/acme-challenge/ on `challengeEntryPoint` there. certbot's deploy hook copies
     * the certificate and key into `tlsDir`/<name>/ (root:traefik, 0640), which Traefik reads.
     */
    certificate: { name: string; domains: string[]; challengeEntryPoint: string; tlsDir: string };
    /** Minimum TLS version of every TLS router (Traefik's `tls.options.default`). */
    minTlsVersion: 'VersionTLS12' | 'VersionTLS13';
  };
}

/** The topology fields Traefik's defaults read. */
export interface TraefikTopology {
  traefik: { http: number; https: number; dashboard: number };
}

export function traefikDefaults(domain: string, topology: TraefikTopology): TraefikVars {
  const t = topology.traefik;
  const release = `https://github.com/traefik/traefik/releases/download/v${TRAEFIK_VERSION}`;
  const h = (name: string) => `Host(\`${name}.${domain}\`)`;
  return {
    traefik: {
      version: TRAEFIK_VERSION,
      // The vendor's release tarball, verified against the release's own checksums file.
      source: {
        url: `${release}/traefik_v${TRAEFIK_VERSION}_linux_amd64.tar.gz`,
        checksumsUrl: `${release}/traefik_v${TRAEFIK_VERSION}_checksums.txt`,
        binaryInArchive: 'traefik',
      },
      binary: '/usr/local/bin/traefik',
      user: 'traefik',
      configFile: '/etc/traefik/traefik.yml',
      dynamicDir: '/etc/traefik/dynamic',
      entryPoints: {
        web: { address: `:${t.http}`, redirectTo: { entryPoint: 'websecure', scheme: 'https', permanent: true, priority: 1 } },
        websecure: { address: `:${t.https}`, tls: true },
        traefik: { address: `:${t.dashboard}` },
      },
      pingEntryPoint: 'traefik',
      dashboard: { enabled: true, entryPoint: 'traefik', allowFrom: ['127.0.0.1/32', '10.0.0.0/24'] },
      log: { level: 'INFO', format: 'common' },
      accessLog: true,
      swarm: {
        // Docker's TLS API on the manager (roles/swarm/api.ts: tlsverify, a step-ca server
        // certificate); the server is verified against the step-ca root alone (not the system
        // bundle), and Traefik presents the step-ca client certificate the docker api client
        // play copies for it. Only services labelled traefik.enable=true are routed: Traefik runs
        // outside the swarm (LXC 102), so Portainer and Qdrant, published in host mode, are
        // routed by the file provider below (README: "Traefik and the swarm").
        enabled: true,
        endpoint: `tcp://vm1001.${domain}:2376`,
        tls: { ca: '/usr/local/share/ca-certificates/phoenix-root-ca.crt', cert: '/etc/traefik/docker/cert.pem', key: '/etc/traefik/docker/key.pem' },
        network: 'traefik-public',
        exposedByDefault: false,
        refreshSeconds: '15s',
      },
      certResolvers: {},
      routers: {
        portainer: { rule: h('portainer'), service: 'portainer', entryPoints: ['websecure'], tls: {} },
        qdrant: { rule: h('qdrant'), service: 'qdrant', entryPoints: ['websecure'], tls: {} },
      },
      services: {
        portainer: { servers: [`https://vm1001.${domain}:9443`] },
        // Qdrant serves HTTPS with a step-ca certificate for its node (roles/certs/qdrant.ts).
        qdrant: { servers: [`https://vm1002.${domain}:6333`] },
      },
      middlewares: {},
      certificate: {
        name: 'traefik',
        domains: [`traefik.${domain}`],
        challengeEntryPoint: 'web',
        tlsDir: '/etc/traefik/tls',
      },
      minTlsVersion: 'VersionTLS12',
    },
  };
}

/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const traefikVarsSchema = needsVars({ traefik: { required: ['source', 'binary', 'user', 'configFile', 'dynamicDir', 'entryPoints'] }, certs: {} });
