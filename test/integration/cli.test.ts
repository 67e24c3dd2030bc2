// The command line, as a user types it: `node --import=phoenix/boot <playbook>.ts [flags]` (docs/speed.md;
// `npx zx <playbook>.ts` is the same command line on Node >= 22.18, and needs a loader on Node 20).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { hosts } from './helpers.ts';

const C = suite('cli');
let lab: SshdLab;
let invFile: string;

C.before(async () => {
  lab = await hosts(2);
  invFile = join(lab.dir, 'inventory.yaml');
  // A YAML inventory, as a user without TypeScript would write it.
  const [a, b] = lab.hosts;
  writeFileSync(
    invFile,
    `knownHosts: ${lab.knownHosts}\n` +
      `groups:\n  web: {}\n  db: {}\n` +
      `hosts:\n` +
      `  alpha:\n    address: 127.0.0.1\n    port: ${a!.port}\n    user: ${lab.user}\n    key: ${lab.clientKey}\n    become: true\n    groups: [web]\n    vars: { root: ${a!.root} }\n` +
      `  beta:\n    address: 127.0.0.1\n    port: ${b!.port}\n    user: ${lab.user}\n    key: ${lab.clientKey}\n    become: true\n    groups: [db, web]\n    vars: { root: ${b!.root} }\n`,
  );
});
C.after(async () => {
  await lab?.stop();
});

function phoenix(playbook: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import=phoenix/boot', playbook, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '', NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const FIXTURE = 'test/fixtures/two-roles.ts';

C('--tags X --list-tasks lists exactly the tasks of X', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--tags', 'db', '--list-tasks');
  assert.is(r.code, 0, r.err);
  const tasks = r.out.split('\n').filter((l) => l.startsWith('  ') && l.includes(' : '));
  assert.equal(tasks.map((l) => l.trim().split('    ')[0]), ['db : db dir', 'db : db marker']);
  const content = phoenix(FIXTURE, '--inventory', invFile, '--tags', 'content', '--list-tasks');
  assert.equal(content.out.split('\n').filter((l) => l.includes(' : ')).map((l) => l.trim().split('    ')[0]), ['web : web page']);
});

C('--tags nosuchtag exits non-zero with a clear message, and runs nothing', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--tags', 'nosuchtag');
  assert.is(r.code, 4);
  assert.match(r.err, /unknown tag "nosuchtag" \(playbook two-roles has: content, db, frontend, web\)/);
  assert.not.ok(existsSync(join(lab.hosts[0]!.root, 'web')));
});

C('--list-hosts with --limit shows the resolved hosts per play', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--limit', 'beta', '--list-hosts');
  assert.is(r.code, 0, r.err);
  assert.is(r.out, `inventory: ${invFile}\nplay: web on web\n  hosts (1): beta\nplay: db on db\n  hosts (1): beta\n`);
  const bad = phoenix(FIXTURE, '--inventory', invFile, '--limit', 'gamma', '--list-hosts');
  assert.is(bad.code, 4);
  assert.match(bad.err, /--limit: "gamma" is neither a host nor a group/);
});

C('a full run, then --check on the converged hosts, with --json', () => {
  const json = join(lab.dir, 'run.json');
  const r = phoenix(FIXTURE, '--inventory', invFile, '--json', json);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /alpha\s+ok=0\s+changed=2\s+failed=0/);
  assert.match(r.out, /beta\s+ok=0\s+changed=4\s+failed=0/);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  assert.is(report.exitCode, 0);
  assert.is(report.plays[1].hosts.beta.tasks[1].task, 'db marker');
  assert.is(report.plays[1].hosts.beta.tasks[1].status, 'changed');
  assert.type(report.plays[1].hosts.beta.tasks[1].durationMs, 'number');
  const again = phoenix(FIXTURE, '--inventory', invFile, '--check', '--diff');
  assert.is(again.code, 0);
  assert.match(again.out, /alpha\s+ok=2\s+changed=0\s+unknown=0/);
  assert.match(again.out, /beta\s+ok=4\s+changed=0\s+unknown=0/);
});

C('unknown flags and a broken inventory are usage errors (exit 4)', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--chek');
  assert.is(r.code, 4);
  assert.match(r.err, /unknown option --chek \(did you mean --check\?\)/);
  const t = phoenix(FIXTURE, '--inventory', invFile, '--list-tag');
  assert.is(t.code, 4);
  assert.match(t.err, /unknown option --list-tag \(did you mean --list-tags\?\)/);
  const bad = join(lab.dir, 'bad.yaml');
  writeFileSync(bad, 'hosts:\n  alpha:\n    address: 127.0.0.1\n    port: 70000\n');
  const b = phoenix(FIXTURE, '--inventory', bad, '--list-hosts');
  assert.is(b.code, 4);
  assert.ok(b.err.includes(bad));
  assert.match(b.err, /host "alpha": field "port": must be <= 65535/);
});

C('site.ts lists its hosts and tasks against inventory.ts', () => {
  const r = phoenix('playbooks/site.ts', '--list-hosts', '--list-tasks');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /hosts \(1\): lxc101/);
  assert.match(r.out, /nginx : install nginx/);
});

