// Inventory mistakes are caught before any host is contacted (issue 10, item 3): duplicate
// JSON host names, malformed addresses, missing or loose keys, a missing known_hosts file and
// unset $secret variables all exit 4, one line per problem, no stack trace, and no sshd sees
// a login.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { hosts } from './helpers.ts';

/** NO_COLOR without the runner's FORCE_COLOR: Node 24 warns on stderr when both are set. */
function plainEnv(): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _, ...env } = process.env;
  return { ...env, NO_COLOR: '1' };
}

const P = suite('pre-flight checks');
let lab: SshdLab;
P.before(async () => {
  lab = await hosts(2);
});
P.after(async () => {
  await lab?.stop();
});

const FIXTURE = 'test/fixtures/two-roles.ts';
function phoenix(...args: string[]) {
  const r = spawnSync('node', ['--import=tsx', FIXTURE, ...args], { encoding: 'utf8', timeout: 120_000, env: plainEnv() });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A JSON inventory text for the lab's two hosts, with per-host overrides. */
function hostJson(i: number, extra: Record<string, unknown> = {}) {
  const h = lab.hosts[i]!;
  return JSON.stringify({ address: h.address, port: h.port, user: lab.user, key: lab.clientKey, become: true, groups: ['web', 'db'], vars: { root: h.root }, ...extra });
}
function write(name: string, text: string) {
  const f = join(lab.dir, name);
  writeFileSync(f, text);
  return f;
}
const logins = () => lab.hosts.map((h) => (h.logs().match(/Accepted publickey/g) ?? []).length);
const noStack = (s: string) => assert.not.match(s, /^\s+at /m, `a stack trace was printed:\n${s}`);

P('a host name given twice in a JSON inventory is refused, naming file and host', () => {
  const before = logins();
  // The second "alpha" would silently win with JSON.parse, sending alpha's tasks to beta's address.
  const f = write('dup.json', `{"knownHosts": ${JSON.stringify(lab.knownHosts)}, "groups": {"web": {}, "db": {}}, "hosts": {\n"alpha": ${hostJson(0)},\n"beta": ${hostJson(1)},\n"alpha": ${hostJson(1)}}}`);
  const r = phoenix('--inventory', f);
  assert.is(r.code, 4, r.err + r.out);
  assert.match(r.err, `invalid inventory ${f}:\n  - host "alpha" is defined twice`);
  noStack(r.err);
  assert.equal(logins(), before);
  assert.not.ok(existsSync(join(lab.hosts[1]!.root, 'web')));
});

P('an address that is not a hostname or an IP literal is refused at load', () => {
  const f = write('addr.json', JSON.stringify({ knownHosts: lab.knownHosts, groups: { web: {}, db: {} }, hosts: { alpha: JSON.parse(hostJson(0, { address: '127.0.0.1 alpha.lan' })), beta: JSON.parse(hostJson(1, { address: '::1' })) } }));
  const r = phoenix('--inventory', f, '--list-hosts');
  assert.is(r.code, 4, r.err + r.out);
  assert.is(r.err.split('\n')[0], `phoenix: invalid inventory ${f}:`);
  assert.match(r.err, '  - host "alpha": field "address": "127.0.0.1 alpha.lan" is not a hostname or an IPv4/IPv6 address\n');
  assert.not.match(r.err, /"beta"/); // an IPv6 literal is an address
  noStack(r.err);
});

P('missing and loose keys and a missing known_hosts file: all listed at once, before any host is contacted', () => {
  const loose = join(lab.dir, 'loose_key');
  copyFileSync(lab.clientKey, loose);
  chmodSync(loose, 0o644);
  const missingKey = join(lab.dir, 'no_such_key');
  const missingKh = join(lab.dir, 'no_such_known_hosts');
  const f = write('keys.json', JSON.stringify({ knownHosts: missingKh, groups: { web: {}, db: {} }, hosts: { alpha: JSON.parse(hostJson(0, { key: missingKey })), beta: JSON.parse(hostJson(1, { key: loose })) } }));
  const before = logins();
  const r = phoenix('--inventory', f);
  assert.is(r.code, 4, r.err + r.out);
  const lines = r.err.trimEnd().split('\n');
  assert.is(lines[0], `phoenix: cannot run with inventory ${f}: 3 problems found before contacting any host; nothing ran:`);
  assert.is(lines[1], `  - host "alpha": field "key": private key ${missingKey} does not exist`);
  assert.is(lines[2], `  - host "beta": field "key": private key ${loose} has mode 0644; it must be 0600 (chmod 600 ${loose})`);
  assert.match(lines[3]!, `  - known_hosts file ${missingKh} does not exist`);
  assert.is(lines.length, 4);
  assert.equal(logins(), before, 'no sshd may see a login');
  assert.not.ok(existsSync(join(lab.hosts[0]!.root, 'web')));
  assert.not.ok(existsSync(join(lab.hosts[1]!.root, 'web')));
  // Listing needs no key: --list-hosts and --list-tasks stay lenient.
  const list = phoenix('--inventory', f, '--list-hosts');
  assert.is(list.code, 0, list.err);
  assert.match(list.out, 'hosts (2): alpha, beta');
  // Only the selected hosts are checked.
  const ok = write('keys-ok.json', JSON.stringify({ knownHosts: lab.knownHosts, groups: { web: {}, db: {} }, hosts: { alpha: JSON.parse(hostJson(0)), beta: JSON.parse(hostJson(1, { key: loose })) } }));
  const limited = phoenix('--inventory', ok, '--limit', 'alpha');
  assert.is(limited.code, 0, limited.err + limited.out);
  assert.ok(existsSync(join(lab.hosts[0]!.root, 'web')));
});

P('an unset $secret variable names the inventory file and the field', () => {
  const f = write('secret.json', JSON.stringify({ knownHosts: lab.knownHosts, groups: { web: {}, db: {} }, hosts: { alpha: JSON.parse(hostJson(0, { becomePassword: { $secret: { env: 'PHX_UNSET_PW_FOR_TEST' } } })), beta: JSON.parse(hostJson(1)) } }));
  const r = phoenix('--inventory', f, '--list-hosts');
  assert.is(r.code, 4, r.err + r.out);
  assert.is(r.err, `phoenix: invalid inventory ${f}:\n  - host "alpha": field "becomePassword": secret environment variable PHX_UNSET_PW_FOR_TEST is not set\n`);
});

P.run();
