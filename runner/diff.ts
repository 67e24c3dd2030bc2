// Unified diffs for --diff. Config files are small; a plain LCS table is enough, and files
// too large for it are shown as replaced whole.
import { redact } from './secret.ts';
import type { FileDiff } from './types.ts';

type Op = { t: ' ' | '-' | '+'; line: string };

function lines(s: string): string[] {
  if (s === '') return [];
  const l = s.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}

function ops(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > 4_000_000) return [...a.map((line) => ({ t: '-' as const, line })), ...b.map((line) => ({ t: '+' as const, line }))];
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ t: ' ', line: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ t: '-', line: a[i++]! });
    else out.push({ t: '+', line: b[j++]! });
  }
  while (i < n) out.push({ t: '-', line: a[i++]! });
  while (j < m) out.push({ t: '+', line: b[j++]! });
  return out;
}

/** A unified diff (3 lines of context) from `before` to `after`; '' when they are equal. */
export function unifiedDiff(path: string, before: string, after: string, labels = { a: 'before', b: 'after' }): string {
  if (before === after) return '';
  const a = lines(before);
  const b = lines(after);
  const all = ops(a, b);
  const ctx = 3;
  const hunks: string[] = [];
  let k = 0;
  while (k < all.length) {
    while (k < all.length && all[k]!.t === ' ') k++;
    if (k >= all.length) break;
    let start = Math.max(0, k - ctx);
    let end = k;
    // Extend the hunk while changes are within 2*ctx of each other.
    for (;;) {
      while (end < all.length && all[end]!.t !== ' ') end++;
      let next = end;
      while (next < all.length && all[next]!.t === ' ') next++;
      if (next < all.length && next - end <= 2 * ctx) end = next;
      else break;
    }
    const stop = Math.min(all.length, end + ctx);
    let aStart = 0;
    let bStart = 0;
    for (let x = 0; x < start; x++) {
      if (all[x]!.t !== '+') aStart++;
      if (all[x]!.t !== '-') bStart++;
    }
    const body = all.slice(start, stop);
    const aLen = body.filter((o) => o.t !== '+').length;
    const bLen = body.filter((o) => o.t !== '-').length;
    hunks.push(`@@ -${aLen ? aStart + 1 : aStart},${aLen} +${bLen ? bStart + 1 : bStart},${bLen} @@`);
    for (const o of body) hunks.push(`${o.t}${o.line}`);
    k = stop;
    start = stop;
  }
  const noEol = (s: string) => (s !== '' && !s.endsWith('\n') ? '\n\\ No newline at end of file' : '');
  return `--- ${path} (${labels.a})\n+++ ${path} (${labels.b})\n${hunks.join('\n')}${noEol(after) || noEol(before)}\n`;
}

/** A FileDiff for the report, with every known secret masked. */
export function fileDiff(path: string, before: string, after: string): FileDiff {
  // Redact before diffing: once lines carry +/- prefixes a multi-line secret no longer matches.
  const b = redact(before);
  const a = redact(after);
  return { path, before: b, after: a, text: unifiedDiff(path, b, a) };
}
