#!/usr/bin/env node
// SparKV's engine against llama.cpp, same GGUF file, same thread count, same token ids, in one run:
//
//   cmake --build build --target sparkv engine_bench
//   node bench/engine_vs_llamacpp.mjs [--models q4_k_m,q8_0,q4_0,q4_1] [--model FILE] [--runs 3]
//        [--threads 2] [--chunks 8] [--decode 64] [--batch 1024] [--no-native] [--lock FILE]
//        [--build build] [--json FILE] [--avx2]
//
// Models (--models, comma-separated; or one --model FILE):
//   q4_k_m  Qwen2.5-Coder-0.5B-Instruct Q4_K_M (`sparkv model --fetch`): Q5_0, Q8_0, Q4_K, Q6_K;
//   q4_1    SmolLM2-135M-Instruct Q4_1, the reference model;
//   q8_0, q4_0 (and any other type name)  same-shape copies of the reference model, made once
//           into the cache with `sparkv model --convert smollm2-135m OUT --type T`.
// Engines, each in its own process per run, alternating and rotating their order from run to
// run so that drifting machine load hits all of them alike (with --lock FILE every process runs
// under `flock FILE`, the shared machine's CPU lock):
//   * sparkv: build/bench/engine_bench;
//   * llama.cpp through node-llama-cpp (bench/peer), flash attention off and on
//     (bench/llamacpp_bench.mjs); the prompt ids are this peer's tokenization of the demo text,
//     fed to every engine;
//   * native llama-bench built from the same llama.cpp sources (bench/llamacpp_native.sh builds
//     it; --no-native skips it): pp1024 at depths 0, 3072, 7168 and tg64 at depth 0, flash
//     attention off and on.
//   * with --avx2, also sparkv_avx2: the same binary with SPARKV_ISA=avx2 (the kernels an
//     AVX2-only CPU gets; on an AVX-512 VNNI CPU the default is the AVX-512 level).
// Metrics: prefill tok/s of each 1024-token chunk of a sequential chunked prefill (the chunk at
// depth d attends to d earlier tokens), reported at depths 0, 3072 and 7168, and decode tok/s of
// --decode greedy tokens from an (almost) empty context (SparKV and node: after 1 token; native:
// tg64 at depth 0). Medians over the runs; the baseline of each metric is llama.cpp's better
// flash-attention setting; ratios are SparKV / llama.cpp (> 1: SparKV faster).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { convertedModelPath, demoTextPath, knownModelPath, optionReader, peerName, sparkvCache } from "./peer/llamacpp.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = optionReader(args);
const flag = (name) => args.includes(name);
const textPath = option("--text", demoTextPath());
const buildDir = resolve(repo, option("--build", "build"));
const runs = Number(option("--runs", "3"));
const threads = option("--threads", "2");
const batch = option("--batch", "1024");
const chunk = 1024;
const chunks = option("--chunks", "8");
const decode = option("--decode", "64");
const lock = option("--lock", "");
const jsonOut = option("--json", "");
const REPORT_DEPTHS = [0, 3072, 7168].filter((d) => d < Number(chunks) * chunk);

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const run = (cmd, cmdArgs, env = process.env) => {
  const [c, a] = lock ? ["flock", [lock, cmd, ...cmdArgs]] : [cmd, cmdArgs];
  return execFileSync(c, a, { encoding: "utf8", env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 });
};
const runJson = (cmd, cmdArgs, env) => JSON.parse(run(cmd, cmdArgs, env));

// The GGUF file of a --models key, converting the reference model when a copy is missing.
function modelFile(key) {
  if (key === "q4_k_m") return knownModelPath("qwen2.5-0.5b");
  if (key === "q4_1") return knownModelPath("smollm2-135m");
  const path = convertedModelPath(key);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    console.error(`making ${path} (sparkv model --convert)`);
    execFileSync(join(buildDir, "sparkv"), ["model", "--convert", "smollm2-135m", path, "--type", key], { stdio: "inherit" });
  }
  return path;
}

