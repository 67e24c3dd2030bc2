// An adapter from Proxmox VE's schema dialect (pve-api-subset.json, see PROVENANCE.md) to ajv,
// for the contract tests: every request phoenix sends is validated as it goes on the wire
// (application/x-www-form-urlencoded, so every value is a string), including property strings.
//
// The dialect: `optional: 1` instead of `required`; indexed keys `net[n]`; `format` either a
// named format (`pve-vmid`, `pve-startup-order` …) or an object describing a property string
// (`key=value,…`, one key may be the `default_key`); booleans as 1/0/yes/no/on/off; Perl
// regexes (`(?^:…)`). Named formats phoenix does not send are registered as failures, so a new
// key with an unimplemented format fails the contract test instead of passing unchecked.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';

type PveSchema = {
  type?: string;
  optional?: number;
  format?: string | Record<string, PveSchema>;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  minLength?: number;
  default_key?: number;
  alias?: string;
  properties?: Record<string, PveSchema>;
  additionalProperties?: number;
  items?: PveSchema;
};

export interface PveApi {
  source: string;
  paths: Record<string, Record<string, { parameters?: PveSchema; returns?: PveSchema }>>;
}

export function loadPveApi(file = new URL('./pve-api-subset.json', import.meta.url)): PveApi {
  return JSON.parse(readFileSync(file, 'utf8')) as PveApi;
}

/** Perl's `(?^:…)` (default flags) is JavaScript's `(?:…)`; PVE anchors patterns as a whole. */
export const perlRegex = (p: string) => `^(?:${p.replace(/\(\?\^:/g, '(?:').replace(/\{,(\d+)\}/g, '{0,$1}')})$`;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const isIPv4 = (s: string) => IPV4.test(s);
const isIPv6 = (s: string) => /^[0-9a-fA-F:]+(%\w+)?$/.test(s) && s.includes(':');
const isCidr4 = (s: string) => {
  const [a, p, ...rest] = s.split('/');
  return rest.length === 0 && isIPv4(a) && /^\d+$/.test(p ?? '') && Number(p) <= 32;
};
const DNS_NAME = /^(?=.{1,255}$)([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;
const list = (s: string) => s.split(/[,; ]+/).filter(Boolean);

/** PVE's named formats (PVE::JSONSchema, PVE::LXC::Config, PVE::QemuServer) that phoenix's requests use. */
export const NAMED_FORMATS: Record<string, (s: string) => boolean> = {
  'pve-vmid': (s) => /^[1-9]\d{2,8}$/.test(s),
  'pve-node': (s) => /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(s),
  'pve-storage-id': (s) => /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(s),
  'pve-bridge-id': (s) => /^[-_.\w\d]+$/.test(s),
  'pve-configid': (s) => /^[a-z][a-z_]*\d*$/i.test(s),
  'pve-configid-list': (s) => list(s).every((k) => /^[a-z][a-z_-]*\d*$/i.test(k)),
  'pve-tag-list': (s) => list(s).every((t) => /^[a-z0-9_][a-z0-9_\-+.]*$/i.test(t)),
  'pve-startup-order': (s) =>
    s.split(',').every((p, i) => (i === 0 && /^\d+$/.test(p)) || /^(order|up|down)=\d+$/.test(p)) &&
    new Set(s.split(',').map((p) => (p.includes('=') ? p.split('=')[0] : 'order'))).size === s.split(',').length,
  'dns-name': (s) => DNS_NAME.test(s),
  'dns-name-list': (s) => list(s).every((d) => DNS_NAME.test(d)),
  'address-list': (s) => list(s).every((a) => isIPv4(a) || isIPv6(a)),
  'lxc-ip-with-ll-iface-list': (s) => list(s).every((a) => isIPv4(a) || isIPv6(a)),
  ipv4: isIPv4,
  ipv6: isIPv6,
  'pve-ipv4-config': (s) => s === 'dhcp' || s === 'manual' || isCidr4(s),
  'pve-ipv6-config': (s) => ['auto', 'dhcp', 'manual'].includes(s) || /^[0-9a-fA-F:]+\/\d+$/.test(s),
  'mac-addr': (s) => /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s) && (parseInt(s.slice(0, 2), 16) & 1) === 0,
  'disk-size': (s) => /^\d+(\.\d+)?[KMGT]?$/.test(s),
  // `storage:size-in-GiB` to allocate, or an existing volume id.
  'pve-lxc-mp-string': (s) => /^[a-z][a-z0-9\-_.]*[a-z0-9]:(\d+(\.\d+)?|[^,]+)$/i.test(s) || s.startsWith('/'),
  'pve-volume-id': (s) => /^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i.test(s),
  // URL-encoded: no raw space, newline or comma (PVE decodes it and checks it is valid).
  urlencoded: (s) => {
    if (/[\s,]/.test(s)) return false;
    try {
      decodeURIComponent(s);
      return true;
    } catch {
      return false;
    }
  },
};

/** The property-string dicts of named formats that are property strings in PVE's code. */
const NAMED_PROPSTRINGS: Record<string, Record<string, PveSchema>> = {
  'pve-qm-ipconfig': {
    ip: { type: 'string', format: 'pve-ipv4-config', optional: 1 },
    gw: { type: 'string', format: 'ipv4', optional: 1 },
    ip6: { type: 'string', format: 'pve-ipv6-config', optional: 1 },
    gw6: { type: 'string', format: 'ipv6', optional: 1 },
  },
};

/** `a=1,b,c=2` with the default key; duplicate keys are an error (as in PVE). */
export function splitPropString(s: string, defaultKey: string | undefined): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    let k: string;
    let v: string;
    if (eq < 0) {
      if (!defaultKey) return `"${part}" has no key and the format has no default key`;
      k = defaultKey;
      v = part;
    } else {
      k = part.slice(0, eq);
      v = part.slice(eq + 1);
    }
    if (k in out) return `key "${k}" given twice`;
    out[k] = v;
  }
  return out;
}

