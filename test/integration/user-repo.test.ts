// A user's playbook repo in a temp folder, with a local inventory (connection: local): what the
// runner does with a missing or wrong inventory and with mistakes in the user's own code. Every
// mistake exits 4 naming its cause, and no host is touched: the local files prove it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const U = suite('a user repo with a local inventory');
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const TSX = pathToFileURL(join(REPO, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')).href;
const RUNNER = join(REPO, 'runner', 'index.ts');
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'phx-user-')));
const target = join(dir, 'target');

/** The user's environment: no NODE_OPTIONS or npm config from phoenix's own npm run. */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) e[k] = v;
  return { ...e, NO_COLOR: '1' };
}

/** `node --import=tsx <playbook> ...` from the user's folder. */
export function run(playbook: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [`--import=${TSX}`, playbook, ...args], { cwd: dir, encoding: 'utf8', env: env(), timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, all: `${r.stdout}${r.stderr}` };
}

const put = (name: string, text: string) => {
  mkdirSync(join(dir, name, '..'), { recursive: true });
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

const PLAYBOOK = `import { file, isMain, main, play, playbook, role, task } from ${JSON.stringify(RUNNER)};
const r = role<{ target: string }>({ name: 'files', tasks: [
  task({ name: 'target dir', do: ({ vars }) => file({ path: vars.target, state: 'directory' }) }),
] });
export default playbook('mine', [play({ hosts: 'local', roles: [r] })]);
if (isMain(import.meta.url)) await main(playbook('mine', [play({ hosts: 'local', roles: [r] })]));
`;
const INVENTORY = `hosts:\n  me:\n    address: localhost\n    connection: local\n    groups: [local]\n    vars: { target: ${JSON.stringify(target)} }\n`;

U.before(() => {
  put('package.json', '{ "type": "module" }\n');
  put('site.ts', PLAYBOOK);
});
U.after(() => rmSync(dir, { recursive: true, force: true }));

U('no -i and no ./inventory.*: exit 4 listing what was looked for; phoenix\'s own inventory is never used', () => {
  const r = run('site.ts', '--list-hosts');
  assert.is(r.code, 4, r.all);
  assert.match(r.err, /no inventory: none given with -i, and none in /);
  assert.match(r.err, /\.\/inventory\.ts, \.\/inventory\.yaml, \.\/inventory\.yml, \.\/inventory\.json/);
  assert.not.match(r.all, /lxc10\d|vm100\d|10\.0\.0\./);
});

U('-i PATH that does not exist: exit 4 naming the path; "-i lab" is not phoenix\'s lab', () => {
  let r = run('site.ts', '-i', 'inventory.ts', '--list-hosts');
  assert.is(r.code, 4, r.all);
  assert.match(r.err, new RegExp(`inventory not found: ${join(dir, 'inventory.ts')} does not exist`));
  assert.not.match(r.all, /lxc10\d|vm100\d/);
  r = run('site.ts', '-i', 'lab', '--list-hosts');
  assert.is(r.code, 4, r.all);
  assert.match(r.err, /inventory not found: .*\/lab does not exist \(also looked for \.\/inventories\/lab\.ts/);
  assert.not.match(r.all, /lxc10\d|vm100\d/);
});

U('-i of the wrong kind (a folder, an unknown extension) says what it is, not "not found"', () => {
  mkdirSync(join(dir, 'empty'), { recursive: true });
  let r = run('site.ts', '-i', 'empty', '--list-hosts');
  assert.is(r.code, 4, r.all);
  assert.match(r.err, /inventory .*\/empty is a folder with no inventory in it \(looked for inventory\.ts, inventory\.yaml/);
  assert.not.match(r.err, /not found/);
  put('hosts.txt', 'me\n');
  r = run('site.ts', '-i', 'hosts.txt', '--list-hosts');
  assert.is(r.code, 4, r.all);
  assert.match(r.err, /inventory .*\/hosts\.txt: cannot read a "\.txt" file as an inventory \(expected one of \.ts, \.yaml/);
  assert.not.match(r.err, /not found/);
  assert.not.ok(existsSync(target));
});

U('without -i, ./inventory.yaml of the current folder is used, and --list-hosts names it', () => {
  const inv = put('inventory.yaml', INVENTORY);
  try {
    const r = run('site.ts', '--list-hosts');
    assert.is(r.code, 0, r.all);
    assert.is(r.out, `inventory: ${inv}\nplay: files on local\n  hosts (1): me\n`);
    // A folder holding an inventory is one too (as in Ansible).
    put('prod/inventory.yaml', INVENTORY);
    const p = run('site.ts', '-i', 'prod', '--list-hosts');
    assert.is(p.code, 0, p.all);
    assert.match(p.out, new RegExp(`^inventory: ${join(dir, 'prod', 'inventory.yaml')}\n`));
    assert.not.ok(existsSync(target));
  } finally {
    rmSync(inv);
  }
});

/** The way a user repo's .npmrc runs playbooks: `npx zx` with load-errors preloaded before tsx. */
function zx(playbook: string, ...args: string[]) {
  const e = { ...env(), NODE_OPTIONS: `--import=${pathToFileURL(join(REPO, 'runner', 'load-errors.mjs')).href} --import=${TSX}` };
  const r = spawnSync(join(REPO, 'node_modules', '.bin', 'zx'), [playbook, ...args], { cwd: dir, encoding: 'utf8', env: e, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, all: `${r.stdout}${r.stderr}` };
}

/** A playbook whose role module is `role`: the mistakes are in the user's role file. */
function withRole(name: string, role: string) {
  put(`roles/${name}.ts`, role);
  return put(
    `${name}.ts`,
    `import { isMain, main, play, playbook } from ${JSON.stringify(RUNNER)};\nimport r from './roles/${name}.ts';\n` +
      `export const pb = playbook('mine', [play({ hosts: 'local', roles: [r] })]);\nif (isMain(import.meta.url)) await main(pb);\n`,
  );
}

const GOOD_ROLE = (before: string) =>
  `import { file, role, task, secretFromEnv } from ${JSON.stringify(RUNNER)};\n${before}\n` +
  `export default role<{ target: string }>({ name: 'r', tasks: [task({ name: 'target dir', do: ({ vars }) => file({ path: vars.target, state: 'directory' }) })] });\n`;

/** No phoenix stack frames, no stack at all: the user's file:line and the message. */
function userError(r: { code: number | null; err: string; all: string }, where: RegExp, what: RegExp) {
  assert.is(r.code, 4, r.all);
  assert.match(r.err, /^phoenix: cannot load the playbook: /m);
  assert.match(r.err, where);
  assert.match(r.err, what);
  assert.not.match(r.err, /^\s+at /m, 'no stack trace');
  assert.not.match(r.err, /runner\/(cli|engine|inventory|load-errors|dsl)\.|node:internal/);
  assert.not.ok(existsSync(target), 'no host touched');
}

U('a throw at import time in a role: exit 4 with the role\'s file:line and the message', () => {
  put('inventory.yaml', INVENTORY);
  try {
    withRole('throws', GOOD_ROLE(`const limits = { max: 3 };\nif (limits.max < 5) throw new Error('max must be at least 5');`));
    userError(run('throws.ts'), /roles\/throws\.ts:3:\d+: /, /max must be at least 5/);
    // The same through zx (which catches a failed import itself).
    userError(zx('throws.ts'), /roles\/throws\.ts:3:\d+: /, /max must be at least 5/);
  } finally {
    rmSync(join(dir, 'inventory.yaml'));
  }
});

U('an unset secretFromEnv() variable at top level: exit 4 naming the variable and the line', () => {
  put('inventory.yaml', INVENTORY);
  try {
    withRole('secret', GOOD_ROLE(`export const token = secretFromEnv('PHX_USER_REPO_UNSET');`));
    userError(run('secret.ts'), /roles\/secret\.ts:2:\d+: /, /environment variable PHX_USER_REPO_UNSET is not set/);
  } finally {
    rmSync(join(dir, 'inventory.yaml'));
  }
});

U('a syntax error and a bad import (with the preload, as .npmrc sets it): exit 4 with file:line', () => {
  put('inventory.yaml', INVENTORY);
  try {
    withRole('syntax', GOOD_ROLE(`const x = ;`));
    userError(zx('syntax.ts'), /roles\/syntax\.ts:2:\d+: syntax error: /, /Unexpected/);
    withRole('badimport', `import { nosuch } from ${JSON.stringify(RUNNER)};\nexport default nosuch;\n`);
    userError(zx('badimport.ts'), /roles\/badimport\.ts:1: /, /does not provide an export named 'nosuch'/);
    withRole('nofile', `import x from './missing.ts';\nexport default x;\n`);
    userError(zx('nofile.ts'), /roles\/nofile\.ts: /, /Cannot find module '.*\/roles\/missing\.ts'/);
  } finally {
    rmSync(join(dir, 'inventory.yaml'));
  }
});

U('a TypeScript inventory that throws: exit 4 naming the inventory file and line', () => {
  put('broken-inventory.ts', `const hosts = {};\nthrow new Error('no hosts configured yet');\nexport default { hosts };\n`);
  const r = run('site.ts', '-i', 'broken-inventory.ts', '--list-hosts');
  assert.is(r.code, 4, r.all);
  assert.match(r.err, /cannot load inventory .*broken-inventory\.ts: .*broken-inventory\.ts:2:\d+: no hosts configured yet/);
  assert.not.match(r.err, /^\s+at /m);
});

const GREETER = `import { copy, isMain, main, play, playbook, role, task } from ${JSON.stringify(RUNNER)};
interface V { target: string; greeting: string; count: number }
const greet = role<V>({ name: 'greet', tasks: [
  task({ name: 'greeting', do: ({ vars }) => copy({ dest: \`\${vars.target}.txt\`, content: \`\${vars.greeting} x\${vars.count + 1}\\n\` }) }),
] });
export const pb = playbook<V>('greeter', [play({ hosts: 'local', roles: [greet] })]);
if (isMain(import.meta.url)) await main(pb);
`;
const GREETER_INV = `vars: { greeting: from the inventory, count: 1 }\nhosts:\n  me:\n    address: localhost\n    connection: local\n    groups: [local]\n    vars: { target: ${JSON.stringify(target)}, greeting: from the host }\n`;

U('-e overrides inventory vars, host vars included (check mode shows the new value); values are YAML/JSON typed; @file', () => {
  put('greeter.ts', GREETER);
  const inv = put('greeter.yaml', GREETER_INV);
  const before = run('greeter.ts', '-i', inv, '--check', '--diff', '--plain');
  assert.is(before.code, 0, before.all);
  assert.match(before.out, /\+from the host x2/);
  const e = run('greeter.ts', '-i', inv, '--check', '--diff', '--plain', '-e', 'greeting="from -e"', '-e', 'count=41');
  assert.is(e.code, 0, e.all);
  assert.match(e.out, /\+from -e x42/);
  assert.not.match(e.out, /from the host/);
  put('override.yaml', 'greeting: from a file\ncount: 9\n');
  const f = run('greeter.ts', '-i', inv, '--check', '--diff', '--plain', '-e', '@override.yaml', '-e', '{"count": 99}');
  assert.is(f.code, 0, f.all);
  assert.match(f.out, /\+from a file x100/);
  const bad = run('greeter.ts', '-i', inv, '--check', '-e', 'no-equals-sign');
  assert.is(bad.code, 4, bad.all);
  assert.match(bad.err, /--extra-vars "no-equals-sign": expected key=value, a JSON object or @file/);
  assert.not.ok(existsSync(`${target}.txt`), 'check mode wrote nothing');
});

U('--syntax-check: plan and tsc over the playbook\'s files; a type error exits 4 naming file(line,col); no host touched', () => {
  put('tsconfig.json', JSON.stringify({
    compilerOptions: { target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true, types: ['node'], typeRoots: [join(REPO, 'node_modules', '@types')] },
  }));
  put('greeter.ts', GREETER);
  const inv = put('greeter.yaml', GREETER_INV);
  const ok = run('greeter.ts', '-i', inv, '--syntax-check');
  assert.is(ok.code, 0, ok.all);
  assert.match(ok.out, /syntax ok/);
  put('typo.ts', GREETER.replace('vars.count + 1', 'vars.cuont + 1'));
  const bad = run('typo.ts', '-i', inv, '--syntax-check');
  assert.is(bad.code, 4, bad.all);
  assert.match(bad.err, /--syntax-check: tsc found 1 error:\n\s+typo\.ts\(4,\d+\): error TS\d+: Property 'cuont' does not exist/);
  assert.not.ok(existsSync(`${target}.txt`));
  assert.not.ok(existsSync(join(dir, `.phoenix-syntax-check-${process.pid}.json`)));
  rmSync(join(dir, 'tsconfig.json'));
});

U.run();
