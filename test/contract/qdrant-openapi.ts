// Qdrant's REST API contract from the pinned release's own OpenAPI spec
// (docs/reference/qdrant-1.19-openapi.json: qdrant/qdrant v1.19.0, docs/redoc/v1.19.x/openapi.json,
// byte-exact; provenance in docs/releases.md). check() validates a request body and a JSON answer
// against the operation (method + path template) of that spec, with Ajv; `deprecated` lists the
// request fields the spec marks deprecated. No network, no ../shared: the spec is in the repo.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';

export const QDRANT_SPEC_FILE = fileURLToPath(new URL('../../docs/reference/qdrant-1.19-openapi.json', import.meta.url));
export const SPEC = JSON.parse(readFileSync(QDRANT_SPEC_FILE, 'utf8'));

/**
 * OpenAPI 3.0 → JSON Schema: `nullable` becomes a null type; refs point into one root. `closed`:
 * an object schema with `properties` takes no other field (for phoenix's requests: a field the
 * spec does not name is a typo or a field of another release).
 */
function convert(node: any, closed = false): any {
  if (Array.isArray(node)) return node.map((n) => convert(n, closed));
  if (!node || typeof node !== 'object') return node;
  const out: any = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') out.$ref = v.replace('#/components/schemas/', '#/definitions/');
    else if (k === 'properties' && v && typeof v === 'object') out.properties = Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, convert(pv, closed)]));
    else if (k !== 'nullable' && k !== 'example' && k !== 'deprecated' && k !== 'discriminator') out[k] = convert(v, closed);
  }
  if (closed && node.properties && node.additionalProperties === undefined) out.additionalProperties = false;
  if (node.nullable === true) {
    if (typeof node.type === 'string') out.type = [node.type, 'null'];
    else if (!node.type && !node.$ref && !node.anyOf && !node.oneOf && !node.allOf && !node.enum) return { type: 'null' };
    else return { anyOf: [out, { type: 'null' }] };
  }
  if (Array.isArray(out.enum) && node.nullable === true && !out.enum.includes(null)) out.enum.push(null);
  return out;
}

const definitions = convert(SPEC.components.schemas);
const closedDefinitions = convert(SPEC.components.schemas, true);
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();

function compile(schema: unknown, closed = false) {
  const key = `${closed}:${JSON.stringify(schema)}`;
  let v = compiled.get(key);
  if (!v) compiled.set(key, (v = ajv.compile({ definitions: closed ? closedDefinitions : definitions, ...convert(schema, closed) })));
  return v;
}

export interface Operation {
  method: string;
  template: string;
  operationId: string;
  requestSchema?: unknown;
  responses: Record<string, unknown>;
}

const templates = Object.keys(SPEC.paths).map((t) => ({ t, re: new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '$') }));

/** The spec's operation for a request, or undefined when the spec has none (a path the pinned release does not serve). */
export function operation(method: string, path: string): Operation | undefined {
  const p = path.split('?')[0]!;
  const hit = templates.filter((x) => x.re.test(p)).sort((a, b) => b.t.split('{').length === a.t.split('{').length ? b.t.length - a.t.length : a.t.split('{').length - b.t.split('{').length)[0];
  const op = hit && SPEC.paths[hit.t][method.toLowerCase()];
  if (!op) return undefined;
  const responses: Record<string, unknown> = {};
  for (const [code, r] of Object.entries<any>(op.responses ?? {})) responses[code] = r?.content?.['application/json']?.schema;
  return { method: method.toUpperCase(), template: hit!.t, operationId: op.operationId, requestSchema: op.requestBody?.content?.['application/json']?.schema, responses };
}

function errors(schema: unknown, value: unknown, closed = false): string[] {
  const v = compile(schema, closed);
  return v(value) ? [] : (v.errors ?? []).map((e: { instancePath: string; message?: string; params: Record<string, unknown> }) => `${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` "${(e.params as any).additionalProperty}"` : ''}`);
}

/** Fields of `body` that the spec marks deprecated (walks the request schema through refs and anyOf). */
export function deprecatedFields(schema: any, body: any, at = ''): string[] {
  if (!schema || !body || typeof body !== 'object' || Array.isArray(body)) return [];
  const res = (s: any): any => (s?.$ref ? SPEC.components.schemas[s.$ref.split('/').pop()] : s);
  const s = res(schema);
  const alts = [s, ...(s?.anyOf ?? []), ...(s?.oneOf ?? [])].map(res).filter((x) => x && typeof x === 'object');
  const out = new Set<string>();
  for (const alt of alts) {
    for (const [k, v] of Object.entries<any>(body)) {
      const ps = alt.properties?.[k] ?? (typeof alt.additionalProperties === 'object' ? alt.additionalProperties : undefined);
      if (!ps) continue;
      if (ps.deprecated) out.add(at + k);
      for (const d of deprecatedFields(ps, v, `${at}${k}.`)) out.add(d);
    }
  }
  return [...out];
}

export interface Checked {
  op?: Operation;
  violations: string[];
  deprecated: string[];
}

/** One exchange against the spec: the request body (if any) and the JSON answer of its status. */
export function check(method: string, path: string, body: unknown, status: number, answer: unknown): Checked {
  const op = operation(method, path);
  if (!op) return { violations: [`${method} ${path}: no such operation in Qdrant ${SPEC.info.version}'s OpenAPI`], deprecated: [] };
  const violations: string[] = [];
  let deprecated: string[] = [];
  if (body !== undefined) {
    if (!op.requestSchema) violations.push(`${op.operationId}: the spec takes no JSON body`);
    else {
      violations.push(...errors(op.requestSchema, body, true).map((e) => `${op.operationId} request ${e}`));
      deprecated = deprecatedFields(op.requestSchema, body);
    }
  }
  if (status >= 200 && status < 300) {
    const schema = op.responses[String(status)];
    if (!schema) violations.push(`${op.operationId}: HTTP ${status} is not an answer the spec lists`);
    else violations.push(...errors(schema, answer).map((e) => `${op.operationId} answer ${e}`));
  } else if (op.responses[String(status)] === undefined && op.responses.default === undefined && status !== 401 && status !== 403) {
    // Qdrant's spec lists 4XX/default error bodies per operation; 401/403 come from its auth middleware.
    violations.push(`${op.operationId}: HTTP ${status} is not an answer the spec lists`);
  } else {
    const schema = op.responses[String(status)] ?? op.responses.default ?? op.responses['4XX'];
    if (schema) violations.push(...errors(schema, answer).map((e) => `${op.operationId} error answer ${e}`));
  }
  return { op, violations, deprecated };
}
