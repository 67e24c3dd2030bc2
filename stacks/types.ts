// What a stack is, for both deploy paths: `docker stack deploy` on the manager (site.ts,
// stacks/docker.ts) and the Portainer API (`phoenix sync`, playbooks/sync.ts).
//
// Exported API (stable; playbooks/sync.ts imports it):
//   interface StackDefinition { name, compose, env?, secrets?, health? }
//     name     swarm stack name (`docker stack deploy ... <name>`; Portainer's stack Name)
//     compose  typed compose object (stacks/compose.ts); render with renderCompose()
//     env      non-secret environment for the stack file (Portainer's Env [{name,value}]);
//              the Phoenix stacks put everything in the compose file and leave it empty
//     secrets  docker secrets the compose file refers to (`external: true`): key -> {name, value}.
//              They must exist in the swarm before the deploy: docker secrets are immutable,
//              so `name` carries a fingerprint of the value and a new value is a new secret.
//     health   the product's own readiness endpoints, probed after every task is Running
//   type SecretRef = Secret | { env: NAME } | { file: PATH }   a secret in typed vars, read lazily
//   resolveSecret(ref, field): Secret        reads it; a missing env var/file names `field`
//   secretName(stack, key, value): string    `<stack>_<key>_<fingerprint>`
//   stackSecret(stack, key, ref, field)      {name, value} for StackDefinition.secrets
//   primeStackSecret(stack, key, ref, field) its fingerprint beforehand, in the thread pool (a role's prepare)
import { readFileSync } from 'node:fs';
import { createHash, scrypt, scryptSync } from 'node:crypto';
import { resolve } from 'node:path';
import { Secret } from '../runner/secret.ts';
import type { ComposeFile } from './compose.ts';

export type { ComposeFile } from './compose.ts';

/** `docker stack deploy` (docker/cli 20.10) still wants a version key; 3.8 has everything used here. */
export const COMPOSE_VERSION = '3.8';

/** A secret in typed vars. Env and file references are read only when a task needs the value,
 * so an inventory loads (e.g. for --list-tasks) without them. */
export type SecretRef = Secret | { env: string } | { file: string };

export function resolveSecret(ref: SecretRef, field: string): Secret {
  if (ref instanceof Secret) return ref;
  if ('env' in ref) {
    const v = process.env[ref.env];
    if (v === undefined || v === '') throw new Error(`${field}: environment variable ${ref.env} is not set`);
    return new Secret(v, field);
  }
  let v: string;
  try {
    v = readFileSync(resolve(ref.file), 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new Error(`${field}: cannot read secret file ${ref.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!v) throw new Error(`${field}: secret file ${ref.file} is empty`);
  return new Secret(v, field);
}

export interface StackSecret {
  /** The swarm secret's name (what compose's `secrets.<key>.name` says). */
  name: string;
  value: Secret;
}

export interface StackHealth {
  /** The product, for messages: "qdrant /readyz". */
  what: string;
  /** Probed with curl on the swarm manager (TLS verified against the system trust store). */
  url: string;
  /** Expected HTTP status (default 200). */
  status?: number;
}

export interface StackDefinition {
  name: string;
  compose: ComposeFile;
  env?: Record<string, string>;
  secrets?: Record<string, StackSecret>;
  health?: StackHealth[];
}

/**
 * A secret's swarm name: `<stack>_<key>_<10 hex>`. The fingerprint is scrypt (N=2^14) of the
 * value salted with stack and key, truncated to 40 bits: it changes when the value changes (so
 * a new value becomes a new immutable docker secret and a redeploy), and it is slow and short
 * enough to be of no use for guessing a high-entropy value. Keep secrets random and long.
 */
export function secretName(stack: string, key: string, value: Secret): string {
  // Computed once per process (~70 ms of CPU each: site's portainer play asks for the same one in
  // its bootstrap and stack tasks), or beforehand by primeStackSecret() (a role's prepare).
  const { salt, id } = fingerprintKey(stack, key, value);
  let fp = fingerprints.get(id);
  if (fp === undefined) fingerprints.set(id, (fp = scryptSync(value.reveal(), salt, 5, SCRYPT).toString('hex')));
  return `${stack}_${key}_${fp}`;
}
/** Keyed by a SHA-256 of salt and value, so the map holds no value. */
const fingerprints = new Map<string, string>();
const SCRYPT = { N: 1 << 14, r: 8, p: 1 };
function fingerprintKey(stack: string, key: string, value: Secret): { salt: string; id: string } {
  const salt = `phoenix-stack-secret:${stack}:${key}`;
  return { salt, id: createHash('sha256').update(salt).update('\0').update(value.reveal()).digest('hex') };
}

/**
 * stackSecret()'s fingerprint, computed in libuv's thread pool (off the event loop) for a later
 * stackSecret() of the same stack, key and value to find done: a role's `prepare` (it starts when
 * the run starts). Never rejects: a secret that cannot be read now (an unset variable, a file a
 * task writes later) is left to stackSecret(), which says why when its task needs it.
 */
export async function primeStackSecret(stack: string, key: string, ref: SecretRef, field: string): Promise<void> {
  let value: Secret;
  try {
    value = resolveSecret(ref, field);
  } catch {
    return;
  }
  const { salt, id } = fingerprintKey(stack, key, value);
  if (fingerprints.has(id)) return;
  const fp = await new Promise<string | undefined>((res) => scrypt(value.reveal(), salt, 5, SCRYPT, (e, b) => res(e ? undefined : b.toString('hex'))));
  if (fp !== undefined) fingerprints.set(id, fp);
}

export function stackSecret(stack: string, key: string, ref: SecretRef, field: string): StackSecret {
  const value = resolveSecret(ref, field);
  return { name: secretName(stack, key, value), value };
}
