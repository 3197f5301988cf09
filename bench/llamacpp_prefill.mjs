// Measures the llama.cpp peer (node-llama-cpp) on the reference model: prefill of a 1024-token
// chunk at several context depths, and single-token decode at those depths, with the given
// thread count. The same numbers kernel_bench estimates for SparKV's kernels, so the two can be
// compared in one session on the same machine. "cores used" is process CPU time over wall time
// during the timed prefills (below the thread count: the machine was busy with other work).
//
//   node bench/llamacpp_prefill.mjs [--threads 2] [--runs 5] [--depths 0,3072,7168] [--flash-attention]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cpuLlama, demoTextPath, optionReader, referenceModelPath } from "./peer/llamacpp.mjs";

const args = process.argv.slice(2);
const option = optionReader(args);
const threads = Number(option("--threads", "2"));
const runs = Number(option("--runs", "5"));
const depths = option("--depths", "0,3072,7168").split(",").map(Number);
const flashAttention = args.includes("--flash-attention");
const chunk = 1024;
const decodeTokens = 16;

const modelPath = referenceModelPath();
const text = readFileSync(demoTextPath(), "utf8");

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const llama = await cpuLlama();
const model = await llama.loadModel({ modelPath });
let tokens = model.tokenize(text);
while (tokens.length < Math.max(...depths) + chunk + decodeTokens) tokens = tokens.concat(tokens);

const context = await model.createContext({
  contextSize: Math.max(...depths) + chunk + decodeTokens + 16,
  batchSize: chunk,
  threads: { ideal: threads, min: threads },
  flashAttention,
});
const sequence = context.getSequence();

console.log(`llama.cpp peer (node-llama-cpp), SmolLM2-135M Q4_1, ${threads} thread(s), flash attention ${flashAttention}, median of ${runs}`);
const results = [];
let filled = 0;
for (const depth of depths) {
  // Bring the cache to `depth` tokens (untimed), then time one chunk; erase it and repeat.
  if (filled > depth) {
    await sequence.eraseContextTokenRanges([{ start: depth, end: filled }]);
    filled = depth;
  }
  for (let at = filled; at < depth; at += chunk) {
    await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(at, Math.min(depth, at + chunk)));
  }
  filled = depth;
  const prefill = [];
  let cpu = 0, wall = 0;
  for (let r = 0; r < runs; ++r) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(depth, depth + chunk));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const used = process.cpuUsage(c0);
    cpu += (used.user + used.system) / 1e6;
    wall += seconds;
    prefill.push(seconds);
    await sequence.eraseContextTokenRanges([{ start: depth, end: depth + chunk }]);
  }
  // Decode: one token at a time on top of the chunk.
  await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(depth, depth + chunk));
  const decode = [];
  for (let i = 0; i < decodeTokens; ++i) {
    const t0 = process.hrtime.bigint();
    await sequence.evaluateWithoutGeneratingNewTokens([tokens[depth + chunk + i]]);
    decode.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  filled = depth + chunk + decodeTokens;
  const row = {
    depth,
    prefill_tokens_per_s: chunk / median(prefill),
    prefill_cores_used: cpu / wall,
    decode_depth: depth + chunk,
    decode_tokens_per_s: 1 / median(decode),
  };
  results.push(row);
  console.log(`  depth ${String(depth).padStart(5)}: prefill ${row.prefill_tokens_per_s.toFixed(1)} tok/s (1024-token chunk, ${row.prefill_cores_used.toFixed(2)} cores used), decode at ${depth + chunk}: ${row.decode_tokens_per_s.toFixed(1)} tok/s`);
}
if (args.includes("--json")) console.log(JSON.stringify({ threads, flashAttention, results }));
await context.dispose();
await model.dispose();
