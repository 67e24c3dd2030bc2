// blockinfile: one managed block in a text file, between marker lines (as Ansible's
// blockinfile). Lines outside the block are never touched; the file is rewritten atomically
// with its mode and owner kept.
import { fileState, readFile } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { putFile } from './copy.ts';
import { invalidArgs } from './args.ts';

export interface BlockInFileOptions {
  path: string;
  /** The block's lines (without markers); empty removes the block. */
  block: string;
  /** Marker text; "{mark}" becomes BEGIN / END. */
  marker?: string;
  /** Create the file when it does not exist (mode 0644). */
  create?: boolean;
}

/** The file's text with the block set (or removed when `block` is empty). */
export function withBlock(text: string, block: string, marker = '# {mark} phoenix managed block'): string {
  const begin = marker.replace('{mark}', 'BEGIN');
  const end = marker.replace('{mark}', 'END');
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const b = lines.indexOf(begin);
  const e = b >= 0 ? lines.indexOf(end, b + 1) : -1;
  if (b >= 0 && e < 0) throw new Error(`"${begin}" has no "${end}" after it`);
  const body = block === '' ? [] : [begin, ...block.replace(/\n$/, '').split('\n'), end];
  const out = b >= 0 ? [...lines.slice(0, b), ...body, ...lines.slice(e + 1)] : [...lines, ...body];
  return out.length ? `${out.join('\n')}\n` : '';
}

export function blockInFile(o: BlockInFileOptions): Action {
  const invalid = invalidArgs('blockinfile', o);
  if (invalid) return invalid;
  return {
    module: 'blockinfile',
    summary: `blockinfile ${o.path}`,
    async run(ctx): Promise<ActionResult> {
      const st = await fileState(ctx, o.path);
      if (st.exists && st.type !== 'file') throw new TaskError(`blockinfile ${o.path}: not a regular file (${st.type})`);
      if (!st.exists && !o.create) throw new TaskError(`blockinfile ${o.path}: no such file (set create: true to make it)`);
      const before = st.exists ? (await readFile(ctx, o.path)).toString('utf8') : '';
      let after: string;
      try {
        after = withBlock(before, o.block, o.marker);
      } catch (e) {
        throw new TaskError(`blockinfile ${o.path}: ${(e as Error).message}`);
      }
      if (st.exists && after === before) return { changed: false };
      return putFile(ctx, { dest: o.path }, Buffer.from(after), false);
    },
  };
}
