// Compose files as typed objects: the subset of the Compose Specification the Phoenix stacks
// use, rendered to YAML with the `yaml` package (never string templates) and validated with
// ajv against the full spec (stacks/schemas/compose-spec.json, copied from the compose-spec
// project) before anything runs on a host.
//
// Exported API (stable; playbooks/sync.ts imports it):
//   type ComposeFile, ComposeService, ComposePort, ComposeVolumeMount, ComposeDeploy, ...
//   renderCompose(compose): string            YAML text, deterministic for the same object
//   validateCompose(compose, where): void     throws ComposeValidationError naming each field
//   parseCompose(text): ComposeFile           YAML 1.2 back to an object (for diffs and drift)
//   class ComposeValidationError              .errors: "services.qdrant.ports[0].mode: must be string"
import { createRequire } from 'node:module';
import validate from './compose-validator.generated.js';

export { COMPOSE_VERSION } from './types.ts';

export interface ComposePort {
  target: number;
  published?: number;
  protocol?: 'tcp' | 'udp';
  /** `host` publishes on the node running the task; `ingress` needs IPVS (absent in the lab). */
  mode?: 'host' | 'ingress';
}

export type ComposeVolumeMount =
  | { type: 'volume'; source: string; target: string; read_only?: boolean }
  | { type: 'bind'; source: string; target: string; read_only?: boolean };

export interface ComposeSecretRef {
  /** Key in the file's top-level `secrets`. */
  source: string;
  /** File name under /run/secrets/ (or an absolute path). */
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface ComposeDeploy {
  mode?: 'replicated' | 'global';
  replicas?: number;
  endpoint_mode?: 'vip' | 'dnsrr';
  placement?: { constraints?: string[]; preferences?: { spread: string }[]; max_replicas_per_node?: number };
  /** Service labels (what `docker service inspect` shows as Spec.Labels). */
  labels?: Record<string, string>;
  restart_policy?: { condition?: 'none' | 'on-failure' | 'any'; delay?: string; max_attempts?: number; window?: string };
  update_config?: { parallelism?: number; delay?: string; order?: 'start-first' | 'stop-first'; failure_action?: 'continue' | 'pause' | 'rollback' };
  resources?: { limits?: { cpus?: string; memory?: string }; reservations?: { cpus?: string; memory?: string } };
}

export interface ComposeService {
  image: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: ComposePort[];
  volumes?: ComposeVolumeMount[];
  networks?: string[];
  secrets?: ComposeSecretRef[];
  deploy?: ComposeDeploy;
  /** Container labels. */
  labels?: Record<string, string>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  working_dir?: string;
  user?: string;
  stop_grace_period?: string;
}

export interface ComposeNetwork {
  /** An existing network made outside the stack (e.g. the swarm role's traefik-public). */
  external?: boolean;
  name?: string;
  driver?: 'overlay';
  attachable?: boolean;
}

export interface ComposeVolume {
  name?: string;
  driver?: string;
  labels?: Record<string, string>;
}

export interface ComposeSecret {
  /** Made before the deploy (docker secrets are immutable); `name` is the swarm object's name. */
  external: true;
  name: string;
}

export interface ComposeFile {
  version: string;
  services: Record<string, ComposeService>;
  networks?: Record<string, ComposeNetwork>;
  volumes?: Record<string, ComposeVolume>;
  secrets?: Record<string, ComposeSecret>;
}

export class ComposeValidationError extends Error {
  readonly where: string;
  readonly errors: string[];
  constructor(
    where: string,
    errors: string[],
  ) {
    super(`${where}: invalid compose file (compose spec):\n  - ${errors.join('\n  - ')}`);
    this.where = where;
    this.errors = errors;
    this.name = 'ComposeValidationError';
  }
}

/** The spec this validates against (stacks/gen-validator.ts compiles it into compose-validator.generated.js). */
export const COMPOSE_SCHEMA_PATH = new URL('./schemas/compose-spec.json', import.meta.url);

/** A JSON pointer (/services/qdrant/ports/0/mode) as a field path (services.qdrant.ports[0].mode). */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

/** Validates against the compose spec; throws ComposeValidationError naming each bad field. */
export function validateCompose(compose: unknown, where = 'compose file'): void {
  const v = validate;
  if (v(compose)) {
    // The spec allows both; `docker stack deploy` needs a service image and at least one service.
    const c = compose as ComposeFile;
    const errs: string[] = [];
    if (!c.services || Object.keys(c.services).length === 0) errs.push('services: at least one service is required');
    for (const [n, s] of Object.entries(c.services ?? {})) if (!s.image) errs.push(`services.${n}.image: required for a swarm stack (no builds)`);
    for (const [n, s] of Object.entries(c.services ?? {}))
      for (const ref of s.secrets ?? []) if (!c.secrets?.[ref.source]) errs.push(`services.${n}.secrets: "${ref.source}" is not declared in the top-level secrets`);
    if (errs.length) throw new ComposeValidationError(where, errs);
    return;
  }
  const seen = new Set<string>();
  const errors: string[] = [];
  for (const e of v.errors ?? []) {
    // oneOf branches repeat themselves; keep the first message per field and keyword.
    const field = fieldPath(e.instancePath) || '(top level)';
    const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
    const line = `${field}: ${e.message}${extra}`;
    if (!seen.has(line)) errors.push(line);
    seen.add(line);
  }
  throw new ComposeValidationError(where, errors);
}

/** The YAML text of a compose object: keys in the object's order, no line folding, no anchors. */
export function renderCompose(compose: ComposeFile): string {
  const require = createRequire(import.meta.url);
  const YAML = require('yaml') as typeof import('yaml');
  return YAML.stringify(compose, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Reads compose YAML (as YAML 1.2) back into an object. */
export function parseCompose(text: string): ComposeFile {
  const require = createRequire(import.meta.url);
  const YAML = require('yaml') as typeof import('yaml');
  return YAML.parse(text, { version: '1.2' }) as ComposeFile;
}