export class PveAjv {
  readonly ajv: Ajv;
  constructor() {
    this.ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
    for (const [name, fn] of Object.entries(NAMED_FORMATS)) this.ajv.addFormat(name, { type: 'string', validate: fn });
    this.ajv.addKeyword({
      keyword: 'pveNumber',
      type: 'string',
      errors: true,
      validate: function v(this: unknown, sch: { integer: boolean; minimum?: number; maximum?: number }, data: string, _p?: unknown, cxt?: { parentDataProperty?: string | number }) {
        const ok = (sch.integer ? /^[+-]?\d+$/ : /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/).test(data);
        const n = Number(data);
        const bad = !ok ? `must be ${sch.integer ? 'an integer' : 'a number'}` : sch.minimum !== undefined && n < sch.minimum ? `must be >= ${sch.minimum}` : sch.maximum !== undefined && n > sch.maximum ? `must be <= ${sch.maximum}` : undefined;
        const key = cxt?.parentDataProperty !== undefined ? `${cxt.parentDataProperty}: ` : '';
        (v as unknown as { errors: Partial<ErrorObject>[] }).errors = bad ? [{ keyword: 'pveNumber', message: `${key}${bad}`, params: {} }] : [];
        return !bad;
      },
    });
    this.ajv.addKeyword({
      keyword: 'pvePropString',
      type: 'string',
      errors: true,
      compile: (dict: Record<string, PveSchema>) => {
        const defaultKey = Object.entries(dict).find(([, s]) => s.default_key)?.[0];
        const inner = this.ajv.compile(this.objectSchema(dict, false));
        const fn = (data: string, cxt?: { parentDataProperty?: string | number }) => {
          const key = cxt?.parentDataProperty !== undefined ? `${cxt.parentDataProperty}: ` : '';
          const parsed = splitPropString(data, defaultKey);
          if (typeof parsed === 'string') {
            (fn as unknown as { errors: Partial<ErrorObject>[] }).errors = [{ keyword: 'pvePropString', message: `${key}${parsed}`, params: {} }];
            return false;
          }
          const ok = inner(parsed);
          (fn as unknown as { errors: Partial<ErrorObject>[] }).errors = ok
            ? []
            : (inner.errors ?? []).map((e) => ({ ...e, keyword: 'pvePropString', message: `${key}property string: ${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}` }));
          return ok;
        };
        return fn as never;
      },
    });
    this.ajv.addKeyword({
      keyword: 'pveUnimplementedFormat',
      type: 'string',
      errors: true,
      validate: function v(this: unknown, name: string, _d?: unknown, _p?: unknown, cxt?: { parentDataProperty?: string | number }) {
        (v as unknown as { errors: Partial<ErrorObject>[] }).errors = [{ keyword: 'pveUnimplementedFormat', message: `${cxt?.parentDataProperty ?? ''}: format "${name}" has no implementation in the adapter`, params: {} }];
        return false;
      },
    });
  }

