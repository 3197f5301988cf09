// The speed/fidelity curve of sparse prefill attention over tau, as a Markdown table and an SVG
// plot, from the JSON of one build/bench/sparse_bench run and of build/sparkv codec-bench runs
// with --sparse-tau (run them with the CPU lock held; see the README's "Sparse prefill" section):
//
//   node bench/sparse_curve.mjs --speed speed.json --fidelity cb4k.json [--fidelity cb8k.json]
//        [--depth 7168] [--svg sparse_curve.svg] [--md sparse_curve.md]
//
// Speed at each tau is the prefill and attention speedup of the chunk at --depth over dense in
// the same run (medians of the run's repeats); fidelity is what codec-bench measured against the
// exact dense KV (KL, perplexity change) on the deployed model and on its F32 copy, with the
// default codec level's (q5h) KL as the bar.
import { readFileSync, writeFileSync } from "node:fs";

function options(argv) {
  const o = { fidelity: [], depth: 7168, svg: "sparse_curve.svg", md: "" };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value`);
    if (key === "fidelity") o.fidelity.push(value);
    else if (key === "depth") o.depth = Number(value);
    else if (["speed", "svg", "md"].includes(key)) o[key] = value;
    else throw new Error(`unknown option ${argv[i]}`);
  }
  if (!o.speed) throw new Error("--speed FILE (sparse_bench --json output) is required");
  return o;
}

const o = options(process.argv);
const speed = JSON.parse(readFileSync(o.speed, "utf8"));
const fidelity = o.fidelity.map((f) => JSON.parse(readFileSync(f, "utf8")));
const key = (tau) => Number(tau).toFixed(3);

const dense = speed.settings.find((s) => s.tau >= 1);
const chunkAt = (s) => s.chunks.find((c) => c.depth === o.depth);
if (!dense || !chunkAt(dense)) throw new Error(`no dense chunk at depth ${o.depth} in ${o.speed}`);
const rows = new Map();
for (const s of speed.settings) {
  if (s.tau >= 1) continue;
  const c = chunkAt(s), d = chunkAt(dense);
  rows.set(key(s.tau), {
    tau: s.tau,
    density: s.density,
    chunkDensity: c.active_blocks / c.causal_blocks,
    prefillSpeedup: d.prefill_seconds / c.prefill_seconds,
    cpuSpeedup: c.prefill_cpu_seconds ? d.prefill_cpu_seconds / c.prefill_cpu_seconds : undefined,
    attentionSpeedup: d.attention_seconds / c.attention_seconds,
    fid: [],
  });
}
for (const f of fidelity) {
  const q5h = f.levels.find((l) => l.name === "q5h");
  for (const sp of f.sparse ?? []) {
    const row = rows.get(key(sp.tau));
    if (!row) continue;
    row.fid.push({
      context: f.context_tokens,
      kl: sp.kl_mean, ppl: sp.ppl_change_rel, greedy: sp.greedy_agree_32,
      klF32: sp.precise?.kl_mean, pplF32: sp.precise?.ppl_change_rel,
      greedyF32: sp.precise?.greedy_agree_32,
      q5hKl: q5h?.kl_mean, q5hKlF32: q5h?.precise?.kl_mean,
    });
  }
}
const sorted = [...rows.values()].sort((a, b) => a.tau - b.tau);

// ---- Markdown table ----
const pct = (x) => (x === undefined ? "-" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}%`);
const num = (x, d = 4) => (x === undefined ? "-" : x.toFixed(d));
let md = `| tau | density (all chunks) | density @${o.depth} | prefill speedup @${o.depth} | prefill CPU-time speedup @${o.depth} | attention speedup @${o.depth} |`;
const contexts = [...new Set(fidelity.map((f) => f.context_tokens))];
for (const c of contexts) md += ` KL ${c} (F32) | ppl ${c} (F32) | greedy 32 ${c} (F32) |`;
md += "\n|" + "---|".repeat(6 + 3 * contexts.length) + "\n";
for (const r of sorted) {
  md += `| ${Number(r.tau.toFixed(3))} | ${r.density.toFixed(3)} | ${r.chunkDensity.toFixed(3)} | ${r.prefillSpeedup.toFixed(2)}x | ${r.cpuSpeedup === undefined ? "-" : r.cpuSpeedup.toFixed(2) + "x"} | ${r.attentionSpeedup.toFixed(2)}x |`;
  for (const c of contexts) {
    const f = r.fid.find((x) => x.context === c);
    md += f
      ? ` ${num(f.kl)} (${num(f.klF32)}) | ${pct(f.ppl)} (${pct(f.pplF32)}) | ${(100 * f.greedy).toFixed(0)}% (${(100 * f.greedyF32).toFixed(0)}%) |`
      : " - | - | - |";
  }
  md += "\n";
}
for (const f of fidelity) {
  const q5h = f.levels.find((l) => l.name === "q5h");
  if (q5h)
    md += `\nq5h (default codec level) at ${f.context_tokens} tokens: KL ${num(q5h.kl_mean)} (${num(q5h.precise?.kl_mean)}), ppl ${pct(q5h.ppl_change_rel)} (${pct(q5h.precise?.ppl_change_rel)}).`;
}
md += "\n";

