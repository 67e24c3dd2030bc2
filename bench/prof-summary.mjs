// Summarizes V8 .cpuprofile files (node --cpu-prof): self time by package/file and by function.
// Usage: node bench/prof-summary.mjs DIR
import { readFileSync, readdirSync } from 'node:fs';
const dir = process.argv[2] ?? '.';
for (const f of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  p.samples.forEach((s, i) => self.set(s, (self.get(s) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const byPkg = new Map();
  const byFn = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    const url = n.callFrame.url || `(${n.callFrame.functionName || 'native'})`;
    const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
    const pkg = m ? m[1] : url.startsWith('node:') ? 'node: internals' : url.replace(/^file:\/\/\/work\/main\//, '');
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
    const fn = `${n.callFrame.functionName || '(anon)'} ${url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`${f}: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  console.log('  top functions (self):');
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}
