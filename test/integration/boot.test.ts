// The entry points (docs/speed.md): `node --import=phoenix/boot`, `npx zx` (through .npmrc's inert
// hook, runner/zx-hook.mjs) and `npx phoenix` run a playbook of this checkout from one cached
// esbuild bundle (runner/launch.mjs) instead of through tsx. These tests check that it behaves as
// the same playbook under tsx: same output, templates found next to their role, one Secret class
// shared by the playbook and a TypeScript inventory, and a rebuild when a source file changes;
// and that .npmrc's node option loads nothing into processes other than zx's.
// They run real processes on a local connection (no ssh needed).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zxHookOption } from '../../runner/launch.mjs';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const B = suite('boot: playbooks from the bundle');
let dir: string;
let out: string;

B.before(() => {
  // Inside the checkout (the bundle is only used for the repo's own scripts), not node_modules.
  dir = mkdtempSync(join(ROOT, 'test', '.boot-'));
  out = join(dir, 'out');
  mkdirSync(join(dir, 'templates'));
  const rel = relative(dir, join(ROOT, 'runner', 'index.ts'));
  writeFileSync(join(dir, 'lib.ts'), `export const title: string = 'first';\n`);
  writeFileSync(join(dir, 'templates', 'page.hbs'), 'page of {{who}}\n');
  writeFileSync(
    join(dir, 'inventory.ts'),
    `import { secret } from '${rel}';\n` +
      `export default { hosts: { here: { address: '127.0.0.1', connection: 'local' as const, vars: { token: secret('boot-test-token-value') } } } };\n`,
  );
  writeFileSync(
    join(dir, 'play.ts'),
    `import { isMain, main, play, playbook, role, Secret, shell, task, template } from '${rel}';\n` +
      `import { title } from './lib.ts';\n` +
      `const r = role({ name: 'r', url: import.meta.url, tasks: [\n` +
      `  task({ name: title, do: shell('true') }),\n` +
      `  task({ name: 'page', do: template({ src: 'page.hbs', dest: ${JSON.stringify(join(out, 'page.txt'))}, vars: { who: 'boot' } }) }),\n` +
      `  task({ name: 'token is a Secret', do: ({ vars }) => shell(vars.token instanceof Secret ? 'true' : 'false') }),\n` +
      `] });\n` +
      `export const pb = playbook('boot', [play({ hosts: 'all', roles: [r] })]);\n` +
      `if (isMain(import.meta.url)) await main(pb);\n`,
  );
  mkdirSync(out);
});
B.after(() => {
  rmSync(dir, { recursive: true, force: true });
  // The bundles built for this temp playbook (their manifests name its files).
  const cache = join(ROOT, 'node_modules', '.cache', 'phoenix');
  for (const f of existsSync(cache) ? readdirSync(cache).filter((f) => f.endsWith('.mjs.json')) : []) {
    if (!readFileSync(join(cache, f), 'utf8').includes(relative(ROOT, dir))) continue;
    for (const ext of ['.json', '', '.map']) rmSync(join(cache, f.slice(0, -5) + ext), { force: true });
  }
});

function run(loader: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [`--import=${loader}`, join(dir, 'play.ts'), '-i', join(dir, 'inventory.ts'), '--plain', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NODE_OPTIONS: '', NO_COLOR: '1', PHOENIX_BUNDLE_DEBUG: '1', ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr, bundled: /\[phoenix boot .*\] running /.test(r.stderr), built: /\[phoenix boot .*\] building /.test(r.stderr) };
}

B('a run from the bundle: templates next to the role, the inventory Secret is the runner\'s Secret, same recap as tsx', () => {
  const a = run('phoenix/boot', []);
  assert.ok(a.bundled, `not run from the bundle:\n${a.err}`);
  assert.is(a.code, 0, a.out + a.err);
  assert.match(a.out, /here\s+ok=\d+\s+changed=\d+\s+failed=0/);
  assert.is(readFileSync(join(out, 'page.txt'), 'utf8'), 'page of boot\n');
  rmSync(join(out, 'page.txt'));
  const t = run('tsx', []);
  assert.is(t.code, 0, t.out + t.err);
  assert.not.ok(t.bundled);
  const recap = (s: string) => s.slice(s.lastIndexOf('RECAP'));
  assert.is(recap(a.out), recap(t.out));
});

