// Mistakes in the user's own code while a playbook loads (a throw at import time, a syntax
// error, a bad import, a top-level secretFromEnv() of an unset variable) are the user's to fix,
// not phoenix bugs: they exit 4 with file:line and the message, without phoenix's stack frames.
// Exit 1 stays for errors inside phoenix itself.
//
// Plain JavaScript, so it can be preloaded before any TypeScript loader: a syntax error or a
// bad import fails while Node links the modules, before any of them (the runner included)
// runs, so only a preload sees it. It is loaded
//   - by runner/cli.ts, i.e. by every playbook (throws at import time of the modules that
//     evaluate after the runner: roles, vars, inventories);
//   - as a preload by runner/launch.mjs (phoenix/boot, the zx hook of `.npmrc`), by `bin/phoenix.mjs`, and by
//     a user repo's `.npmrc` (`node-options=--import=tsx --import=phoenix/runner/load-errors.mjs`),
//     which also covers syntax errors and bad imports.
// Several copies may exist (the fast-start bundle inlines one): the state is on globalThis.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNNER = dirname(fileURLToPath(import.meta.url));
const STATE = Symbol.for('phoenix.loadErrors');
/** @type {{ installed: boolean, started: boolean, runnerDirs: Set<string> }} */
const state = (globalThis[STATE] ??= { installed: false, started: false, runnerDirs: new Set() });
state.runnerDirs.add(RUNNER);

export const EXIT_USAGE = 4;
export const EXIT_INTERNAL = 1;

/** main() has started: from now on an uncaught error is phoenix's own (exit 1). */
export function markStarted() {
  state.started = true;
}

const toPath = (p) => (p.startsWith('file://') ? fileURLToPath(p) : p);
const phoenixOwn = (p) => [...state.runnerDirs].some((d) => p.startsWith(d + '/'));
const foreign = (p) => p.startsWith('node:') || p.includes('/node_modules/') || !p.startsWith('/');

/**
 * Where in the user's code an error comes from, and its message:
 * { where: "file:line[:col]" | undefined, message, user: boolean }. `user` is false when every
 * frame of the stack is phoenix's own (a bug in phoenix, not in the playbook).
 */
export function describeLoadError(e) {
  const err = e instanceof Error ? e : new Error(String(e));
  const message = String(err.message ?? err);
  const stack = String(err.stack ?? '');
  // tsx (esbuild) on a syntax error: "Transform failed with 1 error:\n/x/site.ts:3:10: ERROR: Unexpected ..."
  const esb = /^(\/[^\n]+?):(\d+):(\d+): ERROR: (.+)$/m.exec(message);
  if (err.name === 'TransformError' || esb) {
    if (esb) return { where: `${esb[1]}:${esb[2]}:${esb[3]}`, message: `syntax error: ${esb[4]}`, user: true };
    return { where: undefined, message, user: true };
  }
  // Node while linking: the stack starts with "file:///x/site.ts:3\n<the line>\n   ^^^\n\nSyntaxError: ...".
  const link = /^((?:file:\/\/)?\/[^\n]+?):(\d+)\n/.exec(stack);
  if (link && err.name === 'SyntaxError') return { where: `${toPath(link[1])}:${link[2]}`, message, user: true };
  // A bad import path: "Cannot find module '/x/nope.ts' imported from /x/site.ts".
  if (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'ERR_UNSUPPORTED_DIR_IMPORT') {
    const from = / imported from (\/\S+)/.exec(message);
    return { where: from ? from[1] : undefined, message: message.replace(/ imported from \/\S+$/, ''), user: true };
  }
  // A throw: the first frame in the user's files (not phoenix's runner, not a package, not node).
  const frames = [...stack.matchAll(/^\s+at (?:.*? \()?((?:file:\/\/)?\/[^\s()]+?):(\d+):(\d+)\)?$/gm)].map((m) => ({
    file: toPath(m[1]),
    line: m[2],
    col: m[3],
  }));
  const mine = frames.find((f) => !phoenixOwn(f.file) && !foreign(f.file));
  if (mine) return { where: `${mine.file}:${mine.line}:${mine.col}`, message: `${err.name && !/^(Error|SecretError|InventoryError|SelectionError)$/.test(err.name) ? `${err.name}: ` : ''}${message}`, user: true };
  // Errors phoenix raises for the user's input (SecretError, InventoryError...) carry no user frame
  // when thrown from a YAML/JSON inventory; their message names the file.
  if (/^(SecretError|InventoryError|SelectionError)$/.test(err.name)) return { where: undefined, message, user: true };
  return { where: undefined, message, user: frames.length === 0 && !stack.includes(RUNNER) };
}

/** "phoenix: cannot load the playbook: /x/site.ts:3:10: syntax error: ..." */
export function formatLoadError(e) {
  const d = describeLoadError(e);
  return `phoenix: cannot load the playbook: ${d.where ? `${d.where}: ` : ''}${d.message}\n`;
}

/** Reports an error raised while the playbook loads; returns the exit code it deserves. */
export function reportLoadError(e, write = (s) => void process.stderr.write(s)) {
  const d = describeLoadError(e);
  if (!d.user) {
    write(`phoenix: internal error while loading: ${e?.stack ?? e}\n`);
    return EXIT_INTERNAL;
  }
  write(formatLoadError(e));
  return EXIT_USAGE;
}

/** The script this process runs: `node x.ts`, `zx x.ts`; undefined for test runners and tools in node_modules. */
function entry(argv = process.argv) {
  const first = argv[1] ?? '';
  const zx = /[\\/](zx[\\/]build[\\/]cli\.js|\.bin[\\/]zx)$/.test(first);
  const script = zx ? argv.slice(2).find((a) => !a.startsWith('-')) : first;
  if (!script || !/\.(m?ts|m?js)$/.test(script) || script.includes('/node_modules/')) return undefined;
  const file = resolve(script);
  return existsSync(file) ? { file, zx } : undefined;
}

/**
 * Installs the handlers, once per process, when the process runs a playbook (`force`: also when
 * argv does not show one, e.g. a launcher that imports the playbook in its own process; such a
 * launcher may instead catch the import's error and exit with reportLoadError(e)). Node reports a
 * module that fails to load as an uncaught exception; zx catches it and prints it with
 * console.error (exit 1), so under zx that one call is taken over too, only before main().
 */
export function install({ force = false } = {}) {
  const e = entry() ?? (force ? { file: '', zx: false } : undefined);
  if (state.installed || !e) return;
  state.installed = true;
  process.on('uncaughtException', (err) => {
    if (state.started) {
      process.stderr.write(`phoenix: internal error: ${err?.stack ?? err}\n`);
      process.exit(EXIT_INTERNAL);
    }
    process.exit(reportLoadError(err));
  });
  if (e.zx) {
    const original = console.error;
    console.error = (...args) => {
      if (!state.started && args.length === 1 && args[0] instanceof Error) {
        const code = reportLoadError(args[0]);
        // zx sets exitCode = 1 right after this call; the exit code is decided at exit.
        process.once('exit', () => {
          process.exitCode = code;
        });
        return;
      }
      original.apply(console, args);
    };
  }
}

install();

export const LOAD_ERRORS_MODULE = join(RUNNER, 'load-errors.mjs');
