// Starting a playbook fast. Plain JavaScript, so Node loads it without any TypeScript loader.
//
// Used by the entry points, none of which sets a node option for other processes:
// - `npx phoenix site|sync ...` (bin/phoenix.mjs) calls runPlaybook();
// - `node --import=phoenix/boot playbooks/x.ts` loads runner/boot.mjs, which calls boot();
// - a repo of your own whose .npmrc holds the zx hook (examples/my-lab/.npmrc: ZX_HOOK below) runs
//   `npx zx x.ts` through runner/zx-hook.mjs;
// - `node --import=tsx playbooks/x.ts`, and `npx zx playbooks/x.ts` in this checkout (Node >= 22.18
//   strips the types itself; Node 20 cannot) do not come here at all (slower start).
//
// What it does for a playbook of this repository (a .ts file under the checkout whose source ends
// in `if (isMain(import.meta.url)) await <fn>(...)`): it runs the playbook from ONE prebuilt ESM
// file: esbuild bundles the playbook with everything it imports from this repository (runner,
// roles, inventories), node_modules packages left external and loaded natively. The bundle is
// cached in node_modules/.cache/phoenix/ and rebuilt whenever any of its input files changed (size
// or mtime) or the inventory it can load changed. Then it exits with the playbook's exit code.
// Why: tsx's module hooks run on a second thread in Node 20 and every module of the runner and of
// ssh2 crossed it; the bundle skips tsx altogether (bench/ANALYSIS.md has the profile).
// Anything else (a script outside the checkout, a script the bundle cannot build,
// PHOENIX_BUNDLE=0) runs through tsx, registered in this process (tsx/esm/api).
//
// Semantics kept: every module keeps its own import.meta.url (templates next to roles,
// isMain()); each module exists once (one Secret class, so masking works); an inventory module
// named by --inventory is bundled with the playbook (the runner's dynamic import of it is routed
// to the bundled copy, never to a second copy of the runner). Source maps keep stack traces
// pointing at the .ts files.
// A mistake in the playbook's own code while it loads exits 4 (boot, the zx hook and bin/phoenix all come through here).
import './load-errors.mjs';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'phoenix');
/** Bump when the build options or the rewrite below change: old bundles are then ignored. */
const FORMAT = 3;
const debug = process.env.PHOENIX_BUNDLE_DEBUG ? (s) => process.stderr.write(`[phoenix boot ${(performance.now() | 0)} ms] ${s}\n`) : () => {};

// V8's compile cache (Node >= 22.1): later runs skip parsing and compiling the bundle and packages.
if (typeof nodeModule.enableCompileCache === 'function' && process.env.PHOENIX_BUNDLE !== '0') {
  try {
    nodeModule.enableCompileCache(join(CACHE, 'v8'));
  } catch {
    /* best effort */
  }
}

/** `file` when it is a playbook of this checkout that the bundle can run, else null. */
export function bundleable(file) {
  if (!/\.m?ts$/.test(file)) return null;
  file = resolve(file);
  if (!existsSync(file) || !file.startsWith(ROOT + '/') || file.includes('/node_modules/')) return null;
  // Only a module that runs itself with a top-level `await` of its main: the bundle's import
  // then ends when the run has ended.
  const src = readFileSync(file, 'utf8');
  return /^if \(isMain\(import\.meta\.url\)\) await [\w.]+\(/m.test(src) ? file : null;
}

/** The inventory .ts/.mts files `--inventory` may name, by the runner's lookup rules (a superset). */
function inventoryCandidates(argv) {
  let spec;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-i' || a === '--inventory') spec = argv[++i];
    else if (a.startsWith('--inventory=')) spec = a.slice(12);
    else if (/^-i./.test(a)) spec = a.slice(2);
  }
  const c = [join(ROOT, 'inventory.ts'), resolve('inventory.ts')];
  if (spec !== undefined) c.push(resolve(spec), join(resolve(spec), 'inventory.ts'), resolve('inventories', `${spec}.ts`), join(ROOT, spec), join(ROOT, spec, 'inventory.ts'), join(ROOT, 'inventories', `${spec}.ts`));
  return [...new Set(c.filter((f) => /\.m?ts$/.test(f) && existsSync(f) && statSync(f).isFile()))];
}

function fresh(manifest) {
  try {
    for (const [f, [size, mtime]] of Object.entries(manifest.inputs)) {
      const s = statSync(join(ROOT, f));
      if (s.size !== size || s.mtimeMs !== mtime) return false;
    }
    return true;
  } catch {
    return false;
  }
}

// The runner loads a TypeScript inventory with this exact expression; in the bundle it is
// routed to the bundled inventories. If runner/inventory.ts changes it, the build refuses and
// the run goes through tsx instead.
const INVENTORY_IMPORT = 'import(pathToFileURL(file).href)';

