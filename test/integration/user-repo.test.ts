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

U.run();
