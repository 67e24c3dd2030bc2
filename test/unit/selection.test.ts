import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { play, playbook, resolveInventory, resolvePlan, role, shell, task, SelectionError } from '../../runner/index.ts';

const a = role({ name: 'alpha', tags: ['web'], tasks: [task({ name: 'a1', do: shell('true') }), task({ name: 'a2', tags: ['config'], do: shell('true') })] });
const b = role({ name: 'beta', tasks: [task({ name: 'b1', do: shell('true') }), task({ name: 'b2', tags: ['config', 'always'], do: shell('true') })] });
const pb = playbook('two', [play({ name: 'first', hosts: 'web', roles: [a] }), play({ name: 'second', hosts: ['db', 'h3'], roles: [b] })]);
const inv = resolveInventory({
  hosts: {
    h1: { address: '10.0.0.1', groups: ['web'] },
    h2: { address: '10.0.0.2', groups: ['web', 'db'] },
    h3: { address: '10.0.0.3' },
  },
});
const names = (plan: ReturnType<typeof resolvePlan>) => plan.map((p) => ({ play: p.play.name, hosts: p.hosts.map((h) => h.name), tasks: p.tasks.map((t) => `${t.role.name}:${t.task.name}`) }));

test('no selection: every play, host and task', () => {
  assert.equal(names(resolvePlan(pb, inv)), [
    { play: 'first', hosts: ['h1', 'h2'], tasks: ['alpha:a1', 'alpha:a2'] },
    { play: 'second', hosts: ['h2', 'h3'], tasks: ['beta:b1', 'beta:b2'] },
  ]);
});

test('a role name is a tag that covers all its tasks; "always" tasks come along', () => {
  assert.equal(names(resolvePlan(pb, inv, { tags: ['alpha'] })), [
    { play: 'first', hosts: ['h1', 'h2'], tasks: ['alpha:a1', 'alpha:a2'] },
    { play: 'second', hosts: ['h2', 'h3'], tasks: ['beta:b2'] },
  ]);
});

test('task tags and role tags combine', () => {
  assert.equal(
    names(resolvePlan(pb, inv, { tags: ['config'] })).map((p) => p.tasks),
    [['alpha:a2'], ['beta:b2']],
  );
  assert.equal(names(resolvePlan(pb, inv, { tags: ['web'] }))[0]!.tasks, ['alpha:a1', 'alpha:a2']);
});

test('--skip-tags removes tasks, even "always" ones', () => {
  assert.equal(names(resolvePlan(pb, inv, { skipTags: ['config'] })).map((p) => p.tasks), [['alpha:a1'], ['beta:b1']]);
});

test('--limit by host and by group', () => {
  assert.equal(names(resolvePlan(pb, inv, { limit: ['h3'] })), [{ play: 'second', hosts: ['h3'], tasks: ['beta:b1', 'beta:b2'] }]);
  assert.equal(names(resolvePlan(pb, inv, { limit: ['db'] })).map((p) => p.hosts), [['h2'], ['h2']]);
});

test('an unknown tag is an error naming the known tags', () => {
  try {
    resolvePlan(pb, inv, { tags: ['nosuchtag'] });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, SelectionError);
    assert.match((e as Error).message, /unknown tag "nosuchtag"/);
    assert.match((e as Error).message, /alpha, always, beta, config, web/);
  }
  assert.throws(() => resolvePlan(pb, inv, { skipTags: ['nope'] }), /--skip-tags: unknown tag "nope"/);
});

test('an unknown host in --limit or in a play is an error', () => {
  assert.throws(() => resolvePlan(pb, inv, { limit: ['h9'] }), /--limit: "h9" is neither a host nor a group/);
  const bad = playbook('bad', [play({ hosts: 'nosuchgroup', roles: [a] })]);
  assert.throws(() => resolvePlan(bad, inv), /play ".*": "nosuchgroup" is neither a host nor a group/);
});

test('duplicate task names in a role are refused', () => {
  assert.throws(() => role({ name: 'x', tasks: [task({ name: 't', do: shell('true') }), task({ name: 't', do: shell('true') })] }), /two tasks are named "t"/);
});

test.run();
