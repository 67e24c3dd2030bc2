// --syntax-check's type check: tsc over the playbook and every file it imports, with the
// project's own tsconfig.json (the nearest one above the playbook), emitting nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

/** The nearest tsconfig.json at or above `dir`. */
function nearestTsconfig(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'tsconfig.json'))) return join(d, 'tsconfig.json');
    if (dirname(d) === d) return undefined;
  }
}

/** tsc's entry: the user's own TypeScript first (their repo's version), else phoenix's. */
function tscBin(from: string): string {
  for (const base of [join(from, 'noop.js'), import.meta.url]) {
    try {
      return join(dirname(createRequire(base).resolve('typescript/package.json')), 'bin', 'tsc');
    } catch {
      /* next */
    }
  }
  throw new Error('--syntax-check needs the typescript package (npm install -D typescript)');
}

/** Type errors of the playbook's files, one "file(line,col): error TS...: message" each; [] when clean. */
export function typeCheck(playbook: string): string[] {
  const file = resolve(playbook);
  const tsconfig = nearestTsconfig(dirname(file));
  let args: string[];
  let cleanup: string | undefined;
  if (tsconfig) {
    // A sibling config that extends the project's and names only the playbook: tsc follows its
    // imports. Next to the original so that typeRoots and paths resolve the same; removed after.
    cleanup = join(dirname(tsconfig), `.phoenix-syntax-check-${process.pid}.json`);
    writeFileSync(cleanup, JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true }, files: [file], include: [] }));
    args = ['-p', cleanup];
  } else {
    args = ['--noEmit', '--strict', '--target', 'es2023', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--allowImportingTsExtensions', '--skipLibCheck', file];
  }
  try {
    const r = spawnSync(process.execPath, [tscBin(dirname(file)), ...args], { encoding: 'utf8', cwd: dirname(tsconfig ?? file), timeout: 300_000 });
    if (r.status === 0) return [];
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim());
    return lines.length ? lines : [`tsc exited ${r.status ?? r.signal}`];
  } finally {
    if (cleanup) rmSync(cleanup, { force: true });
  }
}