function nativeBench() {
  const out = execFileSync(join(repo, "bench", "llamacpp_native.sh"), ["--print-binary"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return out.trim();
}

// One native llama-bench run: prefill at the report depths and decode at depth 0, fa off and on.
function nativeRun(binary, modelPath) {
  const common = ["-m", modelPath, "-t", threads, "-fa", "0,1", "-r", "1", "-o", "json"];
  const pp = JSON.parse(run(binary, [...common, "-p", String(chunk), "-n", "0", "-d", REPORT_DEPTHS.join(",")]));
  const tg = JSON.parse(run(binary, [...common, "-p", "0", "-n", decode, "-d", "0"]));
  const result = { fa_off: { prefill: {}, decode: {} }, fa_on: { prefill: {}, decode: {} } };
  for (const r of [...pp, ...tg]) {
    const side = result[r.flash_attn ? "fa_on" : "fa_off"];
    if (r.n_prompt > 0) side.prefill[r.n_depth] = r.avg_ts;
    else side.decode[r.n_depth] = r.avg_ts;
  }
  return result;
}

function benchModel(key, modelPath) {
  const dir = mkdtempSync(join(tmpdir(), "sparkv-bench-"));
  try {
    const tokensFile = join(dir, "tokens.json");
    const llamaScript = join(repo, "bench", "llamacpp_bench.mjs");
    runJson("node", [llamaScript, "--model", modelPath, "--tokenize", textPath, "--out", tokensFile]);
    const common = ["--tokens", tokensFile, "--threads", threads, "--chunks", chunks, "--decode", decode, "--decode-depths", "1"];
    const engines = {
      sparkv: () => runJson(join(buildDir, "bench", "engine_bench"), ["--model", modelPath, "--json", ...common]),
      node_fa_off: () =>
        runJson("node", [llamaScript, "--model", modelPath, "--batch", batch, "--flash-attention", "off", ...common]),
      node_fa_on: () =>
        runJson("node", [llamaScript, "--model", modelPath, "--batch", batch, "--flash-attention", "on", ...common]),
    };
    if (flag("--avx2"))
      engines.sparkv_avx2 = () =>
        runJson(join(buildDir, "bench", "engine_bench"), ["--model", modelPath, "--json", ...common], { ...process.env, SPARKV_ISA: "avx2" });
    let native = null;
    if (!flag("--no-native")) {
      const binary = nativeBench();
      engines.native = () => nativeRun(binary, modelPath);
    }
    const names = Object.keys(engines);
    const raw = Object.fromEntries(names.map((n) => [n, []]));
    const load = [];
    for (let r = 0; r < runs; ++r) {
      for (let k = 0; k < names.length; ++k) {
        const name = names[(r + k) % names.length];
        load.push(loadavg()[0]);
        const result = engines[name]();
        raw[name].push(result);
        console.error(`${key} run ${r + 1}/${runs} ${name} done`);
      }
    }
    // Medians: prefill by depth, decode at depth 0 (SparKV / node: their depth-1 decode).
    const series = {};
    for (const name of ["sparkv", "node_fa_off", "node_fa_on", "sparkv_avx2"].filter((n) => raw[n])) {
      series[name] = {
        prefill: Object.fromEntries(REPORT_DEPTHS.map((d) => [d, median(raw[name].map((x) => x.prefill.find((p) => p.depth === d).tok_s))])),
        decode0: median(raw[name].map((x) => x.decode[0].tok_s)),
        peak_rss_mib: median(raw[name].map((x) => x.peak_rss_bytes)) / 2 ** 20,
      };
    }
    if (raw.native) {
      native = {};
      for (const fa of ["fa_off", "fa_on"]) {
        native[fa] = {
          prefill: Object.fromEntries(REPORT_DEPTHS.map((d) => [d, median(raw.native.map((x) => x[fa].prefill[d]))])),
          decode0: median(raw.native.map((x) => x[fa].decode[0])),
        };
      }
    }
    const best = (a, b) => (a.value >= b.value ? a : b);
    const rows = [];
    for (const d of REPORT_DEPTHS) {
      const node = best({ value: series.node_fa_off.prefill[d], config: "fa off" }, { value: series.node_fa_on.prefill[d], config: "fa on" });
      const nat = native ? best({ value: native.fa_off.prefill[d], config: "fa off" }, { value: native.fa_on.prefill[d], config: "fa on" }) : null;
      rows.push({ metric: `prefill 1024 @ ${d}`, sparkv: series.sparkv.prefill[d], avx2: series.sparkv_avx2?.prefill[d], node, native: nat });
    }
    const node = best({ value: series.node_fa_off.decode0, config: "fa off" }, { value: series.node_fa_on.decode0, config: "fa on" });
    const nat = native ? best({ value: native.fa_off.decode0, config: "fa off" }, { value: native.fa_on.decode0, config: "fa on" }) : null;
    rows.push({ metric: `decode ${decode} @ 0`, sparkv: series.sparkv.decode0, avx2: series.sparkv_avx2?.decode0, node, native: nat });
    for (const r of rows) {
      r.ratio_node = r.sparkv / r.node.value;
      if (r.native) r.ratio_native = r.sparkv / r.native.value;
      if (r.avx2 !== undefined) r.ratio_avx2_node = r.avx2 / r.node.value;
    }
    return { key, model: modelPath, rows, series, native, raw, load_average: load };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const keys = option("--model", "") ? ["file"] : option("--models", "q4_k_m,q8_0,q4_0").split(",");
const results = [];
for (const key of keys) {
  const path = key === "file" ? resolve(option("--model")) : modelFile(key);
  results.push(benchModel(key, path));
}

const fmt = (v) => (v === undefined || v === null ? "-" : v.toFixed(1));
console.log(`SparKV engine vs llama.cpp (${peerName}; native llama-bench from its sources), ${threads} threads, ` +
            `medians of ${runs} runs; tok/s; ratio = SparKV / llama.cpp's better flash-attention setting`);
console.log(`| model | metric | SparKV | llama.cpp node (fa) | ratio | llama-bench native (fa) | ratio | SparKV AVX2 | ratio |`);
console.log(`|---|---|---:|---:|---:|---:|---:|---:|---:|`);
for (const res of results) {
  for (const r of res.rows) {
    const nat = r.native ? `${fmt(r.native.value)} (${r.native.config}) | **${r.ratio_native.toFixed(2)}**` : "- | -";
    console.log(`| ${basename(res.model)} | ${r.metric} | ${fmt(r.sparkv)} | ${fmt(r.node.value)} (${r.node.config}) | ` +
                `**${r.ratio_node.toFixed(2)}** | ${nat} | ` +
                (r.avx2 !== undefined ? `${fmt(r.avx2)} | ${r.ratio_avx2_node.toFixed(2)} |` : "- | - |"));
  }
  const load = res.load_average;
  console.log(`|   | 1-min load average during the runs: median ${median(load).toFixed(1)}, max ${Math.max(...load).toFixed(1)} | | | | | | | |`);
}
if (jsonOut) {
  writeFileSync(resolve(jsonOut), JSON.stringify({ peer: peerName, threads: Number(threads), runs, chunk, cache: sparkvCache(), results }, null, 2) + "\n");
}
