// Checking a module call's arguments (schemas.ts, precompiled into schemas.generated.js).
//
// A module factory calls invalidArgs() first. With bad arguments it returns an Action that
// carries an ArgumentError and does nothing but throw it: the factory itself never throws, so
// a role file with a typo still imports, and the planner (runner/plan-check.ts) reports the
// error naming the play, the role and the task before any host is contacted. A call built by
// `do: ({ vars }) => file({...})` is checked when the task runs, before the module does anything.
import type { ErrorObject } from 'ajv';
import { redact } from '../secret.ts';
import type { Action } from '../types.ts';
import * as validators from './schemas.generated.js';
import { moduleSchemas, type ModuleName } from './schemas.ts';

export class ArgumentError extends Error {
  readonly module: string;
  readonly problems: string[];
  constructor(
    module: string,
    problems: string[],
  ) {
    super(`${module}: ${problems.join('; ')}`);
    this.module = module;
    this.problems = problems;
    this.name = 'ArgumentError';
  }
}

/** An Action whose arguments were refused: running it throws its ArgumentError. */
export interface InvalidAction extends Action {
  readonly argumentError: ArgumentError;
}

/** The ArgumentError an action carries, if its arguments were refused. */
export function argumentErrorOf(a: unknown): ArgumentError | undefined {
  const e = a && typeof a === 'object' ? (a as Partial<InvalidAction>).argumentError : undefined;
  return e instanceof ArgumentError ? e : undefined;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The closest of `known` to `word`, when it is close enough to be a likely typo. */
export function didYouMean(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === word.toLowerCase() ? 0 : distance(word, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3))) return best;
  // A prefix: "sha" for "sha256".
  return word.length >= 3 ? known.find((k) => k.toLowerCase().startsWith(word.toLowerCase())) : undefined;
}

const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(redact(v.length > 60 ? `${v.slice(0, 57)}...` : v));
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
};

/**
 * Whether a permission mode is one a person would ask for: the owner can read, the group has
 * no more than the owner and others no more than the group, and nobody may write without
 * reading. `mode: 755` (decimal) is 0o1363 and fails this; 0o755 (493) passes.
 */
function plausibleMode(m: number): boolean {
  const [u, g, o] = [(m >> 6) & 7, (m >> 3) & 7, m & 7];
  const writeOnly = (x: number) => (x & 2) !== 0 && (x & 4) === 0;
  return (u & 4) !== 0 && (g & ~u) === 0 && (o & ~g) === 0 && ![u, g, o].some(writeOnly);
}

/**
 * A number that was meant as octal but written in decimal: `mode: 755`. JavaScript has no way
 * to tell `0o644` (420) from `420`, so: its decimal digits are all octal digits, it is in
 * 100..7777, and the mode it would set is not one a person asks for (755 would set 1363).
 */
export function decimalMode(n: number): boolean {
  return Number.isInteger(n) && n >= 100 && n <= 7777 && /^[0-7]+$/.test(String(n)) && !plausibleMode(n);
}

function modeProblem(field: string, v: unknown): string | undefined {
  if (typeof v === 'number' && decimalMode(v)) return `${field}: ${v} is decimal; write '${String(v).padStart(4, '0')}' or 0o${v}`;
  return undefined;
}

function fieldOf(e: ErrorObject): string {
  return e.instancePath.replace(/^\//, '').replace(/\//g, '.');
}

function valueAt(data: unknown, path: string): unknown {
  let v = data;
  for (const k of path.split('/').slice(1)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return v;
}

/** Property names allowed at an ajv schema path such as "#/properties/source/additionalProperties". */
function knownAt(module: ModuleName, schemaPath: string): string[] {
  let s: unknown = moduleSchemas[module];
  for (const k of schemaPath.replace(/^#\//, '').split('/').slice(0, -1)) s = (s as Record<string, unknown>)?.[k];
  const props = (s as { properties?: object } | undefined)?.properties;
  return props ? Object.keys(props) : [];
}

/** ajv's errors as one readable line each, naming the field. */
function describe(module: ModuleName, data: unknown, errors: ErrorObject[]): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const field = fieldOf(e);
    const v = valueAt(data, e.instancePath);
    const name = field || 'the arguments';
    switch (e.keyword) {
      case 'additionalProperty':
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const known = knownAt(module, e.schemaPath);
        const guess = didYouMean(key, known);
        const at = field ? `${field}.${key}` : key;
        out.push(`unknown field "${at}"${guess ? ` — did you mean "${guess}"?` : ` (known: ${known.join(', ')})`}`);
        break;
      }
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        out.push(`${field ? `${field}.` : ''}${key} is required`);
        break;
      }
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
        const guess = typeof v === 'string' ? didYouMean(v, allowed) : undefined;
        out.push(`${name} ${show(v)} is not one of ${allowed.join(', ')}${guess ? ` — did you mean "${guess}"?` : ''}`);
        break;
      }
      case 'type': {
        const want = [(e.params as { type: string | string[] }).type].flat().join(' or ');
        out.push(field ? `${field} must be ${want === 'integer' ? 'a whole number' : `a ${want}`} (got ${show(v)})` : `the arguments must be an object (got ${show(v)})`);
        break;
      }
      case 'pattern':
        out.push(/(^|\.)mode$/.test(field) ? `${field} ${show(v)} is not octal digits such as "0644" (symbolic modes are not supported)` : `${field} ${show(v)} does not match ${(e.params as { pattern: string }).pattern}`);
        break;
      case 'minimum':
      case 'maximum':
        out.push(/(^|\.)mode$/.test(field) ? `${field} ${show(v)} is out of range (0 to 0o7777)` : `${name} ${e.message ?? 'is out of range'} (got ${show(v)})`);
        break;
      default:
        out.push(`${name} ${e.message ?? 'is invalid'}${typeof v === 'number' || typeof v === 'string' ? ` (got ${show(v)})` : ''}`);
    }
  }
  return [...new Set(out)];
}

/** The problems with a module's options object (empty when they are fine). */
export function argProblems(module: ModuleName, options: unknown): string[] {
  const validate = validators[module];
  const problems: string[] = [];
  const o = options as Record<string, unknown> | undefined;
  const mp = o && typeof o === 'object' ? modeProblem('mode', o.mode) : undefined;
  if (mp) problems.push(mp);
  if (!validate(options)) problems.push(...describe(module, options, validate.errors ?? []).filter((p) => !(mp && /^mode\b/.test(p))));
  return problems;
}

/**
 * The first line of every module factory: undefined when the arguments are fine, else an
 * Action that carries the ArgumentError (see the top of this file). `extra` are problems the
 * factory found in its positional arguments (e.g. shell's command).
 */
export function invalidArgs(module: ModuleName, options: unknown, extra: string[] = []): InvalidAction | undefined {
  const problems = [...extra, ...argProblems(module, options ?? {})];
  if (!problems.length) return undefined;
  const argumentError = new ArgumentError(module, problems);
  return {
    module,
    summary: `${module} (invalid arguments)`,
    argumentError,
    async run(): Promise<never> {
      throw argumentError;
    },
  };
}
