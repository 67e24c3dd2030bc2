// The docs cannot drift from the code: every fenced block marked `runnable` in README.md and
// docs/*.md runs here (docs/cli.md, "Runnable examples in the docs", describes the marking).
//   ```ts runnable file=NAME   (any language)  the block is saved as NAME in the document's folder
//   ```sh runnable                             the block runs there with bash -e; it must exit 0, and print
//                                              no `phoenix: ` error line unless marked expect-error
// Each document gets a temp folder set up as a playbook repo of your own would be (docs/own-repo.md):
// "type": "module", phoenix, tsx and zx installed (linked from this checkout), and the .npmrc of
// examples/my-lab. The files README.md's blocks save are there for every other document too.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const D = suite('runnable blocks in the docs');
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const base = realpathSync(mkdtempSync(join(tmpdir(), 'phx-docs-')));

export interface Block {
  doc: string;
  line: number;
  lang: string;
  file?: string;
  /** `expect-error`: the block shows an error on purpose (it checks it itself). */
  expectError: boolean;
  body: string;
}

/** The runnable blocks of a markdown text, in order. */
export function runnableBlocks(doc: string, text: string): Block[] {
  const out: Block[] = [];
  const re = /^```([\w-]*)([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (let m; (m = re.exec(text)); ) {
    const [, lang, attrs, body] = m;
    if (!/(^|\s)runnable(\s|$)/.test(attrs!)) continue;
    const file = /(?:^|\s)file=(\S+)/.exec(attrs!)?.[1];
    out.push({ doc, line: text.slice(0, m.index).split('\n').length, lang: lang!, file, expectError: /(^|\s)expect-error(\s|$)/.test(attrs!), body: body! });
  }
  return out;
}

const docs = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const blocks = new Map(docs.map((d) => [d, runnableBlocks(d, readFileSync(join(REPO, d), 'utf8'))]));

/** A folder set up as your own playbook repo: phoenix, tsx and zx linked from this checkout. */
function repoFolder(name: string): string {
  const dir = join(base, name.replace(/\W+/g, '_'));
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "name": "docs-example", "private": true, "type": "module" }\n');
  writeFileSync(join(dir, '.npmrc'), readFileSync(join(REPO, 'examples', 'my-lab', '.npmrc')));
  symlinkSync(REPO, join(dir, 'node_modules', 'phoenix'));
  for (const p of ['tsx', 'zx', 'typescript', '@types']) symlinkSync(join(REPO, 'node_modules', p), join(dir, 'node_modules', p));
  for (const b of ['zx', 'tsx', 'tsc']) symlinkSync(join(REPO, 'node_modules', '.bin', b), join(dir, 'node_modules', '.bin', b));
  return dir;
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^NODE_OPTIONS$|^INIT_CWD$/i.test(k)) e[k] = v;
  return { ...e, NO_COLOR: '1', npm_config_offline: 'true' };
}

/** Saves and runs one document's blocks; returns the output of its shell blocks. */
function runDoc(doc: string, seed: Block[] = []): string {
  const dir = repoFolder(doc);
  let out = '';
  for (const b of [...seed.filter((s) => s.file), ...blocks.get(doc)!]) {
    const where = `${b.doc}:${b.line}`;
    if (b.file) {
      mkdirSync(dirname(join(dir, b.file)), { recursive: true });
      writeFileSync(join(dir, b.file), b.body);
      continue;
    }
    assert.ok(b.lang === 'sh' || b.lang === 'bash', `${where}: a runnable block without file= must be sh`);
    const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', b.body], { cwd: dir, env: env(), encoding: 'utf8', timeout: 300_000 });
    const text = `${r.stdout}${r.stderr}`;
    assert.is(r.status, 0, `${where}: the block exited ${r.status}:\n${b.body}\n--- output:\n${text}`);
    if (!b.expectError) assert.not.match(text, /^phoenix: /m, `${where}: phoenix reported an error:\n${text}`);
    out += text;
  }
  return out;
}

D.after(() => {
  rmSync(base, { recursive: true, force: true });
  rmSync('/tmp/phoenix-hello', { recursive: true, force: true });
});

D('README.md: the local playbook runs on this machine: check mode touches nothing, the second run changes nothing', () => {
  const readme = blocks.get('README.md')!;
  assert.ok(readme.some((b) => b.file && /connection: local/.test(b.body)), 'the README has a runnable connection: local example');
  rmSync('/tmp/phoenix-hello', { recursive: true, force: true });
  const out = runDoc('README.md');
  // The four commands: check (nothing made), run (-v shows the output), again (no change), -e in check mode.
  const recaps = [...out.matchAll(/^me\s+ok=(\d+)\s+changed=(\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.equal(recaps, [[0, 1], [1, 2], [3, 0], [2, 1]], out);
  assert.match(out, /stdout: Hello from phoenix/);
  assert.match(out, /\+Hi\n/);
  assert.is(readFileSync('/tmp/phoenix-hello/hello.txt', 'utf8'), 'Hello from phoenix\n');
});

for (const doc of docs.filter((d) => d !== 'README.md')) {
  if (!blocks.get(doc)!.length) continue;
  D(`${doc}: its runnable blocks run`, () => {
    runDoc(doc, blocks.get('README.md')!);
  });
}

D('every runnable block is found: the marking is documented, and no block is marked by mistake', () => {
  const all = [...blocks.values()].flat();
  assert.ok(all.length >= 3, `found ${all.length}`);
  assert.ok(existsSync(join(REPO, 'docs', 'cli.md')) && /```sh runnable/.test(readFileSync(join(REPO, 'docs', 'cli.md'), 'utf8')));
  for (const b of all) assert.ok(b.file || ['sh', 'bash'].includes(b.lang), `${b.doc}:${b.line}: ${b.lang} runnable block needs file=NAME`);
});

D.run();
