// Unified diffs for --diff, computed by jsdiff (the `diff` package, Myers' algorithm), so a
// one-line change in a big file is a small hunk. Every known secret is masked before diffing.
import { createRequire } from 'node:module';
import { redact } from './secret.ts';
import type { FileDiff } from './types.ts';

type JsDiff = typeof import('diff');
let jsdiff: JsDiff | undefined;
/** Loaded on first use (only runs with --diff need it), synchronously, to keep start-up fast. */
function lib(): JsDiff {
  jsdiff ??= createRequire(import.meta.url)('diff') as JsDiff;
  return jsdiff;
}

/** What copy and template put in place of content that holds a secret. */
export const SECRET_CONTENT = '[secret content, not shown]\n';

/** A unified diff (3 lines of context) from `before` to `after`; '' when they are equal. */
export function unifiedDiff(path: string, before: string, after: string, labels = { a: 'before', b: 'after' }): string {
  if (before === after) return '';
  const { hunks } = lib().structuredPatch(path, path, before, after, '', '', { context: 3 });
  const out = [`--- ${path} (${labels.a})`, `+++ ${path} (${labels.b})`];
  for (const h of hunks) {
    // As diff(1) prints it: an empty side starts at the line before the hunk.
    const a = h.oldLines === 0 ? h.oldStart - 1 : h.oldStart;
    const b = h.newLines === 0 ? h.newStart - 1 : h.newStart;
    out.push(`@@ -${a},${h.oldLines} +${b},${h.newLines} @@`, ...h.lines);
  }
  return `${out.join('\n')}\n`;
}

/** A FileDiff for the report, with every known secret masked. */
export function fileDiff(path: string, before: string, after: string): FileDiff {
  // Redact before diffing: once lines carry +/- prefixes a multi-line secret no longer matches.
  const b = redact(before);
  const a = redact(after);
  // Content that holds a secret is not diffed at all: one line says it changed.
  if (before === SECRET_CONTENT || after === SECRET_CONTENT || (a === b && before !== after))
    return { path, before: b === SECRET_CONTENT ? b : '', after: SECRET_CONTENT, text: `--- ${path}: content changed; not shown (it holds a secret)\n` };
  return { path, before: b, after: a, text: unifiedDiff(path, b, a) };
}
