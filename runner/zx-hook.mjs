// `npx zx x.ts [flags]` in a repo of your own on a Node that cannot import TypeScript by itself (Node
// 20: zx 8 imports the script with Node's own loader, and zx's docs say to put a loader into
// NODE_OPTIONS). phoenix's own checkout sets no node option (docs/speed.md): there use `npx phoenix`.
//
// A user repo's .npmrc (examples/my-lab/.npmrc) gives every process npm starts one inert line (a
// data: URL, so it needs no package that resolves from every folder, and no shim): in any process but zx's CLI (tsc,
// install scripts, `npm run ...`) it is one regular-expression test on process.argv[1] and
// loads nothing (the line's source is ZX_HOOK in runner/launch.mjs). In zx's CLI it resolves `phoenix/zx` (this file) from the script's folder (or
// the current one) and imports it. Here:
// - a playbook of this checkout with no zx flag before it runs from its cached bundle
//   (runner/launch.mjs) and the process exits with its code: zx itself is never loaded (phoenix
//   uses none of zx's globals; tsc would reject them);
// - anything else (zx flags, other scripts, --eval): tsx's ESM loader is registered and zx's CLI
//   goes on unchanged.
import { resolve } from 'node:path';
import { registerTsx, runBundle, tryBundle } from './launch.mjs';

const [first, ...rest] = process.argv.slice(2);
const out = first === undefined ? null : await tryBundle(first, rest);
if (out) {
  process.argv = [process.argv[0], resolve(first), ...rest];
  await runBundle(out);
}
await registerTsx();