B('the bundle is reused, and rebuilt when a source file changes', () => {
  const first = run('phoenix/boot', ['--list-tasks']);
  assert.ok(first.bundled, first.err);
  assert.match(first.out, /r : first/);
  const again = run('phoenix/boot', ['--list-tasks']);
  assert.ok(again.bundled && !again.built, `expected the cached bundle:\n${again.err}`);
  writeFileSync(join(dir, 'lib.ts'), `export const title: string = 'second';\n`);
  const later = new Date(Date.now() + 5000);
  utimesSync(join(dir, 'lib.ts'), later, later);
  const edited = run('phoenix/boot', ['--list-tasks']);
  assert.ok(edited.built, `expected a rebuild:\n${edited.err}`);
  assert.match(edited.out, /r : second/);
  assert.not.match(edited.out, /r : first/);
});

B('PHOENIX_BUNDLE=0 and scripts that are not playbooks go through tsx', () => {
  const off = run('phoenix/boot', ['--list-tasks'], { PHOENIX_BUNDLE: '0' });
  assert.is(off.code, 0, off.err);
  assert.not.ok(off.bundled);
  assert.match(off.out, /r : second|r : first/);
  writeFileSync(join(dir, 'tool.ts'), `const n: number = 6 * 7;\nprocess.stdout.write('tool ' + n + '\\n');\n`);
  const r = spawnSync(process.execPath, ['--import=phoenix/boot', join(dir, 'tool.ts')], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', PHOENIX_BUNDLE_DEBUG: '1' } });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'tool 42\n');
  assert.not.match(r.stderr, /running/);
});

B('errors keep their exit codes: a bad flag is a usage error (4) from the bundle too', () => {
  const r = run('phoenix/boot', ['--no-such-flag']);
  assert.ok(r.bundled, r.err);
  assert.is(r.code, 4, r.err);
});

/** As a user's shell runs npx: none of npm's variables from the test run (npm run sets them). */
function userEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) e[k] = v;
  return { ...e, NO_COLOR: '1', PHOENIX_BUNDLE_DEBUG: '1', ...env };
}

B('npx zx runs the playbook from the bundle without loading zx; with a zx flag first, zx runs it through tsx', () => {
  const args = [join(dir, 'play.ts'), '-i', join(dir, 'inventory.ts'), '--list-tasks'];
  const r = spawnSync('npx', ['zx', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: userEnv() });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /\[phoenix boot .*\] running /);
  assert.match(r.stdout, /r : (first|second)/);
  const q = spawnSync('npx', ['zx', '--quiet', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: userEnv() });
  assert.is(q.status, 0, q.stdout + q.stderr);
  assert.not.match(q.stderr, /running /);
  assert.match(q.stdout, /r : (first|second)/);
});

B('npx phoenix site runs playbooks/site.ts in-process, from the bundle', () => {
  const r = spawnSync('npx', ['phoenix', 'site', '--list-tasks'], { cwd: join(ROOT, 'docs'), encoding: 'utf8', timeout: 120_000, env: userEnv() });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /\[phoenix boot .*\] running node_modules\/\.cache\/phoenix\/site_ts-/);
  assert.match(r.stdout, /play: /);
});

B('.npmrc sets one node option, the zx hook, and it loads nothing into other processes', () => {
  const lines = readFileSync(join(ROOT, '.npmrc'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  assert.equal(lines, [`node-options=${zxHookOption()}`]);
  // A process that is not zx's CLI (tsc, an install script, `node x.mjs`): no TypeScript loader.
  // An enum: Node 24's own type stripping refuses it too (ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX), so only a
  // TypeScript loader (tsx) could load it: on Node 20 and 24 alike it must fail.
  writeFileSync(join(dir, 'probe.ts'), 'enum E { A = 1 }\nexport const n: number = E.A;\n');
  const probe = `import(${JSON.stringify(join(dir, 'probe.ts'))}).then(() => console.log('loaded'), (e) => console.log(e.code))`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8', env: { ...userEnv(), NODE_OPTIONS: zxHookOption() } });
  assert.ok(['ERR_UNKNOWN_FILE_EXTENSION', 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX'].includes(r.stdout.trim()), r.stdout + r.stderr);
});

B.run();
