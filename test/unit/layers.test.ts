// The layers read one way (issue 14, item 1): runner/ is a generic library and imports nothing
// outside itself, so a stranger could publish it alone. stacks/ builds on runner/, roles/ on
// both, inventory.ts and playbooks/ on all three.
//
// Every .ts/.mjs/.js file under runner/ (generated files excepted) is scanned with its comments
// blanked out; each module specifier (static import/export ... from, side-effect import,
// import(), require(), import.meta.resolve()) that is relative must resolve inside runner/, and
// none may name the package itself ('phoenix', 'phoenix/...'), which is the whole repository.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUNNER = join(ROOT, 'runner');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : walk(p);
    return /\.(ts|mts|mjs|js)$/.test(e.name) && !/\.generated\./.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Could a string starting here be a module specifier? (after `from`, `import`, or an opening parenthesis) */
const specifierPosition = (before: string) => /(?:\bfrom|\bimport|\()\s*$/.test(before.slice(-40));

/**
 * The source with comments blanked out, and the text of every string literal that cannot be a
 * module specifier too (newlines kept, so offsets keep their line).
 */
export function blankComments(src: string): string {
  let out = '';
  let i = 0;
  // Open template literals (and whether their text is kept) and the braces of their ${...} parts.
  const stack: ({ t: '`'; keep: boolean } | { t: '{' })[] = [];
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    const top = stack[stack.length - 1];
    if (top?.t === '`') {
      if (c === '\\') {
        out += top.keep ? src.slice(i, i + 2) : blank(src.slice(i, i + 2));
        i += 2;
      } else if (c === '`') {
        stack.pop();
        out += c;
        i++;
      } else if (c === '$' && n === '{') {
        stack.push({ t: '{' });
        out += '${';
        i += 2;
      } else {
        out += top.keep ? c : blank(c);
        i++;
      }
      continue;
    }
    if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') (out += ' '), i++;
    } else if (c === '/' && n === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += blank(src.slice(i, stop));
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      const body = src.slice(i + 1, j);
      out += c + (specifierPosition(out) ? body : blank(body)) + (src[j] ?? '');
      i = j + 1;
    } else if (c === '`') {
      stack.push({ t: '`', keep: specifierPosition(out) });
      out += c;
      i++;
    } else if (c === '{') {
      if (stack.length) stack.push({ t: '{' });
      out += c;
      i++;
    } else if (c === '}') {
      if (top?.t === '{') stack.pop();
      out += c;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const SPECIFIERS = [
  // import x from '...', import { a } from '...', export * from '...', import type ... from '...'
  /(?:^|[^\w$.])(?:import|export)\b[^;'"`]*?\bfrom\s*(['"])([^'"\n]+)\1/g,
  // import '...'  (side effects only)
  /(?:^|[^\w$.])import\s*(['"])([^'"\n]+)\1/g,
  // import('...'), require('...'), import.meta.resolve('...')
  /(?:^|[^\w$.])(?:import|require|import\.meta\.resolve)\s*\(\s*(['"`])([^'"`\n$]+)\1\s*[,)]/g,
];

export interface Outside {
  file: string;
  line: number;
  specifier: string;
  resolved?: string;
}

/** Every import in `file` (under `root`) that leaves `root`. */
export function outsideImports(file: string, root: string, src = readFileSync(file, 'utf8')): Outside[] {
  const code = blankComments(src);
  const found: Outside[] = [];
  const seen = new Set<number>();
  for (const re of SPECIFIERS) {
    for (const m of code.matchAll(re)) {
      const spec = m[2]!;
      const at = m.index! + m[0].lastIndexOf(spec);
      if (seen.has(at)) continue;
      seen.add(at);
      const line = code.slice(0, at).split('\n').length;
      const rel = relative(ROOT, file);
      if (spec === 'phoenix' || spec.startsWith('phoenix/')) {
        found.push({ file: rel, line, specifier: spec });
        continue;
      }
      if (!spec.startsWith('.') && !spec.startsWith('/') && !spec.startsWith('file:')) continue;
      const target = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(dirname(file), spec);
      const r = relative(root, target);
      if (r === '..' || r.startsWith(`..${sep}`) || resolve(root, r) !== target) found.push({ file: rel, line, specifier: spec, resolved: relative(ROOT, target) });
    }
  }
  return found.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

test('the scanner finds every kind of import, and none in comments or strings', () => {
  const root = join(ROOT, 'runner');
  const file = join(root, 'modules', 'x.ts');
  const src = [
    "import { a } from '../types.ts';", // inside: fine
    "import type { B } from '../../stacks/types.ts';",
    "export { c } from '../../roles/x/index.ts';",
    "import '../../inventory.ts';",
    "const m = await import('../../stacks/compose.ts');",
    "// import { d } from '../../playbooks/site.ts';",
    "/* import('../../x.ts') */ const s = 'import x from \"../../y.ts\"';",
    "import {\n  e,\n  f,\n} from 'phoenix/roles/nginx';",
    'const t = `${"`"}`; import(`../../bin/z.ts`);',
    "import { g } from 'node:fs';",
  ].join('\n');
  const got = outsideImports(file, root, src).map((o) => `${o.line} ${o.specifier}`);
  assert.equal(got, ['2 ../../stacks/types.ts', '3 ../../roles/x/index.ts', '4 ../../inventory.ts', '5 ../../stacks/compose.ts', '11 phoenix/roles/nginx', '12 ../../bin/z.ts']);
});

test('runner/ imports nothing outside itself', () => {
  const files = walk(RUNNER);
  assert.ok(files.length > 20, `only ${files.length} files found under runner/`);
  const bad = files.flatMap((f) => outsideImports(f, RUNNER));
  assert.ok(
    !bad.length,
    `runner/ must import nothing outside itself (move the code to stacks/ or roles/, or invert the dependency):\n${bad
      .map((b) => `  ${b.file}:${b.line}: '${b.specifier}'${b.resolved ? ` -> ${b.resolved}` : ' (the phoenix package itself)'}`)
      .join('\n')}`,
  );
});

test.run();
