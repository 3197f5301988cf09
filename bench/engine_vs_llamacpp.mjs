#!/usr/bin/env node
// SparKV's engine against llama.cpp, same GGUF file, same thread count, same token ids, in one run:
//
//   cmake --build build --target engine_bench
//   node bench/engine_vs_llamacpp.mjs [--runs 3] [--threads 2] [--model FILE] [--build build]
//        [--batch 1024] [--chunks 8] [--decode 64] [--decode-depths 1024,8192] [--json FILE]
//
// Measures, for each engine, in separate processes (one process per run, engines alternating and
// rotating their order from run to run so that drifting machine load hits all of them alike):
//   * prefill tok/s of each 1024-token chunk of a sequential chunked prefill of the Lincoln text
//     (the chunk at depth d attends to d earlier tokens), reported at depths 0, 3072 and 7168
//     (every chunk is in the JSON);
//   * decode tok/s of --decode greedy tokens at each of --decode-depths (the cache is cut back to
//     that depth after the prefill);
//   * peak RSS of the process; for llama.cpp that includes the node runtime, which is measured
//     alone too (node + node-llama-cpp + ggml loaded, no model) and reported next to it.
// Engines: build/bench/engine_bench (SparKV) and bench/llamacpp_bench.mjs with flash attention off
// and on. Medians over the runs. The baseline for each metric is llama.cpp's better configuration
// for that metric (both are reported). Ratios are ours / llama.cpp (> 1: SparKV faster).
// The prompt ids are llama.cpp's tokenization of the text, fed to both engines.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { demoTextPath, optionReader, referenceModelPath } from "./peer/llamacpp.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = optionReader(args);
const modelPath = option("--model", referenceModelPath());
const textPath = option("--text", demoTextPath());
const buildDir = resolve(repo, option("--build", "build"));
const runs = Number(option("--runs", "3"));
const threads = option("--threads", "2");
const batch = option("--batch", "1024");
const chunk = 1024;
const chunks = option("--chunks", "8");
const decode = option("--decode", "64");
const decodeDepths = option("--decode-depths", "1024,8192");
const jsonOut = option("--json", "");
const REPORT_DEPTHS = [0, 3072, 7168];

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const runJson = (cmd, cmdArgs) =>
  JSON.parse(execFileSync(cmd, cmdArgs, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 }));