  /** One value on the wire (a string) per its PVE schema. */
  valueSchema(s: PveSchema): Record<string, unknown> {
    const out: Record<string, unknown> = { type: 'string' };
    const all: Record<string, unknown>[] = [];
    if (s.type === 'integer' || s.type === 'number') out.pveNumber = { integer: s.type === 'integer', minimum: s.minimum, maximum: s.maximum };
    else if (s.type === 'boolean') out.pattern = '^(?:[01]|true|false|yes|no|on|off)$';
    if (s.enum) out.enum = s.enum.map(String);
    if (s.pattern) all.push({ pattern: perlRegex(s.pattern) });
    if (s.maxLength !== undefined) out.maxLength = s.maxLength;
    if (s.minLength !== undefined) out.minLength = s.minLength;
    if (typeof s.format === 'object') out.pvePropString = s.format;
    else if (typeof s.format === 'string') {
      if (NAMED_PROPSTRINGS[s.format]) out.pvePropString = NAMED_PROPSTRINGS[s.format];
      else if (NAMED_FORMATS[s.format]) out.format = s.format;
      else out.pveUnimplementedFormat = s.format;
    }
    if (all.length) out.allOf = all;
    return out;
  }

  /** A parameters object: required = not optional, `net[n]` as a pattern, nothing else allowed. */
  objectSchema(props: Record<string, PveSchema>, forbidExtra = true): Record<string, unknown> {
    const properties: Record<string, unknown> = {};
    const patternProperties: Record<string, unknown> = {};
    const required: string[] = [];
    for (const [k, s] of Object.entries(props)) {
      const m = /^(.*)\[n\]$/.exec(k);
      if (m) patternProperties[`^${m[1]}\\d+$`] = this.valueSchema(s);
      else {
        properties[k] = this.valueSchema(s);
        if (!s.optional && !s.alias) required.push(k);
        if (s.alias) properties[s.alias] = properties[k];
      }
    }
    return { type: 'object', properties, patternProperties, required, additionalProperties: forbidExtra ? false : false };
  }

  private cache = new Map<string, ValidateFunction>();

  /** The validator of a request: path parameters and body together, as PVE merges them. */
  request(api: PveApi, path: string, method: string): ValidateFunction {
    const key = `${method} ${path}`;
    let v = this.cache.get(key);
    if (!v) {
      const info = api.paths[path]?.[method];
      if (!info) throw new Error(`the schema subset has no ${method} ${path}`);
      v = this.ajv.compile(this.objectSchema(info.parameters?.properties ?? {}));
      this.cache.set(key, v);
    }
    return v;
  }
}

/** A request as it goes on the wire: the values form-encoded (strings). */
export const wire = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v)]));

export function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}${e.params && 'missingProperty' in e.params ? '' : ''}`)
    .join('; ');
}
