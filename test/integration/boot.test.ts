// The entry points (docs/speed.md): `node --import=phoenix/boot` and `npx phoenix` (bin/phoenix.mjs)
// run a playbook of this checkout from one cached
// esbuild bundle (runner/launch.mjs) instead of through tsx. These tests check that it behaves as
// the same playbook under tsx: same output, templates found next to their role, one Secret class
// shared by the playbook and a TypeScript inventory, and a rebuild when a source file changes;
// that .npmrc sets no node option, and that every entry point runs site.ts (`npx zx` on a Node
// that strips types: >= 22.18).
// They run real processes on a local connection (no ssh needed).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

B('stacks from the bundle name the .ts files and lines (the source map is read when a stack is shown): a throw while loading is the user\'s file:line', () => {
  const rel = relative(dir, join(ROOT, 'runner', 'index.ts'));
  writeFileSync(join(dir, 'thrower.ts'), `export function check(n: number): void {\n  if (n > 1) throw new RangeError('too many: ' + n);\n}\n`);
  writeFileSync(
    join(dir, 'stacky.ts'),
    `import { isMain, main, play, playbook, role, shell, task } from '${rel}';\n` +
      `import { writeFileSync } from 'node:fs';\n` +
      `import { check } from './thrower.ts';\n` +
      `function where(): string {\n  return new Error('here').stack ?? '';\n}\n` +
      `writeFileSync(${JSON.stringify(join(out, 'stack.txt'))}, where());\n` +
      `check(Number(process.env.PHX_TEST_N ?? 1));\n` +
      `export const pb = playbook('stacky', [play({ hosts: 'all', roles: [role({ name: 's', tasks: [task({ name: 't', do: shell('true') })] })] })]);\n` +
      `if (isMain(import.meta.url)) await main(pb);\n`,
  );
  const args = ['-i', join(dir, 'inventory.ts'), '--list-tasks'];
  const env = { ...process.env, NODE_OPTIONS: '', NO_COLOR: '1', PHOENIX_BUNDLE_DEBUG: '1' };
  const ok = spawnSync(process.execPath, ['--import=phoenix/boot', join(dir, 'stacky.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env });
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /\] running /, 'from the bundle');
  const stack = readFileSync(join(out, 'stack.txt'), 'utf8');
  assert.match(stack, /^Error: here\n    at where \(/);
  assert.ok(stack.includes(`at where (${join(dir, 'stacky.ts')}:5:10)`), stack);
  assert.ok(stack.includes(`(${join(dir, 'stacky.ts')}:7:`), stack);
  assert.not.match(stack, /node_modules\/\.cache/, 'no frame in the bundle file');
  const bad = spawnSync(process.execPath, ['--import=phoenix/boot', join(dir, 'stacky.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...env, PHX_TEST_N: '3' } });
  assert.is(bad.status, 4, bad.stderr);
  assert.match(bad.stderr, /\] running /, 'from the bundle');
  assert.ok(bad.stderr.includes(`phoenix: cannot load the playbook: ${join(dir, 'thrower.ts')}:2:20: RangeError: too many: 3`), bad.stderr);
});

/** As a user's shell runs npx: none of npm's variables from the test run (npm run sets them). */
function userEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) e[k] = v;
  return { ...e, NO_COLOR: '1', PHOENIX_BUNDLE_DEBUG: '1', ...env };
}

// Node 22.18 and later strip types by themselves (phoenix's code is erasable syntax only: tsconfig's
// erasableSyntaxOnly); Node 20 cannot import a .ts file without a loader in its options.
const NATIVE_TS = (() => {
  const [maj, min] = process.versions.node.split('.').map(Number) as [number, number];
  return maj > 22 || (maj === 22 && min >= 18);
})();

B('.npmrc sets no node option: a process npm starts in this checkout gets no NODE_OPTIONS', () => {
  const npmrc = join(ROOT, '.npmrc');
  const lines = existsSync(npmrc) ? readFileSync(npmrc, 'utf8').split('\n') : [];
  assert.equal(lines.filter((l) => /^\s*node[-_]options\s*=/i.test(l)), []);
  const r = spawnSync('npm', ['exec', '--', 'node', '-p', 'JSON.stringify(process.env.NODE_OPTIONS ?? null)'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: userEnv() });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(r.stdout.trim(), 'null', r.stderr);
});

B('every entry point runs playbooks/site.ts: npx phoenix site, bin/phoenix.mjs, node --import=phoenix/boot and --import=tsx', () => {
  const runs: Array<[string, string, string[]]> = [
    ['npx phoenix site', 'npx', ['phoenix', 'site', '--list-tasks']],
    ['bin/phoenix.mjs site', process.execPath, [join(ROOT, 'bin', 'phoenix.mjs'), 'site', '--list-tasks']],
    ['node --import=phoenix/boot', process.execPath, ['--import=phoenix/boot', 'playbooks/site.ts', '--list-tasks']],
    ['node --import=tsx', process.execPath, ['--import=tsx', 'playbooks/site.ts', '--list-tasks']],
  ];
  const outs = runs.map(([name, cmd, args]) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: userEnv() });
    assert.is(r.status, 0, `${name}:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^play: /m, name);
    return r.stdout;
  });
  for (const o of outs) assert.is(o, outs[0]);
});

B(`npx zx playbooks/site.ts: ${NATIVE_TS ? 'runs on this Node by its own type stripping' : 'Node 20 has no TypeScript without a loader, and says so'}`, () => {
  const r = spawnSync('npx', ['zx', 'playbooks/site.ts', '--list-tasks'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: userEnv() });
  if (NATIVE_TS) {
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^play: /m);
    const viaPhoenix = spawnSync('npx', ['phoenix', 'site', '--list-tasks'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: userEnv() });
    assert.is(r.stdout, viaPhoenix.stdout);
  } else {
    assert.is.not(r.status, 0);
    assert.match(r.stderr, /ERR_UNKNOWN_FILE_EXTENSION/);
  }
});

B.run();
