// The CLI's own parsing: -e values, "did you mean", and Ansible's host patterns.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { didYouMean, matchHosts, parseCli, parseExtraVars, resolveInventory, VALUE_FLAGS } from '../../runner/index.ts';

test('-e key=value: values read as YAML 1.2 / JSON; quotes group; later wins; objects replace whole', async () => {
  assert.equal(await parseExtraVars(['port=8080 name="web one" flag=yes on=true empty= list=[1,2]']), {
    port: 8080,
    name: 'web one',
    flag: 'yes', // YAML 1.2: yes is a string
    on: true,
    empty: '',
    list: [1, 2],
  });
  assert.equal(await parseExtraVars(['a=1', 'a=2', '{"b": {"c": 3}}', 'mode="0755"', "q='0644'"]), { a: 2, b: { c: 3 }, mode: '0755', q: '0644' });
  await parseExtraVars(['=1']).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /expected key=value/),
  );
  await parseExtraVars(['@/no/such/file.yaml']).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /cannot read \/no\/such\/file\.yaml: ENOENT/),
  );
});

test('unknown flags: the nearest known one', () => {
  assert.is(didYouMean('--chek'), '--check');
  assert.is(didYouMean('--extravars'), '--extra-vars');
  assert.is(didYouMean('--start-at'), '--start-at-task');
  assert.is(didYouMean('--frobnicate'), undefined);
  assert.throws(() => parseCli(['--lmit', 'x']), /unknown option --lmit \(did you mean --limit\?\)/);
  assert.ok(VALUE_FLAGS.has('-e') && VALUE_FLAGS.has('--start-at-task') && !VALUE_FLAGS.has('--check'));
});

test('-v counts, -e and --limit repeat', () => {
  const o = parseCli(['-vv', '-e', 'a=1', '--extra-vars', 'b=2', '-l', 'web:!db', '--limit', 'x,y']);
  assert.is(o.verbose, 2);
  assert.equal(o.extraVarArgs, ['a=1', 'b=2']);
  assert.equal(o.limit, ['web:!db', 'x', 'y']);
});

const inv = resolveInventory({
  groups: { swarm: {}, lxc: {} },
  hosts: {
    lxc101: { address: '10.0.0.1', groups: ['lxc'] },
    lxc102: { address: '10.0.0.2', groups: ['lxc'] },
    vm1001: { address: '10.0.0.3', groups: ['swarm'] },
    vm1002: { address: '10.0.0.4', groups: ['swarm'] },
  },
});

test('host patterns as Ansible defines them', () => {
  assert.equal(matchHosts(inv, ['vm*']), ['vm1001', 'vm1002']);
  assert.equal(matchHosts(inv, ['!vm1001']), ['lxc101', 'lxc102', 'vm1002']);
  assert.equal(matchHosts(inv, ['swarm:!vm1002']), ['vm1001']);
  assert.equal(matchHosts(inv, ['lxc:swarm:&vm*']), ['vm1001', 'vm1002']);
  // Order does not matter: plain patterns first, then &, then !.
  assert.equal(matchHosts(inv, ['!lxc101:lxc']), ['lxc102']);
  assert.equal(matchHosts(inv, ['lxc10[12]']), ['lxc101', 'lxc102']);
  assert.equal(matchHosts(inv, ['~^vm100[2]$']), ['vm1002']);
  assert.throws(() => matchHosts(inv, ['nosuch']), /"nosuch" is neither a host nor a group/);
});

test.run();
