// Issue 17, items 2-4 and 7: module arguments, handler names and roles' vars are checked when
// a playbook is planned, before any host is touched; command() splits like Ansible's command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  apt, argumentErrorOf, command, copy, file, handler, installBinary, play, playbook, resolveInventory, resolvePlan, role, SelectionError, shell, splitCommand,
  systemd, task, template,
} from '../../runner/index.ts';
import { decimalMode } from '../../runner/modules/args.ts';

const msg = (a: unknown) => argumentErrorOf(a)?.message;

test('the compiled module validators are generated from the current schemas', async () => {
  const { schemasSource, typesSource, SCHEMAS_PATH, TYPES_PATH } = await import('../../runner/modules/gen-schemas.ts');
  assert.ok(readFileSync(SCHEMAS_PATH, 'utf8') === schemasSource(), 'schemas.generated.js is stale: node --import=tsx runner/modules/gen-schemas.ts');
  assert.ok(readFileSync(TYPES_PATH, 'utf8') === typesSource(), 'schemas.generated.d.ts is stale');
});

test('a wrong enum names the module, the field, the choices and a guess', () => {
  assert.is(msg(file({ path: '/x', state: 'dirctory' as 'directory' })), 'file: state "dirctory" is not one of file, directory, link, absent, touch — did you mean "directory"?');
  assert.match(msg(systemd({ name: 'x', state: 'restart' as 'restarted' }))!, /systemd: state "restart" is not one of started, stopped, restarted, reloaded — did you mean "restarted"\?/);
});

test('an unknown key is refused with a guess, or the known keys', () => {
  assert.is(msg(copy({ dest: '/x', contnt: 'a' } as never)), 'copy: unknown field "contnt" — did you mean "content"?');
  assert.match(msg(file({ path: '/x', state: 'file', zzz: 1 } as never))!, /unknown field "zzz" \(known: path, state, src, force, mode, owner, group\)/);
  assert.match(msg(installBinary({ dest: '/x', source: { url: 'u', sha: 'x' } } as never))!, /unknown field "source\.sha" — did you mean "sha256"\?/);
});

test('required fields and types', () => {
  assert.match(msg(template({ src: 'a.hbs' } as never))!, /template: dest is required; vars is required/);
  assert.match(msg(apt({ name: 'x', lockTimeout: '60' as never }))!, /lockTimeout must be a number \(got "60"\)/);
  assert.match(msg(file('x' as never))!, /file: the arguments must be an object/);
  assert.is(msg(file({ path: '/x', state: 'directory', mode: '0755', owner: 'root' })), undefined);
});

test('modes: octal strings and 0o numbers pass; a decimal that looks octal is refused', () => {
  assert.is(msg(file({ path: '/x', state: 'directory', mode: 755 })), "file: mode: 755 is decimal; write '0755' or 0o755");
  assert.is(msg(copy({ dest: '/x', content: '', mode: 644 })), "copy: mode: 644 is decimal; write '0644' or 0o644");
  for (const ok of [0o755, 0o644, 0o600, 0o640, 0o400, 0o1777, 0o2775, 0o4755, 0o711, '0755', '644', '1777'])
    assert.is(msg(file({ path: '/x', state: 'file', mode: ok })), undefined, String(ok));
  for (const bad of [755, 644, 600, 640, 700, 400, 440, 444, 664, 750, 775, 777, 1777]) assert.ok(decimalMode(bad), String(bad));
  assert.match(msg(file({ path: '/x', state: 'file', mode: 'u+x' }))!, /mode "u\+x" is not octal digits/);
  assert.match(msg(file({ path: '/x', state: 'file', mode: 99999 }))!, /mode 99999 is out of range/);
});

test('command() splits like Ansible (shlex): quotes group, nothing else is special', () => {
  assert.equal(splitCommand(`printf "%s" 'a b;c'`), ['printf', '%s', 'a b;c']);
  assert.equal(splitCommand('echo $HOME | wc -l > out && x'), ['echo', '$HOME', '|', 'wc', '-l', '>', 'out', '&&', 'x']);
  assert.equal(splitCommand(`a\\ b "c\\"d\\n" #e`), ['a b', 'c"d\\n', '#e']);
  assert.match(msg(command('echo "open'))!, /command: no closing quotation/);
  assert.match(msg(command([]))!, /command: the command is empty/);
  assert.match(msg(shell(''))!, /shell: the command must be a non-empty string/);
  const c = command(['printf', '%s', 'a b;c']);
  assert.is(c.module, 'command');
  assert.is(c.summary, `'printf' %s 'a b;c'`);
});

const inv = resolveInventory<any>({
  hosts: {
    web1: { address: '10.0.0.1', groups: ['web'], vars: { site: { dir: '/srv', port: 80 } } },
    web2: { address: '10.0.0.2', groups: ['web'], vars: { site: { port: '80' } } },
  },
});
const planError = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.instance(e, SelectionError);
    return (e as Error).message;
  }
  assert.unreachable('planning did not fail');
  return '';
};

