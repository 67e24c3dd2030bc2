// `phoenix sync [all|portainer|qdrant]`: the target argument, and the `phoenix` bin forwarding
// to playbooks/sync.ts and playbooks/site.ts with the runner's flags and exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { splitTarget, syncPlaybook } from '../../playbooks/sync.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = (...args: string[]) => {
  // As npm runs it, but without npx's NODE_OPTIONS: the bin must register tsx itself.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return spawnSync(process.execPath, ['bin/phoenix.mjs', ...args], { cwd: root, encoding: 'utf8', env });
};

test('splitTarget: the target anywhere, flag values never taken for it, default all', () => {
  assert.equal(splitTarget(['qdrant', '--check']), { target: 'qdrant', rest: ['--check'] });
  assert.equal(splitTarget(['--inventory', 'lab', 'portainer', '--diff']), { target: 'portainer', rest: ['--inventory', 'lab', '--diff'] });
  assert.equal(splitTarget(['-i', 'all', '--json', 'qdrant']), { target: 'all', rest: ['-i', 'all', '--json', 'qdrant'] });
  assert.equal(splitTarget(['--tags=qdrant']), { target: 'all', rest: ['--tags=qdrant'] });
  assert.throws(() => splitTarget(['everything']), /unknown target "everything": expected all, portainer or qdrant/);
  assert.throws(() => splitTarget(['qdrant', 'portainer']), /one target expected/);
});

test('the sync playbook: one play on the Portainer host, the stacks of the target in order', () => {
  const names = (t: 'all' | 'portainer' | 'qdrant') => syncPlaybook(t).plays.flatMap((p) => p.roles.map((r) => r.name));
  assert.equal(names('all'), ['portainer', 'qdrant']);
  assert.equal(names('qdrant'), ['qdrant']);
  assert.is(syncPlaybook('all').plays[0]!.hosts, 'portainer');
});

test('bin: phoenix sync --list-tasks lists exactly the stacks of the target', () => {
  let r = bin('sync', 'qdrant', '--list-tasks');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'play: sync qdrant\n  qdrant : qdrant stack via the Portainer API    TAGS: [qdrant, sync]\n');
  r = bin('sync', '--list-tasks', '--tags', 'portainer');
  assert.is(r.status, 0, r.stderr);
  assert.is(
    r.stdout,
    'play: sync all\n  portainer : portainer API (a one-off Portainer on a fresh swarm)    TAGS: [portainer, sync]\n  portainer : portainer stack via the Portainer API    TAGS: [portainer, sync]\n',
  );
  assert.not.match(r.stdout, /qdrant :/);
});

test('bin: bad input exits 4 with a message; site is forwarded too', () => {
  let r = bin('sync', 'everything');
  assert.is(r.status, 4);
  assert.match(r.stderr, /phoenix sync: unknown target "everything"/);
  r = bin('sync', 'all', '--no-such-flag');
  assert.is(r.status, 4);
  assert.match(r.stderr, /--no-such-flag/);
  r = bin('deploy');
  assert.is(r.status, 4);
  assert.match(r.stderr, /unknown command "deploy"/);
  r = bin('site', '--list-hosts');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^play: /m);
  r = bin('sync', '--help');
  assert.is(r.status, 0);
  assert.match(r.stdout, /usage: phoenix sync \[all\|portainer\|qdrant\]/);
  assert.match(r.stdout, /--check/);
});

test.run();
