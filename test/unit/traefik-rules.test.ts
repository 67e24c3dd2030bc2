// The Traefik v3 rule parser: what parses, the tree it gives, and errors that say what and where.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRule, RuleError } from '../../roles/traefik/rules.ts';

const err = (rule: string) => {
  try {
    parseRule(rule);
  } catch (e) {
    assert.instance(e, RuleError);
    return (e as Error).message;
  }
  throw new Error(`parsed: ${rule}`);
};

test('a Host matcher, backticks or double quotes', () => {
  assert.equal(parseRule('Host(`a.example`)'), { kind: 'matcher', name: 'Host', args: ['a.example'] });
  assert.equal(parseRule('Host("a.example")'), { kind: 'matcher', name: 'Host', args: ['a.example'] });
  assert.equal(parseRule('Header("X-A", "a\\"b")'), { kind: 'matcher', name: 'Header', args: ['X-A', 'a"b'] });
});

test('&& binds tighter than ||; ! and parentheses', () => {
  const t = parseRule('Host(`a`) || Host(`b`) && PathPrefix(`/x`)');
  assert.is(t.kind, 'or');
  assert.equal((t as { right: unknown }).right, {
    kind: 'and',
    left: { kind: 'matcher', name: 'Host', args: ['b'] },
    right: { kind: 'matcher', name: 'PathPrefix', args: ['/x'] },
  });
  const u = parseRule('(Host(`a`) || Host(`b`)) && !Method(`POST`)');
  assert.is(u.kind, 'and');
  assert.is((u as { left: { kind: string } }).left.kind, 'or');
  assert.equal((u as { right: unknown }).right, { kind: 'not', expr: { kind: 'matcher', name: 'Method', args: ['POST'] } });
  assert.is(parseRule('!!Path(`/`)').kind, 'not');
});

test('every v3 matcher the role supports parses', () => {
  for (const r of [
    'HostRegexp(`^[a-z]+\\.example$`)',
    'Path(`/health`)',
    'PathRegexp(`^/api/v[0-9]+`)',
    'HeaderRegexp(`User-Agent`, `curl.*`)',
    'Query(`mobile`, `true`)',
    'QueryRegexp(`q`, `^a`)',
    'ClientIP(`10.0.0.0/24`)',
    'ClientIP(`::1`)',
    'Method(`GET`) && PathPrefix(`/.well-known/acme-challenge/`)',
  ])
    parseRule(r);
});

test('errors name the problem and the column', () => {
  assert.match(err('Host(`a`) && PathPrefix(`/x`'), /expected "\)" to close PathPrefix\( at 29, found end of rule/);
  assert.match(err('Host(`a`) & Host(`b`)'), /"&" at 11: did you mean "&&"\?/);
  assert.match(err('host(`a`)'), /unknown matcher "host" at 1 \(did you mean Host\?\)/);
  assert.match(err('Hots(`a`)'), /unknown matcher "Hots"/);
  assert.match(err('Host(`a`) Host(`b`)'), /unexpected "Host" at 11 \(missing && or \|\|\?\)/);
  assert.match(err('Host(`a`, `b`)'), /Host takes 1 argument in Traefik v3, got 2/);
  assert.match(err('Host(a)'), /Host: expected a quoted string at 6/);
  assert.match(err("Host('a')"), /single quotes at 6/);
  assert.match(err('Host(`a`'), /expected "\)"/);
  assert.match(err('Host(`a)'), /unterminated `string starting at 6/);
  assert.match(err(''), /empty rule/);
  assert.match(err('()'), /expected a matcher/);
  assert.match(err('Host(`a`) &&'), /expected a matcher, "!" or "\(" at 13, found end of rule/);
});

test('matcher values are checked', () => {
  assert.match(err('PathPrefix(`api`)'), /must start with "\/"/);
  assert.match(err('Host(`*.example`)'), /no wildcards in Host in Traefik v3: use HostRegexp/);
  assert.match(err('Host(`a b`)'), /not a host name/);
  assert.match(err('HostRegexp(`(`)'), /bad regular expression/);
  assert.match(err('ClientIP(`10.0.0.0/33`)'), /not an IP or CIDR range/);
  assert.match(err('ClientIP(`nope`)'), /not an IP or CIDR range/);
  assert.match(err('Method(`GE T`)'), /not an HTTP method/);
});

test.run();
