// A parser for the Traefik v3 HTTP router rule language (the subset phoenix uses and checks):
// matchers Host, HostRegexp, Path, PathPrefix, PathRegexp, Method, Header, HeaderRegexp,
// Query, QueryRegexp, ClientIP; operators && (binds tighter), ||, !; parentheses; string
// arguments in backticks or double quotes. Traefik only logs a bad rule at runtime and drops
// the router; phoenix refuses it before anything reaches a host.
// The lab's stand-in (lab/standins/traefik/) evaluates the same language.
import { isIP } from 'node:net';

export type RuleNode =
  | { kind: 'and' | 'or'; left: RuleNode; right: RuleNode }
  | { kind: 'not'; expr: RuleNode }
  | { kind: 'matcher'; name: Matcher; args: string[] };

/** Each matcher with its number of arguments (Traefik v3: one value per matcher, two for Header/Query). */
export const MATCHERS = {
  Host: 1,
  HostRegexp: 1,
  Path: 1,
  PathPrefix: 1,
  PathRegexp: 1,
  Method: 1,
  Header: 2,
  HeaderRegexp: 2,
  Query: 2,
  QueryRegexp: 2,
  ClientIP: 1,
} as const;
export type Matcher = keyof typeof MATCHERS;

export class RuleError extends Error {
  readonly offset: number;
  constructor(
    message: string,
    offset: number,
  ) {
    super(message);
    this.offset = offset;
    this.name = 'RuleError';
  }
}

type Tok = { t: 'ident' | 'str' | '(' | ')' | ',' | '&&' | '||' | '!' | 'end'; v: string; at: number };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',' || c === '!') {
      out.push({ t: c, v: c, at: i });
      i++;
      continue;
    }
    if (c === '&' || c === '|') {
      if (src[i + 1] !== c) throw new RuleError(`"${c}" at ${i + 1}: did you mean "${c}${c}"?`, i);
      out.push({ t: c === '&' ? '&&' : '||', v: c + c, at: i });
      i += 2;
      continue;
    }
    if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw new RuleError(`unterminated \`string starting at ${i + 1}`, i);
      out.push({ t: 'str', v: src.slice(i + 1, end), at: i });
      i = end + 1;
      continue;
    }
    if (c === '"') {
      // A Go-style interpreted string: backslash escapes.
      let j = i + 1;
      let v = '';
      for (; j < src.length && src[j] !== '"'; j++) {
        if (src[j] === '\\') {
          const n = src[++j];
          if (n === undefined) break;
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n;
        } else v += src[j];
      }
      if (j >= src.length) throw new RuleError(`unterminated "string starting at ${i + 1}`, i);
      out.push({ t: 'str', v, at: i });
      i = j + 1;
      continue;
    }
    if (c === "'") throw new RuleError(`single quotes at ${i + 1}: use backticks or double quotes`, i);
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (!m) throw new RuleError(`unexpected "${c}" at ${i + 1}`, i);
    out.push({ t: 'ident', v: m[0], at: i });
    i += m[0].length;
  }
  out.push({ t: 'end', v: '', at: src.length });
  return out;
}

/** Parses a rule into its tree, or throws a RuleError saying what and where (1-based column). */
export function parseRule(src: string): RuleNode {
  if (!src.trim()) throw new RuleError('empty rule', 0);
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  const what = (t: Tok) => (t.t === 'end' ? 'end of rule' : t.t === 'str' ? `string "${t.v}"` : `"${t.v}"`);
  const expect = (t: Tok['t'], ctx: string) => {
    const k = next();
    if (k.t !== t) throw new RuleError(`expected "${t}" ${ctx} at ${k.at + 1}, found ${what(k)}`, k.at);
    return k;
  };
  function or(): RuleNode {
    let left = and();
    while (peek().t === '||') {
      next();
      left = { kind: 'or', left, right: and() };
    }
    return left;
  }
  function and(): RuleNode {
    let left = unary();
    while (peek().t === '&&') {
      next();
      left = { kind: 'and', left, right: unary() };
    }
    return left;
  }
  function unary(): RuleNode {
    const k = peek();
    if (k.t === '!') {
      next();
      return { kind: 'not', expr: unary() };
    }
    if (k.t === '(') {
      next();
      const e = or();
      expect(')', 'to close "("');
      return e;
    }
    if (k.t === 'ident') return matcher();
    throw new RuleError(`expected a matcher, "!" or "(" at ${k.at + 1}, found ${what(k)}`, k.at);
  }
  function matcher(): RuleNode {
    const id = next();
    if (!Object.hasOwn(MATCHERS, id.v)) {
      const near = Object.keys(MATCHERS).find((m) => m.toLowerCase() === id.v.toLowerCase());
      throw new RuleError(`unknown matcher "${id.v}" at ${id.at + 1}${near ? ` (did you mean ${near}?)` : ''}`, id.at);
    }
    const name = id.v as Matcher;
    expect('(', `after ${name}`);
    const args: string[] = [];
    if (peek().t !== ')') {
      for (;;) {
        const a = next();
        if (a.t !== 'str') throw new RuleError(`${name}: expected a quoted string at ${a.at + 1}, found ${what(a)}`, a.at);
        args.push(a.v);
        if (peek().t !== ',') break;
        next();
      }
    }
    expect(')', `to close ${name}(`);
    const want = MATCHERS[name];
    if (args.length !== want) throw new RuleError(`${name} takes ${want} argument${want > 1 ? 's' : ''} in Traefik v3, got ${args.length}`, id.at);
    checkArgs(name, args, id.at);
    return { kind: 'matcher', name, args };
  }
  const tree = or();
  const rest = peek();
  if (rest.t !== 'end') throw new RuleError(`unexpected ${what(rest)} at ${rest.at + 1} (missing && or ||?)`, rest.at);
  return tree;
}

function checkArgs(name: Matcher, args: string[], at: number): void {
  const bad = (why: string) => {
    throw new RuleError(`${name}(${args.map((a) => `\`${a}\``).join(', ')}): ${why}`, at);
  };
  const v = args[0]!;
  switch (name) {
    case 'Host':
      if (!v) bad('empty host');
      if (v.includes('*')) bad('no wildcards in Host in Traefik v3: use HostRegexp');
      if (!/^[A-Za-z0-9]([A-Za-z0-9-.]*[A-Za-z0-9])?$/.test(v) && !isIP(v)) bad('not a host name');
      break;
    case 'Path':
    case 'PathPrefix':
      if (!v.startsWith('/')) bad('must start with "/"');
      break;
    case 'Method':
      if (!/^[A-Za-z]+$/.test(v)) bad('not an HTTP method');
      break;
    case 'ClientIP': {
      const [ip, bits, more] = v.split('/');
      const fam = isIP(ip ?? '');
      if (!fam || more !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= (fam === 4 ? 32 : 128)))) bad('not an IP or CIDR range');
      break;
    }
    case 'Header':
    case 'Query':
    case 'HeaderRegexp':
    case 'QueryRegexp':
      if (!v) bad('empty key');
      break;
    default:
      break;
  }
  if (name.endsWith('Regexp')) {
    const re = args[args.length - 1]!;
    try {
      new RegExp(re);
    } catch (e) {
      bad(`bad regular expression: ${(e as Error).message}`);
    }
  }
}

/** The rule's length: Traefik's default router priority. */
export const defaultPriority = (rule: string): number => rule.length;