test('planning reports bad module arguments naming play, role and task, all at once', () => {
  const r = role({
    name: 'site',
    tasks: [task({ name: 'dir', do: file({ path: '/srv', state: 'dirctory' as 'directory' }) }), task({ name: 'page', do: copy({ dest: '/srv/i', content: 'x', mode: 644 }) })],
    handlers: [handler('bad handler', systemd({ name: 'x', stat: 'started' } as never))],
  });
  const m = planError(() => resolvePlan(playbook('pb', [play({ name: 'web', hosts: 'web', roles: [r] })]), inv));
  assert.match(m, /playbook pb: 3 problems found before contacting any host; nothing ran/);
  assert.match(m, /play "web", role site, task "dir": file: state "dirctory" is not one of .* did you mean "directory"\?/);
  assert.match(m, /play "web", role site, task "page": copy: mode: 644 is decimal; write '0644' or 0o644/);
  assert.match(m, /play "web", role site, handler "bad handler": systemd: unknown field "stat" — did you mean "state"\?/);
});

test('notify by name: resolved to the play\'s handler; an unknown name is a planning error listing the names', () => {
  const restart = handler('restart site', shell('true'));
  const other = handler('reload other', shell('true'));
  const a = role({ name: 'a', tasks: [task({ name: 't', notify: ['restart site', 'reload other'], do: shell('true') })], handlers: [restart] });
  const b = role({ name: 'b', tasks: [task({ name: 'u', notify: [other], do: shell('true') })] });
  const plan = resolvePlan(playbook('pb', [play({ name: 'web', hosts: 'web', roles: [a, b] })]), inv);
  assert.equal(plan[0]!.tasks[0]!.task.notify, [restart, other]);
  const bad = role({ name: 'c', tasks: [task({ name: 'v', notify: ['restart motd'], do: shell('true') })], handlers: [restart] });
  const m = planError(() => resolvePlan(playbook('pb', [play({ name: 'web', hosts: 'web', roles: [bad] })]), inv));
  assert.match(m, /play "web", role c, task "v": notify "restart motd" matches no handler of the play \(handlers: "restart site"\)/);
});

test('a role\'s vars schema is checked for every host it runs on, naming role, host and var', () => {
  const r = role({
    name: 'site',
    vars: { type: 'object', required: ['site'], properties: { site: { type: 'object', required: ['dir', 'port'], properties: { dir: { type: 'string' }, port: { type: 'integer' } } } } },
    tasks: [task({ name: 't', do: shell('true') })],
  });
  const pb = playbook('pb', [play({ name: 'web', hosts: 'web', roles: [r] })]);
  const m = planError(() => resolvePlan(pb, inv));
  assert.match(m, /play "web", role site, host web2: var "site\.dir" is missing/);
  assert.match(m, /play "web", role site, host web2: var "site\.port" must be a whole number \(got "80"\)/);
  assert.not.match(m, /web1/);
  assert.is(resolvePlan(pb, inv, { limit: ['web1'] }).length, 1);
  // A role that none of the selected tasks belong to is not checked.
  const other = role({ name: 'other', tasks: [task({ name: 'o', tags: ['o'], do: shell('true') })] });
  assert.is(resolvePlan(playbook('pb', [play({ hosts: 'web', roles: [r, other] })]), inv, { tags: ['o'] }).length, 1);
});

test('a vars schema using keywords beyond the built-in subset is compiled by ajv', () => {
  const r = role({ name: 'x', vars: { type: 'object', required: ['site'], properties: { site: { type: 'object', propertyNames: { pattern: '^[a-z]+$' } } } }, tasks: [task({ name: 't', do: shell('true') })] });
  const m = planError(() => resolvePlan(playbook('pb', [play({ hosts: 'web', roles: [r] })]), resolveInventory({ hosts: { h: { address: '10.0.0.9', groups: ['web'], vars: { site: { BAD: 1 } } } } })));
  assert.match(m, /role x, host h: var "site" must match pattern/);
});



test("phoenix's roles declare their vars: the production inventory passes, a host without nginx's vars is named", async () => {
  const { site } = await import('../../playbooks/site.ts');
  const { phoenix } = await import('../../inventory.ts');
  assert.ok(resolvePlan(site, resolveInventory(phoenix)).length > 0);
  const { nginx: _n, ...rest } = phoenix.vars as Record<string, unknown>;
  const m = planError(() => resolvePlan(site, resolveInventory({ ...phoenix, vars: rest } as never), { tags: ['nginx'] }));
  assert.match(m, /role nginx, host \S+: var "nginx" is missing/);
  assert.not.match(m, /role traefik/);
});

test('a misspelt task option or an undefined handler is a planning error, not silently ignored', () => {
  const r = role({
    name: 'r',
    tasks: [
      task({ name: 'a', do: shell('true'), notfy: ['x'] } as never),
      task({ name: 'b', do: shell('true'), notify: [undefined as never] }),
    ],
  });
  const m = planError(() => resolvePlan(playbook('pb', [play({ name: 'p', hosts: 'web', roles: [r] })]), inv));
  assert.match(m, /play "p", role r, task "a": unknown task option "notfy" — did you mean "notify"\?/);
  assert.match(m, /play "p", role r, task "b": notify\[0\] is undefined \(a handler imported under a wrong name\?\)/);
});
test.run();
