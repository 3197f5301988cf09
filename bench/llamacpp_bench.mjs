#!/usr/bin/env node
// llama.cpp's side of bench/engine_vs_llamacpp.mjs (node-llama-cpp of bench/peer, CPU prebuilt). One
// process = one run, the same protocol as build/bench/engine_bench:
//
//   node bench/llamacpp_bench.mjs --model FILE --tokens FILE [--threads 2] [--batch 1024]
//        [--flash-attention on|off] [--chunk 1024] [--chunks 8] [--decode 64] [--decode-depths 1024,8192]
//   node bench/llamacpp_bench.mjs --model FILE --tokenize TEXT_FILE --out FILE   (prompt ids, JSON)
//   node bench/llamacpp_bench.mjs --runtime-only    (peak RSS of node + node-llama-cpp + ggml, no model)
//
// 1. Warm-up: a 32-token evaluation, then the sequence is cleared.
// 2. Chunked prefill: the ids are evaluated in chunks of --chunk tokens (no logits requested, one
//    llama_decode per chunk when --batch >= --chunk; the micro-batch equals the batch in
//    node-llama-cpp); each chunk is timed, so chunk i gives the speed at depth i * chunk.
// 3. Decode: for each depth (descending), the sequence is cut back to that length and --decode
//    greedy tokens are generated (temperature 0: llama.cpp's greedy sampler, no penalties).
// 4. Peak RSS (VmHWM), which includes the node runtime; --runtime-only measures that part alone.
// Prints one JSON object.
import { readFileSync, writeFileSync } from "node:fs";
import { cpuLlama, optionReader, peerName } from "./peer/llamacpp.mjs";

const args = process.argv.slice(2);
const option = optionReader(args);
const flag = (name) => args.includes(name);

function peakRssBytes() {
  const match = readFileSync("/proc/self/status", "utf8").match(/^VmHWM:\s+(\d+) kB/m);
  return match ? Number(match[1]) * 1024 : -1;
}

async function tokenize(llama) {
  const model = await llama.loadModel({ modelPath: option("--model") });
  const ids = Array.from(model.tokenize(readFileSync(option("--tokenize"), "utf8"), false));
  writeFileSync(option("--out"), JSON.stringify(ids));
  return { tokens: ids.length };
}

async function bench(llama) {
  const modelPath = option("--model");
  const threads = Number(option("--threads", "2"));
  const batchSize = Number(option("--batch", "1024"));
  const flashAttention = option("--flash-attention", "off") === "on";
  const chunk = Number(option("--chunk", "1024"));
  const chunks = Number(option("--chunks", "8"));
  const nDecode = Number(option("--decode", "64"));
  const depths = option("--decode-depths", "1024,8192").split(",").map(Number).sort((a, b) => b - a);
  const tokens = JSON.parse(readFileSync(option("--tokens"), "utf8"));
  const nPrefill = chunk * chunks;
  if (tokens.length < nPrefill) throw new Error(`${tokens.length} prompt tokens, need ${nPrefill}`);

  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: nPrefill + nDecode + 8,
    batchSize,
    threads: { ideal: threads, min: threads },
    flashAttention,
  });
  if (context.flashAttention !== flashAttention) throw new Error("flash attention setting not applied");
  const sequence = context.getSequence();

  await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(0, 32));  // warm-up
  await sequence.clearHistory();

  const prefill = [];
  for (let i = 0; i < chunks; ++i) {
    const part = tokens.slice(i * chunk, (i + 1) * chunk);
    const t0 = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(part);
    const seconds = (performance.now() - t0) / 1000;
    prefill.push({ depth: i * chunk, tokens: chunk, seconds, tok_s: chunk / seconds });
  }

  const decode = [];
  for (const depth of depths) {
    // Cut back to depth - 1 and re-evaluate that position untimed: its logits pick the first token.
    await sequence.eraseContextTokenRanges([{ start: depth - 1, end: sequence.nextTokenIndex }]);
    const generator = sequence.evaluate([tokens[depth - 1]], { temperature: 0, yieldEogToken: true });
    await generator.next();
    const t0 = performance.now();
    for (let i = 0; i < nDecode; ++i) await generator.next();
    const seconds = (performance.now() - t0) / 1000;
    await generator.return();
    decode.push({ depth, tokens: nDecode, seconds, tok_s: nDecode / seconds });
  }

  const result = {
    engine: `llama.cpp (${peerName}), flash attention ${flashAttention ? "on" : "off"}`,
    model: modelPath,
    threads: context.currentThreads,
    batch_size: context.batchSize,
    flash_attention: flashAttention,
    prompt_tokens: nPrefill,
    prefill,
    decode,
    peak_rss_bytes: peakRssBytes(),
  };
  await context.dispose();
  await model.dispose();
  return result;
}

const llama = await cpuLlama();
let result;
if (flag("--runtime-only")) result = { engine: "node + node-llama-cpp runtime, no model", peak_rss_bytes: peakRssBytes() };
else if (option("--tokenize")) result = await tokenize(llama);
else result = await bench(llama);
console.log(JSON.stringify(result, null, 2));