C('--limit patterns: globs, ":" union, "&" intersection, "!" exclusion, @file', () => {
  const hostsOf = (...limit: string[]) => {
    const r = phoenix(FIXTURE, '--inventory', invFile, ...limit.flatMap((l) => ['--limit', l]), '--list-hosts');
    assert.is(r.code, 0, r.err);
    return [...new Set(r.out.split('\n').filter((l) => l.includes('hosts (')).flatMap((l) => l.split(': ')[1]!.split(', ')))].sort();
  };
  assert.equal(hostsOf('al*'), ['alpha']);
  assert.equal(hostsOf('web:!beta'), ['alpha']);
  assert.equal(hostsOf('web:&db'), ['beta']);
  assert.equal(hostsOf('!db'), ['alpha']);
  assert.equal(hostsOf('alpha:beta'), ['alpha', 'beta']);
  assert.equal(hostsOf('~^b.t'), ['beta']);
  const f = join(lab.dir, 'retry.txt');
  writeFileSync(f, 'beta\n# comment\n');
  assert.equal(hostsOf(`@${f}`), ['beta']);
  const none = phoenix(FIXTURE, '--inventory', invFile, '--limit', 'zz*', '--list-hosts');
  assert.is(none.code, 4);
  assert.match(none.err, /--limit: pattern "zz\*" matches no host or group/);
});

C('a real run limited by a pattern touches only the hosts it names; --start-at-task skips what comes before', () => {
  const [a, b] = lab.hosts;
  // After the full run above: everything exists. Remove the last tasks' products on both hosts.
  for (const h of [a!, b!]) rmSync(join(h.root, 'web', 'index.html'), { force: true });
  rmSync(join(b!.root, 'db', 'initialized'), { force: true });
  const r = phoenix(FIXTURE, '--inventory', invFile, '--limit', 'web:!alpha', '--start-at-task', 'web page', '--plain');
  assert.is(r.code, 0, r.err + r.out);
  assert.not.match(r.out, /web dir/);
  assert.match(r.out, /changed\s+beta \| web \| web page/);
  assert.match(r.out, /changed\s+beta \| db \| db marker/);
  assert.not.match(r.out, /alpha/);
  assert.ok(existsSync(join(b!.root, 'web', 'index.html')));
  assert.ok(existsSync(join(b!.root, 'db', 'initialized')));
  assert.not.ok(existsSync(join(a!.root, 'web', 'index.html')), 'alpha was excluded by !alpha');
  // "role : task" works too; an unknown name lists the names.
  const list = phoenix(FIXTURE, '--inventory', invFile, '--start-at-task', 'db : db marker', '--list-tasks');
  assert.is(list.code, 0, list.err);
  assert.equal(list.out.split('\n').filter((l) => l.includes(' : ')).map((l) => l.trim().split('    ')[0]), ['db : db marker']);
  const bad = phoenix(FIXTURE, '--inventory', invFile, '--start-at-task', 'web pgae');
  assert.is(bad.code, 4);
  assert.match(bad.err, /--start-at-task: no selected task is named "web pgae" .*"web : web dir", "web : web page", "db : db dir", "db : db marker"/);
});

C('--list-tags lists the tags of the selected tasks per play', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--list-tags');
  assert.is(r.code, 0, r.err);
  assert.is(r.out, 'play: web on web\n  TASK TAGS: [content, frontend, web]\nplay: db on db\n  TASK TAGS: [db]\n');
});

C('-v shows each task\'s stdout and stderr, -vv the commands too; the Secret is masked at every level', () => {
  const plain = phoenix('test/fixtures/verbose.ts', '--inventory', invFile, '--limit', 'alpha', '--plain');
  assert.is(plain.code, 0, plain.err + plain.out);
  assert.not.match(plain.out, /stdout:/);
  const v = phoenix('test/fixtures/verbose.ts', '--inventory', invFile, '--limit', 'alpha', '--plain', '-v');
  assert.is(v.code, 0, v.err + v.out);
  assert.match(v.out, /changed\s+alpha \| talk \| say hello.*\n    stdout: hello from \S+\n    stderr: a warning\n/);
  assert.match(v.out, /ok\s+alpha \| talk \| use token.*\n    stdout: token is \*{8}\n/);
  assert.not.match(v.out, /\$ \(exit/);
  const vv = phoenix('test/fixtures/verbose.ts', '--inventory', invFile, '--limit', 'alpha', '--plain', '-vv', '--json', join(lab.dir, 'vv.json'));
  assert.is(vv.code, 0, vv.err + vv.out);
  assert.match(vv.out, /\$ \(exit 0\): echo hello from/);
  assert.match(vv.out, /\$ \(exit 0\): printf "token is %s\\n" "\$TOKEN"/);
  assert.match(vv.out, /stdout: token is \*{8}/);
  for (const text of [plain.out + plain.err, v.out + v.err, vv.out + vv.err, readFileSync(join(lab.dir, 'vv.json'), 'utf8')])
    assert.not.match(text, /tok-5ecret-9f2c/);
});

C.run();