// ---- SVG: speedup (left axis) and KL (right axis) against tau ----
const W = 700, H = 470, L = 60, R = 70, T = 40, B = 140;  // legend under the plot
const taus = sorted.map((r) => r.tau);
const tMin = Math.min(...taus), tMax = Math.max(...taus);
const x = (t) => L + ((t - tMin) / Math.max(1e-9, tMax - tMin)) * (W - L - R);
const sMax = Math.max(2, ...sorted.map((r) => r.attentionSpeedup)) * 1.1;
const ys = (s) => H - B - (s / sMax) * (H - T - B);
const kls = sorted.flatMap((r) => r.fid.flatMap((f) => [f.kl, f.klF32, f.q5hKl]).filter((v) => v !== undefined));
const kMax = Math.max(1e-4, ...kls) * 1.1;
const yk = (k) => H - B - (k / kMax) * (H - T - B);
const line = (pts, color, dash = "") =>
  `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ""} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ")}"/>` +
  pts.map(([a, b]) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3" fill="${color}"/>`).join("");
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">\n`;
svg += `<rect width="${W}" height="${H}" fill="white"/>\n`;
svg += `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Sparse prefill attention: speed and fidelity over tau (chunk at depth ${o.depth})</text>\n`;
svg += `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/><line x1="${W - R}" y1="${T}" x2="${W - R}" y2="${H - B}" stroke="black"/>\n`;
for (const t of taus) svg += `<text x="${x(t)}" y="${H - B + 16}" text-anchor="middle">${Number(t.toFixed(3))}</text>`;
svg += `<text x="${W / 2}" y="${H - B + 34}" text-anchor="middle">tau (softmax mass kept per query block)</text>\n`;
for (let i = 0; i <= 4; ++i) {
  const s = (sMax * i) / 4, k = (kMax * i) / 4;
  svg += `<text x="${L - 6}" y="${ys(s) + 4}" text-anchor="end">${s.toFixed(1)}x</text>`;
  svg += `<text x="${W - R + 6}" y="${yk(k) + 4}">${k.toFixed(4)}</text>`;
}
svg += `<line x1="${L}" y1="${ys(1)}" x2="${W - R}" y2="${ys(1)}" stroke="#bbb" stroke-dasharray="2,3"/>\n`;
svg += line(sorted.map((r) => [x(r.tau), ys(r.attentionSpeedup)]), "#1f77b4");
svg += line(sorted.map((r) => [x(r.tau), ys(r.prefillSpeedup)]), "#17becf");
const legend = [["#1f77b4", "", "attention speedup (left)"], ["#17becf", "", "whole-prefill speedup (left)"]];
const colors = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b"];
contexts.forEach((c, i) => {
  const pts = (field) => sorted.map((r) => [r, r.fid.find((f) => f.context === c)?.[field]]).filter(([, v]) => v !== undefined);
  const deployed = pts("kl"), precise = pts("klF32");
  svg += line(deployed.map(([r, v]) => [x(r.tau), yk(v)]), colors[(2 * i) % 4], "6,3");
  svg += line(precise.map(([r, v]) => [x(r.tau), yk(v)]), colors[(2 * i + 1) % 4], "2,2");
  legend.push([colors[(2 * i) % 4], "6,3", `KL vs dense, Q4_1, ${c} tokens (right)`]);
  legend.push([colors[(2 * i + 1) % 4], "2,2", `KL vs dense, F32 copy, ${c} tokens (right)`]);
  const q5h = fidelity.find((f) => f.context_tokens === c)?.levels.find((l) => l.name === "q5h");
  if (q5h) {
    svg += `<line x1="${L}" y1="${yk(q5h.kl_mean)}" x2="${W - R}" y2="${yk(q5h.kl_mean)}" stroke="${colors[(2 * i) % 4]}" stroke-width="1" opacity="0.5"/>`;
    legend.push([colors[(2 * i) % 4], "", `q5h codec KL, Q4_1, ${c} tokens (right)`]);
  }
});
legend.forEach(([color, dash, text], i) => {
  const x0 = i % 2 ? W / 2 : 20, y0 = H - B + 56 + 16 * Math.floor(i / 2);
  svg += `<line x1="${x0}" y1="${y0}" x2="${x0 + 24}" y2="${y0}" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ""}/><text x="${x0 + 30}" y="${y0 + 4}">${text}</text>`;
});
svg += "\n</svg>\n";

writeFileSync(o.svg, svg);
if (o.md) writeFileSync(o.md, md);
process.stdout.write(md);
process.stderr.write(`sparse_curve: wrote ${o.svg}${o.md ? ` and ${o.md}` : ""}\n`);
