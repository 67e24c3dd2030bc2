// Issue 17's acceptance, items 2-4: a user's playbook repo in a temp folder (outside phoenix),
// a local inventory (`connection: local`), and the mistakes a new user makes: a `state` typo,
// `mode: 755`, `notify` by a name no handler has, a role whose vars the inventory lacks. Each
// exits 4 naming the cause, and no host is touched: the local host's files prove it (the
// task that would have run first did not create its file; the target does not exist).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const U = suite('a user repo: bad arguments are refused before any host is touched');
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const base = realpathSync(mkdtempSync(join(tmpdir(), 'phx-args-')));
const repo = join(base, 'my-playbooks');
const host = join(base, 'host'); // what the local "host" gets: nothing, when planning fails
const first = join(host, 'first-task-ran');
const target = join(host, 'target');

/** The environment of a user's shell: nothing phoenix's npm run would add. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) env[k] = v;
  return { ...env, NO_COLOR: '1' };
}

function run(playbook: string, ...flags: string[]) {
  const r = spawnSync(process.execPath, ['--import=tsx', playbook, '-i', 'inventory.ts', '--plain', ...flags], { cwd: repo, env: cleanEnv(), encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A playbook whose first task creates `first`, then `tasks` (TypeScript source), in one role. */
function write(name: string, tasks: string, roleExtra = '', handlers = '') {
  writeFileSync(
    join(repo, `${name}.ts`),
    `import { copy, file, handler, isMain, main, play, playbook, role, shell, task } from 'phoenix';\n` +
      `const FIRST = ${JSON.stringify(first)};\nconst TARGET = ${JSON.stringify(target)};\n` +
      `${handlers}\n` +
      `const r = role({\n  name: 'mine',${roleExtra}\n  tasks: [\n` +
      `    task({ name: 'first', do: file({ path: FIRST, state: 'touch' }) }),\n${tasks}\n  ],\n});\n` +
      `export const pb = playbook(${JSON.stringify(name)}, [play({ name: 'local', hosts: 'me', roles: [r] })]);\n` +
      `if (isMain(import.meta.url)) await main(pb);\n`,
  );
}

const untouched = () => {
  assert.not.ok(existsSync(first), `${first} exists: a task ran`);
  assert.not.ok(existsSync(target), `${target} exists: a task ran`);
  assert.equal(readdirSync(host), []);
};

U.before(() => {
  assert.ok(relative(REPO, base).startsWith('..'), `${base} must be outside the repo`);
  mkdirSync(join(repo, 'node_modules'), { recursive: true });
  mkdirSync(host);
  // phoenix as the user's dependency (npm install is tested by outside-repo.test.ts), and tsx.
  symlinkSync(REPO, join(repo, 'node_modules', 'phoenix'));
  symlinkSync(join(REPO, 'node_modules', 'tsx'), join(repo, 'node_modules', 'tsx'));
  writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 'my-playbooks', private: true, type: 'module' }));
  writeFileSync(
    join(repo, 'inventory.ts'),
    `import { defineInventory } from 'phoenix';\n` +
      `export default defineInventory({ hosts: { me: { address: 'localhost', connection: 'local', vars: { greeting: 'hi' } } } });\n`,
  );
  write('typo', `    task({ name: 'make the directory', do: file({ path: TARGET, state: 'dirctory' }) }),`);
  write('mode', `    task({ name: 'private dir', do: file({ path: TARGET, state: 'directory', mode: 755 }) }),`);
  write(
    'notify',
    `    task({ name: 'motd', notify: ['restart motd'], do: copy({ dest: TARGET, content: 'hello' }) }),`,
    `\n  handlers: [restartMotd],`,
    `const restartMotd = handler('reload motd', shell('true'));`,
  );
  write(
    'vars',
    `    task({ name: 'motd dir', do: ({ vars }) => file({ path: vars.motd.dir, state: 'directory' }) }),`,
    `\n  vars: { type: 'object', required: ['motd'], properties: { motd: { type: 'object', required: ['dir'], properties: { dir: { type: 'string' } } } } },`,
  );
  write('dynamic', `    task({ name: 'computed', do: ({ vars }) => file({ path: TARGET, state: vars.greeting === 'hi' ? 'dirctory' : 'directory' }) }),`);
  write('good', `    task({ name: 'make the directory', notify: ['note'], do: file({ path: TARGET, state: 'directory', mode: 0o750 }) }),`, `\n  handlers: [note],`, `const note = handler('note', file({ path: TARGET + '/noted', state: 'touch', mode: '0640' }));`);
});
U.after(() => rmSync(base, { recursive: true, force: true }));

U('file state typo: exit 4 naming the play, role, task, field and a guess; --list-tasks and --check too', () => {
  for (const flags of [[], ['--check'], ['--list-tasks']]) {
    const r = run('typo.ts', ...flags);
    assert.is(r.code, 4, `${flags.join(' ')}\n${r.out}`);
    assert.match(r.out, 'play "local", role mine, task "make the directory": file: state "dirctory" is not one of file, directory, link, absent, touch — did you mean "directory"?');
    assert.match(r.out, /nothing ran/);
    assert.not.match(r.out, /at .*\.ts:\d+/); // a usage error: no stack trace
    untouched();
  }
});

U('mode: 755 is refused as decimal', () => {
  const r = run('mode.ts');
  assert.is(r.code, 4, r.out);
  assert.match(r.out, `task "private dir": file: mode: 755 is decimal; write '0755' or 0o755`);
  untouched();
});

U('notify by a name no handler has: exit 4 listing the handlers, before the task changes anything', () => {
  const r = run('notify.ts');
  assert.is(r.code, 4, r.out);
  assert.match(r.out, `task "motd": notify "restart motd" matches no handler of the play (handlers: "reload motd")`);
  untouched();
});

U('a role whose vars the inventory lacks: exit 4 naming the role, the host and the var', () => {
  const r = run('vars.ts');
  assert.is(r.code, 4, r.out);
  assert.match(r.out, 'play "local", role mine, host me: var "motd" is missing');
  assert.not.match(r.out, /Cannot read properties/);
  untouched();
});

U('arguments computed by do: ({ vars }) => ... are checked when the task runs, before the module acts', () => {
  const r = run('dynamic.ts');
  assert.is(r.code, 2, r.out);
  assert.match(r.out, /computed/);
  assert.match(r.out, /file: state "dirctory" is not one of .* did you mean "directory"\?/);
  assert.ok(existsSync(first), 'the task before it ran');
  assert.not.ok(existsSync(target), `${target} exists: the module acted on bad arguments`);
  rmSync(first);
});

U('the corrected playbook runs: 0o750 is a mode, a handler by name runs, a second run changes nothing', () => {
  const r = run('good.ts');
  assert.is(r.code, 0, r.out);
  assert.ok(existsSync(join(target, 'noted')), 'the handler notified by name ran');
  const again = run('good.ts', '--check', '--detailed-exitcode');
  assert.is(again.code, 0, again.out);
});

U.run();
