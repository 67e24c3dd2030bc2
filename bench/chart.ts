// The bench's chart: wall time per tool and workload, as an SVG written by hand (no dependency).
// One panel per workload (its own linear axis in seconds, ticks labelled), one horizontal bar per
// tool: the median wall time of its valid timed runs, the value printed at the end of the bar.
// A tool that has no figure where it belongs (a warm variant when the build has no agent) gets an
// empty bar labelled "n/a". bench.ts calls chartSvg() after each run (bench/RESULTS.svg); by hand:
//   node --import=tsx bench/chart.ts [bench/RESULTS.json] [bench/RESULTS.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ChartSample {
  workload: string;
  target: string;
  hosts: number;
  tool: string;
  round: number;
  wallMs: number;
  note?: string;
}
export interface ChartInput {
  samples: ChartSample[];
  notes?: { text: string }[];
}

/** Bar order and look; a tool not listed here is drawn grey after the others. */
const TOOLS: [id: string, label: string, color: string][] = [
  ['ansible', 'Ansible, warm (ControlPersist)', '#b2182b'],
  ['ansiblecold', 'Ansible, cold', '#ef8a62'],
  ['pyinfra', 'pyinfra', '#e6ab02'],
  ['zx', 'phoenix: npx zx (Node 24)', '#2166ac'],
  ['zxwarm', 'phoenix: npx zx (Node 24), warm', '#1b7837'],
  ['phx', 'phoenix: npx phoenix site', '#4393c3'],
  ['phxwarm', 'phoenix: npx phoenix site, warm', '#5aae61'],
  ['boot', 'phoenix: node --import=phoenix/boot', '#053061'],
  ['bootwarm', 'phoenix: node --import=phoenix/boot, warm', '#00441b'],
  ['zxtsx', 'phoenix: npx zx, tsx loader', '#92c5de'],
  ['tsx', 'phoenix: node --import=tsx', '#6a51a3'],
  ['node24', 'phoenix: Node 24 --import=phoenix/boot', '#3f007d'],
  ['node24warm', 'phoenix: Node 24 --import=phoenix/boot, warm', '#54278f'],
];
/** The warm variants, drawn "n/a" beside their cold twin when a run has no figure for them. */
const WARM_OF: Record<string, string> = { zx: 'zxwarm', phx: 'phxwarm', boot: 'bootwarm', node24: 'node24warm' };