async function build(script, inventories, out) {
  const esbuild = createRequire(import.meta.url)('esbuild');
  const inventoriesModule = [
    'const inventories = {',
    ...inventories.map((f) => `  ${JSON.stringify(f)}: () => import(${JSON.stringify(f)}),`),
    '};',
    'export function importInventory(file) {',
    '  const load = inventories[file];',
    "  if (!load) throw new Error('phoenix bundle: inventory ' + file + ' was not bundled; run with PHOENIX_BUNDLE=0');",
    '  return load();',
    '}',
  ].join('\n');
  const plugin = {
    name: 'phoenix',
    setup(b) {
      b.onResolve({ filter: /^phoenix:inventories$/ }, () => ({ path: 'inventories', namespace: 'phoenix' }));
      b.onLoad({ filter: /.*/, namespace: 'phoenix' }, () => ({ contents: inventoriesModule, loader: 'js', resolveDir: ROOT }));
      b.onLoad({ filter: /\.(m?ts|m?js)$/ }, (args) => {
        if (args.path.includes('/node_modules/')) return undefined;
        let src = readFileSync(args.path, 'utf8');
        const url = JSON.stringify(pathToFileURL(args.path).href);
        src = src
          .replaceAll('import.meta.url', url)
          .replaceAll('import.meta.filename', JSON.stringify(args.path))
          .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)));
        if (args.path === join(ROOT, 'runner', 'inventory.ts')) {
          const n = src.split(INVENTORY_IMPORT).length - 1;
          if (n !== 1) throw new Error(`runner/inventory.ts: expected one ${INVENTORY_IMPORT}, found ${n}`);
          src = src.replace(INVENTORY_IMPORT, "(await import('phoenix:inventories')).importInventory(file)");
        }
        return { contents: src, loader: /\.m?ts$/.test(args.path) ? 'ts' : 'js' };
      });
    },
  };
  const res = await esbuild.build({
    entryPoints: [script],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    tsconfig: join(ROOT, 'tsconfig.json'),
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    write: false,
    outfile: out,
    logLevel: 'silent',
    plugins: [plugin],
  });
  const inputs = {};
  for (const f of Object.keys(res.metafile.inputs)) {
    if (f.startsWith('phoenix:')) continue;
    const s = statSync(resolve(ROOT, f));
    inputs[relative(ROOT, resolve(ROOT, f))] = [s.size, s.mtimeMs];
  }
  // Inputs stat'ed after the build: a file edited during the build makes the next run rebuild.
  for (const f of res.outputFiles) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
  const tmp = `${out}.json.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ format: FORMAT, esbuild: esbuild.version, inputs }));
  renameSync(tmp, `${out}.json`);
}

async function bundleFor(script, argv) {
  const inventories = inventoryCandidates(argv);
  const key = createHash('sha256')
    .update(JSON.stringify([FORMAT, process.versions.node, script, inventories]))
    .digest('hex')
    .slice(0, 16);
  mkdirSync(CACHE, { recursive: true });
  const out = join(CACHE, `${basename(script).replace(/\W+/g, '_')}-${key}.mjs`);
  let manifest = null;
  try {
    manifest = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
  } catch {
    /* none yet */
  }
  if (!manifest || manifest.format !== FORMAT || !existsSync(out) || !fresh(manifest)) {
    debug(`building ${relative(ROOT, out)}`);
    await build(script, inventories, out);
    debug('built');
  }
  return out;
}

/** The hook's source; a user repo's .npmrc may hold `node-options=` + zxHookOption() (ZX_HOOK as a
 * data: URL; examples/my-lab/.npmrc does, test/integration/outside-repo.test.ts checks they agree);
 * runner/zx-hook.mjs says what it does. phoenix's own checkout sets no node option. */
export const ZX_HOOK = [
  'import{createRequire}from"node:module";import{resolve}from"node:path";import{pathToFileURL}from"node:url";const a=process.argv;',
  'if(/[\\\\/](zx[\\\\/]build[\\\\/]cli\\.js|\\.bin[\\\\/]zx)$/.test(a[1]??"")){let r;',
  'for(const f of[a[2]&&resolve(a[2]),resolve("x")])if(f&&!r)try{r=createRequire(f).resolve("phoenix/zx")}catch{}',
  'if(r)await import(pathToFileURL(r).href)}',
].join('');

/** `--import=data:text/javascript,...` for ZX_HOOK: only what URLs, ini and NODE_OPTIONS treat specially is %-encoded. */
export function zxHookOption() {
  return `--import=data:text/javascript,${ZX_HOOK.replace(/[^\w{}()[\]=.,:!&|/$*+<>-]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)}`;
}

let tsxRegistered = false;
/** tsx's ESM loader, in this process (what `--import=tsx` does, without a node option). */
export async function registerTsx() {
  if (tsxRegistered) return;
  tsxRegistered = true;
  const { register } = await import('tsx/esm/api');
  register();
}

/** The cached bundle of `file` run as `node file ...args` (built when stale), or null (not a playbook of this checkout, PHOENIX_BUNDLE=0, or the build failed). */
export async function tryBundle(file, args) {
  if (process.env.PHOENIX_BUNDLE === '0' || !bundleable(file)) return null;
  try {
    return await bundleFor(resolve(file), [process.argv[0], resolve(file), ...args]);
  } catch (e) {
    debug(`no bundle (${e?.message ?? e}); running through tsx`);
    return null;
  }
}

/**
 * Runs a TypeScript script in this process as `node <script> ...args` would: process.argv becomes
 * [node, script, ...args]. A playbook of this checkout runs from its bundle and the process then
 * exits with the playbook's exit code; anything else is imported through tsx.
 */
export async function runPlaybook(script, args) {
  script = resolve(script);
  const out = await tryBundle(script, args);
  process.argv = [process.argv[0], script, ...args];
  if (out) await runBundle(out);
  await registerTsx();
  await import(pathToFileURL(script).href);
}

/** Imports a bundle from tryBundle(), then exits with the playbook's exit code. */
export async function runBundle(out) {
  debug(`running ${relative(ROOT, out)}`);
  // Stack traces through the source map (to the .ts files), as under tsx.
  mapStacks(pathToFileURL(out).href, `${out}.map`);
  await import(pathToFileURL(out).href);
  debug('done');
  // The playbook has finished (its top-level await ended): do not let Node load the script
  // again (through tsx or zx).
  process.exit();
}

const errorToString = Error.prototype.toString;

/**
 * Stack traces through the bundle's source map, to the .ts files, in the form Node's own source
 * maps give them (node: lib/internal/source_map/prepare_stack_trace.js), but the map is read only
 * when a stack is formatted. Node's (`process.setSourceMapsEnabled(true)`) reads and indexes the
 * map of every module as it loads it, whether or not a stack is ever shown: ~15 ms for the bundle
 * on every start, and as much again for each package with maps (ajv's and handlebars' files).
 * Frames outside the bundle are printed as Node prints them.
 */
function mapStacks(bundleUrl, mapFile) {
  // A user's --enable-source-maps maps every file, the bundle included: leave it to Node.
  if (process.sourceMapsEnabled) return;
  let map; // undefined: not read yet; null: unreadable (frames stay as they are)
  // Opened now, read when first needed: a run started meanwhile may rebuild the bundle and its
  // map under the same name (a rename), and this process must read the map of the code it runs.
  let fd;
  try {
    fd = openSync(mapFile, 'r');
  } catch {
    fd = undefined;
  }
  const sourceMap = () => {
    if (map === undefined) {
      try {
        if (fd === undefined) throw new Error('no map');
        const data = JSON.parse(readFileSync(fd, 'utf8'));
        closeSync(fd);
        // As Node does: sources as absolute URLs, relative to the map.
        const base = pathToFileURL(mapFile);
        data.sources = data.sources.map((s) => new URL(`${data.sourceRoot ?? ''}${s}`, base).href);
        map = new nodeModule.SourceMap(data);
      } catch {
        map = null;
      }
    }
    return map;
  };
  const frame = (cs, caller) => {
    if (cs.getFileName() !== bundleUrl) return `${cs}`;
    const sm = sourceMap();
    const e = sm?.findEntry(cs.getLineNumber() - 1, cs.getColumnNumber() - 1);
    if (!e || e.originalSource === undefined || e.originalLine === undefined || e.originalColumn === undefined) return `${cs}`;
    let name = typeof cs.getEnclosingLineNumber === 'function' ? sm.findEntry(cs.getEnclosingLineNumber() - 1, cs.getEnclosingColumnNumber() - 1).name : undefined;
    if (!name && caller && caller.getFileName() === bundleUrl) name = sm.findEntry(caller.getLineNumber() - 1, caller.getColumnNumber() - 1).name;
    const file = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : e.originalSource;
    const fn = cs.getFunctionName() ?? cs.getMethodName();
    const prefix = cs.isAsync() ? 'async ' : cs.isConstructor() ? 'new ' : '';
    const type = cs.getTypeName();
    const own = `${type !== null && type !== 'global' ? `${type}.` : ''}${fn || '<anonymous>'}`;
    return `${prefix}${name && name !== own ? name : own} (${file}:${e.originalLine + 1}:${e.originalColumn + 1})`;
  };
  Error.prepareStackTrace = (error, trace) => {
    let head;
    try {
      head = errorToString.call(error);
      // Node's own errors say their code: "TypeError [ERR_X]: message" (their toString does).
      if (typeof error?.code === 'string' && error.toString !== errorToString) {
        const own = String(error);
        if (own === `${error.name} [${error.code}]: ${error.message}`) head = own;
      }
    } catch {
      head = '<error>';
    }
    return head + trace.map((cs, i) => {
      try {
        return `\n    at ${frame(cs, trace[i + 1])}`;
      } catch {
        return `\n    at ${cs}`;
      }
    }).join('');
  };
}

/**
 * `node --import=phoenix/boot <script> ...` (runner/boot.mjs): a playbook of this checkout runs
 * from its bundle; any other script goes on through tsx, exactly as `--import=tsx`.
 */
export async function boot() {
  const out = process.argv[1] ? await tryBundle(process.argv[1], process.argv.slice(2)) : null;
  if (out) await runBundle(out);
  await import('tsx');
}
