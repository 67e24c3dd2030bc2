// A Secret holds a value that must never reach a log, a diff, the JSON report or a
// process's argument list. Its value is only reachable through `reveal()`, and every
// string the runner prints or records passes through `redact()`.
import { inspect } from 'node:util';

const MASK = '********';
const known = new Set<string>();

export class Secret {
  readonly #value: string;
  readonly name: string;

  constructor(value: string, name = 'secret') {
    if (typeof value !== 'string') throw new TypeError(`Secret ${name}: value must be a string`);
    this.#value = value;
    this.name = name;
    // Very short values would redact innocent text everywhere; they are still masked
    // wherever the Secret object itself is printed.
    if (value.length >= 4) known.add(value);
  }

  /** The raw value. Only modules that pass it on stdin or into a 0600 file call this. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }
  toJSON(): string {
    return MASK;
  }
  [inspect.custom](): string {
    return `Secret(${this.name})`;
  }
}

export function secret(value: string, name?: string): Secret {
  return new Secret(value, name);
}

/** A secret that cannot be had (an unset variable): a mistake in the inventory, not a crash. */
export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

/** Reads a secret from an environment variable; a missing variable is an error naming it. */
export function secretFromEnv(variable: string): Secret {
  const v = process.env[variable];
  if (v === undefined || v === '') throw new SecretError(`secret: environment variable ${variable} is not set`);
  return new Secret(v, variable);
}

export function isSecret(v: unknown): v is Secret {
  return v instanceof Secret;
}

/** Replaces every known secret value in `text` by a mask. */
export function redact(text: string): string {
  if (known.size === 0 || !text) return text;
  let out = text;
  // Longest first: a secret that contains a shorter one must be masked whole.
  for (const v of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(v)) out = out.split(v).join(MASK);
  }
  return out;
}

/** Deep-redacts a JSON-able value (strings inside objects and arrays). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (value instanceof Secret) return MASK as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

/** The opposite, for a request body sent to a server: Secrets inside plain objects and arrays become their values. */
export function revealDeep(v: unknown): unknown {
  if (v instanceof Secret) return v.reveal();
  if (Array.isArray(v)) return v.map(revealDeep);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revealDeep(x)]));
  return v;
}

export const SECRET_MASK = MASK;