const WORKLOAD: Record<string, string> = {
  noop: 'W1: 20 × true',
  'files-steady': 'W2: 20 file/template tasks, nothing to change',
  'files-changed': 'W3: 20 file/template tasks, all changed',
  site: 'site.ts, nothing to change (full run)',
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2 or 5 × 10^k: a tick step giving about `n` ticks up to `max`. */
function tickStep(max: number, n = 5): number {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

export function chartSvg(data: ChartInput, title = 'phoenix beside Ansible and pyinfra: wall time per run (median, seconds; shorter is faster)'): string {
  // Panels: one per (workload, target), lab first, then by host count.
  const keys = new Map<string, ChartSample[]>();
  for (const s of data.samples) {
    if (s.round < 0 || s.note) continue;
    const k = `${s.target}|${s.workload}`;
    keys.set(k, [...(keys.get(k) ?? []), s]);
  }
  const order = ['noop', 'files-steady', 'files-changed', 'site'];
  const panels = [...keys.entries()]
    .map(([k, xs]) => ({ target: k.split('|')[0]!, workload: k.split('|')[1]!, hosts: xs[0]!.hosts, xs }))
    .sort((a, b) => (a.target === 'lab' ? 0 : 1) - (b.target === 'lab' ? 0 : 1) || a.hosts - b.hosts || order.indexOf(a.workload) - order.indexOf(b.workload));
  const known = new Set(TOOLS.map(([id]) => id));
  const extra = [...new Set(data.samples.map((s) => s.tool))].filter((t) => !known.has(t)).map((t): [string, string, string] => [t, t, '#888888']);
  const tools = [...TOOLS, ...extra];

  const W = 980;
  const LABEL = 330; // tool labels, right-aligned before the bars
  const PLOT = W - LABEL - 90; // room after the longest bar for its value
  const BAR = 16;
  const GAP = 5;
  const out: string[] = [];
  let y = 74;
  for (const p of panels) {
    const rows: { label: string; color: string; ms: number | null; runs: number }[] = [];
    for (const [id, label, color] of tools) {
      const xs = p.xs.filter((s) => s.tool === id).map((s) => s.wallMs);
      if (xs.length) rows.push({ label, color, ms: median(xs), runs: xs.length });
      else if (Object.values(WARM_OF).includes(id)) {
        const cold = Object.keys(WARM_OF).find((c) => WARM_OF[c] === id)!;
        if (p.xs.some((s) => s.tool === cold)) rows.push({ label, color, ms: null, runs: 0 });
      }
    }
    if (!rows.length) continue;
    const max = Math.max(...rows.map((r) => r.ms ?? 0)) / 1000;
    const step = tickStep(max || 1);
    const top = Math.ceil((max || 1) / step) * step;
    const x = (sec: number) => LABEL + (sec / top) * PLOT;
    const where = p.target === 'lab' ? '5 lab guests' : `${p.hosts} loopback sshd hosts`;
    out.push(`<text x="16" y="${y}" class="h">${esc(`${WORKLOAD[p.workload] ?? p.workload} — ${where}`)}</text>`);
    y += 10;
    const plotTop = y;
    const axisY = y + rows.length * (BAR + GAP) + 2;
    // The axis: ticks in seconds under the panel, faint grid lines behind the bars.
    out.push(`<line x1="${LABEL}" y1="${axisY}" x2="${LABEL + PLOT}" y2="${axisY}" class="axis"/>`);
    for (let t = 0; t <= top + 1e-9; t += step) {
      const tx = x(t).toFixed(1);
      out.push(`<line x1="${tx}" y1="${plotTop - 2}" x2="${tx}" y2="${axisY}" class="grid"/>`);
      out.push(`<text x="${tx}" y="${axisY + 14}" text-anchor="middle" class="t">${Number(t.toFixed(6))} s</text>`);
    }
    for (const r of rows) {
      const cy = y + BAR / 2 + 4;
      out.push(`<text x="${LABEL - 8}" y="${cy}" text-anchor="end">${esc(r.label)}</text>`);
      if (r.ms === null) {
        out.push(`<rect x="${LABEL}" y="${y}" width="60" height="${BAR}" fill="none" stroke="${r.color}" stroke-dasharray="3 2"/>`);
        out.push(`<text x="${LABEL + 66}" y="${cy}" class="na">not measured in this run</text>`);
      } else {
        const sec = r.ms / 1000;
        out.push(`<rect x="${LABEL}" y="${y}" width="${Math.max(1, x(sec) - LABEL).toFixed(1)}" height="${BAR}" fill="${r.color}"><title>${esc(`${r.label}: ${sec.toFixed(2)} s (median of ${r.runs})`)}</title></rect>`);
        out.push(`<text x="${(x(sec) + 6).toFixed(1)}" y="${cy}" class="v" paint-order="stroke" stroke="#fff" stroke-width="3">${sec < 10 ? sec.toFixed(2) : sec.toFixed(1)} s</text>`);
      }
      y += BAR + GAP;
    }
    y = axisY + 40;
  }
  const H = y;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    '<style>.h{font-weight:bold;font-size:13px}.v{fill:#222}.t{fill:#555;font-size:11px}.na{fill:#777;font-style:italic}.axis{stroke:#444}.grid{stroke:#ddd}.title{font-size:15px;font-weight:bold}</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="16" y="26" class="title">${esc(title)}</text>`,
    `<text x="16" y="44" class="t">${esc('cold: each run connects anew; warm: connections kept between runs (Ansible: ControlPersist; phoenix: its agent). Shared 2-core machine under load: indicative.')}</text>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const json = resolve(process.argv[2] ?? 'bench/RESULTS.json');
  const svg = resolve(process.argv[3] ?? json.replace(/\.json$/, '.svg'));
  writeFileSync(svg, chartSvg(JSON.parse(readFileSync(json, 'utf8')) as ChartInput));
  process.stderr.write(`wrote ${svg}\n`);
}
