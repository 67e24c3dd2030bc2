import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { handler, play, playbook, role, shell, task } from '../../runner/index.ts';

const h1 = handler('restart a', shell('true'));
const h2 = handler('restart b', shell('true'));

test('a role is tagged with its own name plus its tags, once each', () => {
  const r = role({ name: 'web', tags: ['frontend', 'web'], tasks: [task({ name: 't', do: shell('true') })] });
  assert.equal(r.tags, ['web', 'frontend']);
});

test('handlers referenced by tasks belong to the role, declared ones first', () => {
  const r = role({
    name: 'svc',
    handlers: [h2],
    tasks: [task({ name: 'a', notify: [h1], do: shell('true') }), task({ name: 'b', notify: [h1, h2], do: shell('true') })],
  });
  assert.equal(r.handlers.map((h) => h.name), ['restart b', 'restart a']);
});

test('a role with url resolves its folder for templates', () => {
  const r = role({ name: 'x', url: import.meta.url, tasks: [task({ name: 't', do: shell('true') })] });
  assert.match(r.dir!, /test\/unit$/);
});

test('play defaults: a readable name, handlers forced, no tags', () => {
  const r = role({ name: 'db', tasks: [task({ name: 't', do: shell('true') })] });
  const p = play({ hosts: ['h1', 'dbs'], roles: [r] });
  assert.is(p.name, 'db on h1, dbs');
  assert.is(p.forceHandlers, true);
  assert.equal(p.tags, []);
  assert.is(playbook('pb', [p]).plays[0], p);
});

test('a task needs a name and something to do; a play needs roles', () => {
  assert.throws(() => task({ name: '', do: shell('true') }), /a name is required/);
  assert.throws(() => task({ name: 'x' } as never), /"do" is required/);
  assert.throws(() => play({ hosts: 'all', roles: [] }), /no roles/);
});

test('tasks and roles are frozen: a playbook cannot be changed while it runs', () => {
  const t = task({ name: 't', do: shell('true') });
  assert.throws(() => {
    (t as { name: string }).name = 'other';
  });
});

test.run();
