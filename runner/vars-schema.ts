// A role's `vars` schema, checked at planning time against every host the role will run on.
//
// A JSON Schema is checked by a small interpreter of the keywords roles need (type, required,
// properties, additionalProperties, items, enum, const, minLength, maxLength, pattern,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, minItems, maxItems, anyOf, oneOf),
// so a run never loads or compiles ajv for it (ajv costs ~100 ms at startup). A schema using
// any other keyword is compiled by ajv instead (once, when first checked). A function is taken
// as an ajv validate function (compiled or standalone): `(vars) => boolean`, with `.errors`.
// A Secret counts as a string (its value is never read here).
import { createRequire } from 'node:module';
import { isSecret } from './secret.ts';

export type JsonSchema = { [keyword: string]: unknown };
export type ValidateFunction = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Record<string, unknown>; keyword: string }[] | null };
export type VarsSchema = JsonSchema | ValidateFunction;

const KNOWN = new Set([
  'type', 'required', 'properties', 'additionalProperties', 'items', 'enum', 'const', 'minLength', 'maxLength', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems', 'anyOf', 'oneOf',
  'description', 'title', 'default', 'examples', '$comment', '$schema',
]);

function usesOnlyKnown(s: unknown): boolean {
  if (!s || typeof s !== 'object') return true;
  if (Array.isArray(s)) return s.every(usesOnlyKnown);
  for (const [k, v] of Object.entries(s)) {
    if (!KNOWN.has(k)) return false;
    if (k === 'properties') {
      if (!Object.values(v as object).every(usesOnlyKnown)) return false;
    } else if (['items', 'additionalProperties', 'anyOf', 'oneOf'].includes(k) && !usesOnlyKnown(v)) return false;
  }
  return true;
}

const show = (v: unknown): string => {
  if (isSecret(v)) return 'a Secret';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  return v === undefined ? 'nothing' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
};

function typeOk(t: string, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string' || isSecret(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return Number.isInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array':
      return Array.isArray(v);
    case 'object':
      return !!v && typeof v === 'object' && !Array.isArray(v) && !isSecret(v);
    default:
      return true;
  }
}

/** Problems of `v` against `s`, each naming the var's path ("nginx.listenHttp"). */
function check(s: JsonSchema, v: unknown, path: string, out: string[]): void {
  const at = (p: string) => (p ? `var "${p}"` : 'the vars');
  const before = out.length;
  if (s.type !== undefined) {
    const types = [s.type].flat() as string[];
    if (!types.some((t) => typeOk(t, v))) {
      out.push(`${at(path)} must be ${types.map((t) => (t === 'integer' ? 'a whole number' : t === 'object' || t === 'array' ? `an ${t}` : `a ${t}`)).join(' or ')} (got ${show(v)})`);
      return;
    }
  }
  if (s.enum && !(s.enum as unknown[]).some((e) => e === v)) out.push(`${at(path)} ${show(v)} is not one of ${(s.enum as unknown[]).map(String).join(', ')}`);
  if ('const' in s && s.const !== v) out.push(`${at(path)} must be ${show(s.const)} (got ${show(v)})`);
  if (typeof v === 'string') {
    if (typeof s.minLength === 'number' && v.length < s.minLength) out.push(`${at(path)} must have at least ${s.minLength} character${s.minLength === 1 ? '' : 's'}`);
    if (typeof s.maxLength === 'number' && v.length > s.maxLength) out.push(`${at(path)} must have at most ${s.maxLength} characters`);
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) out.push(`${at(path)} ${show(v)} does not match ${s.pattern}`);
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) out.push(`${at(path)} must be >= ${s.minimum} (got ${v})`);
    if (typeof s.maximum === 'number' && v > s.maximum) out.push(`${at(path)} must be <= ${s.maximum} (got ${v})`);
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) out.push(`${at(path)} must be > ${s.exclusiveMinimum} (got ${v})`);
    if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum) out.push(`${at(path)} must be < ${s.exclusiveMaximum} (got ${v})`);
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) out.push(`${at(path)} must have at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) out.push(`${at(path)} must have at most ${s.maxItems} items`);
    if (s.items && typeof s.items === 'object') v.forEach((x, i) => check(s.items as JsonSchema, x, `${path}[${i}]`, out));
  }
  if (typeOk('object', v)) {
    const o = v as Record<string, unknown>;
    const join = (k: string) => (path ? `${path}.${k}` : k);
    for (const k of (s.required as string[] | undefined) ?? []) if (o[k] === undefined) out.push(`${at(join(k))} is missing`);
    const props = (s.properties as Record<string, JsonSchema> | undefined) ?? {};
    for (const [k, ps] of Object.entries(props)) if (o[k] !== undefined) check(ps, o[k], join(k), out);
    if (s.additionalProperties !== undefined && s.additionalProperties !== true) {
      for (const k of Object.keys(o)) {
        if (k in props) continue;
        if (s.additionalProperties === false) out.push(`${at(join(k))} is not expected (known: ${Object.keys(props).join(', ')})`);
        else check(s.additionalProperties as JsonSchema, o[k], join(k), out);
      }
    }
  }
  for (const kw of ['anyOf', 'oneOf'] as const) {
    const alts = s[kw] as JsonSchema[] | undefined;
    if (!alts || out.length > before) continue;
    const passing = alts.filter((a) => {
      const sub: string[] = [];
      check(a, v, path, sub);
      return !sub.length;
    }).length;
    if (kw === 'anyOf' ? passing === 0 : passing !== 1) out.push(`${at(path)} matches ${passing === 0 ? 'none' : 'more than one'} of the allowed shapes`);
  }
}

const compiled = new WeakMap<object, ValidateFunction>();

/** The problems of a host's vars against a role's schema (empty when they fit). */
export function varsProblems(schema: VarsSchema, vars: unknown): string[] {
  let validate: ValidateFunction | undefined = typeof schema === 'function' ? schema : compiled.get(schema);
  if (!validate && typeof schema === 'object' && !usesOnlyKnown(schema)) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    validate = new Ajv({ allErrors: true, strict: false }).compile(schema) as ValidateFunction;
    compiled.set(schema, validate);
  }
  if (!validate) {
    const out: string[] = [];
    check(schema as JsonSchema, vars, '', out);
    return [...new Set(out)];
  }
  if (validate(vars)) return [];
  return (validate.errors ?? []).map((e) => {
    const p = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'required') return `var "${p ? `${p}.` : ''}${String(e.params?.missingProperty)}" is missing`;
    return `${p ? `var "${p}"` : 'the vars'} ${e.message ?? 'is invalid'}`;
  });
}

/**
 * The usual shape of a role's vars schema: these top-level vars must be objects (each with
 * its own schema when given), e.g. `needsVars({ nginx: { required: ['listenHttp'] }, certs: {} })`.
 */
export function needsVars(objects: Record<string, JsonSchema>, others: Record<string, JsonSchema> = {}): JsonSchema {
  const properties: Record<string, JsonSchema> = { ...others };
  for (const [k, s] of Object.entries(objects)) properties[k] = { type: 'object', ...s };
  return { type: 'object', required: [...Object.keys(objects), ...Object.keys(others)], properties };
}