const dir = mkdtempSync(join(tmpdir(), "sparkv-bench-"));
try {
  const tokensFile = join(dir, "tokens.json");
  const llamaScript = join(repo, "bench", "llamacpp_bench.mjs");
  runJson("node", [llamaScript, "--model", modelPath, "--tokenize", textPath, "--out", tokensFile]);
  const common = ["--tokens", tokensFile, "--threads", threads, "--chunks", chunks, "--decode", decode, "--decode-depths", decodeDepths];
  const engines = {
    sparkv: () => runJson(join(buildDir, "bench", "engine_bench"), ["--model", modelPath, "--json", ...common]),
    llamacpp_fa_off: () =>
      runJson("node", [llamaScript, "--model", modelPath, "--batch", batch, "--flash-attention", "off", ...common]),
    llamacpp_fa_on: () =>
      runJson("node", [llamaScript, "--model", modelPath, "--batch", batch, "--flash-attention", "on", ...common]),
  };
  const names = Object.keys(engines);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  const load = [];
  for (let r = 0; r < runs; ++r) {
    for (let k = 0; k < names.length; ++k) {
      const name = names[(r + k) % names.length];
      load.push(loadavg()[0]);
      const result = engines[name]();
      results[name].push(result);
      const p = result.prefill.map((x) => x.tok_s.toFixed(0)).join(" ");
      const d = result.decode.map((x) => `${x.depth}:${x.tok_s.toFixed(1)}`).join(" ");
      console.error(`run ${r + 1}/${runs} ${name}: prefill tok/s by chunk [${p}], decode [${d}]`);
    }
  }
  const runtimeRss = runJson("node", [llamaScript, "--runtime-only"]).peak_rss_bytes;

  // Medians per engine.
  const summary = {};
  for (const name of names) {
    const rs = results[name];
    summary[name] = {
      prefill_tok_s: Object.fromEntries(rs[0].prefill.map((p, i) => [p.depth, median(rs.map((x) => x.prefill[i].tok_s))])),
      decode_tok_s: Object.fromEntries(rs[0].decode.map((d, i) => [d.depth, median(rs.map((x) => x.decode[i].tok_s))])),
      peak_rss_mib: median(rs.map((x) => x.peak_rss_bytes)) / 2 ** 20,
    };
  }
  const best = (metric, key) => {
    const off = summary.llamacpp_fa_off[metric][key];
    const on = summary.llamacpp_fa_on[metric][key];
    return on > off ? { value: on, config: "fa_on" } : { value: off, config: "fa_off" };
  };
  const rows = [];
  for (const depth of REPORT_DEPTHS) {
    const base = best("prefill_tok_s", depth);
    const ours = summary.sparkv.prefill_tok_s[depth];
    rows.push({ metric: `prefill 1024 @ depth ${depth}`, sparkv: ours, llamacpp: base.value, llamacpp_config: base.config,
                llamacpp_fa_off: summary.llamacpp_fa_off.prefill_tok_s[depth], llamacpp_fa_on: summary.llamacpp_fa_on.prefill_tok_s[depth],
                ratio: ours / base.value });
  }
  for (const depth of Object.keys(summary.sparkv.decode_tok_s)) {
    const base = best("decode_tok_s", depth);
    const ours = summary.sparkv.decode_tok_s[depth];
    rows.push({ metric: `decode @ depth ${depth}`, sparkv: ours, llamacpp: base.value, llamacpp_config: base.config,
                llamacpp_fa_off: summary.llamacpp_fa_off.decode_tok_s[depth], llamacpp_fa_on: summary.llamacpp_fa_on.decode_tok_s[depth],
                ratio: ours / base.value });
  }
  const rss = {
    sparkv_mib: summary.sparkv.peak_rss_mib,
    llamacpp_fa_off_mib: summary.llamacpp_fa_off.peak_rss_mib,
    llamacpp_fa_on_mib: summary.llamacpp_fa_on.peak_rss_mib,
    node_runtime_mib: runtimeRss / 2 ** 20,
  };

  console.log(`SparKV engine vs llama.cpp (node-llama-cpp 3.21.1): ${modelPath.split("/").pop()}, ${threads} threads, ` +
              `llama.cpp batch ${batch}, medians of ${runs} runs (tok/s; ratio = SparKV / best llama.cpp config)`);
  console.log(`${"metric".padEnd(26)} ${"SparKV".padStart(8)} ${"llama.cpp".padStart(10)} ${"(config)".padEnd(9)} ${"fa off".padStart(8)} ${"fa on".padStart(8)} ${"ratio".padStart(6)}`);
  for (const r of rows) {
    console.log(`${r.metric.padEnd(26)} ${r.sparkv.toFixed(1).padStart(8)} ${r.llamacpp.toFixed(1).padStart(10)} ${r.llamacpp_config.padEnd(9)} ` +
                `${r.llamacpp_fa_off.toFixed(1).padStart(8)} ${r.llamacpp_fa_on.toFixed(1).padStart(8)} ${r.ratio.toFixed(2).padStart(6)}`);
  }
  console.log(`peak RSS MiB: SparKV ${rss.sparkv_mib.toFixed(1)}; llama.cpp fa off ${rss.llamacpp_fa_off_mib.toFixed(1)}, ` +
              `fa on ${rss.llamacpp_fa_on_mib.toFixed(1)} (of which the node runtime with node-llama-cpp loaded, no model: ` +
              `${rss.node_runtime_mib.toFixed(1)})`);
  console.log(`1-minute load average during the runs: median ${median(load).toFixed(1)}, max ${Math.max(...load).toFixed(1)} (2 cores)`);

  const out = {
    model: modelPath, threads: Number(threads), llamacpp_batch: Number(batch), runs, chunk,
    table: rows, peak_rss: rss, medians: summary, raw: results, load_average: load,
  };
  if (jsonOut) writeFileSync(resolve(jsonOut), JSON.stringify(out, null, 2) + "\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
