#!/usr/bin/env node
// Records llama.cpp's outputs (node-llama-cpp, the peer of bench/peer/package.json) as fixtures
// for SparKV's parity test (tests/engine/llamacpp_parity_test.cpp).
//
//   cmake --build build --target make_test_model
//   node bench/llamacpp_reference.mjs [--build build] [--out tests/data/llamacpp]
//        [--only smollm2|qwen2.5|random]
//
// Cases
//   smollm2.json        the reference model (SmolLM2-135M-Instruct Q4_1) on 5 prompts: a short
//                       question, a chat-templated prompt with special tokens, code, French, and
//                       a passage of the Lincoln text longer than 2,000 tokens.
//   qwen2.5.json        Qwen2.5-Coder-0.5B-Instruct Q4_K_M (a file mixing Q5_0, Q8_0, Q4_K and
//                       Q6_K) on the same kinds of prompts, its own ChatML system prompt, and a
//                       Lincoln passage longer than 1,024 tokens (shorter than the reference
//                       model's, so that the test on this 4x larger model stays a few seconds).
//   random_models.json  small random-weight GGUF models written by SparKV's own GGUF writer
//                       (build/bench/make_test_model -> write_random_model) for every architecture
//                       (llama, qwen2, qwen3) x weight type (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
//                       Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), and per
//                       architecture one model mixing types per tensor as llama.cpp's Q4_K_M does
//                       on a model whose width (320) is not a multiple of 256 (Q4_K, Q6_K, and the
//                       Q5_0 / Q8_0 fallbacks; make_test_model --mix q4_k_m). Every model has an
//                       untied LM head of the weight type
//                       with output scale 8 (logits with a standard deviation of about 8: with
//                       the default scale 1 the next-token distribution over the 529-token vocab
//                       is nearly flat, top-2 gaps of 0.001 nats are common and even llama.cpp's
//                       two attention paths disagree on greedy tokens; a tied LM head makes the
//                       model repeat its input token). llama cases also use an embedding of the
//                       weight type, qwen cases the default Q8_0 one. Each case stores the full
//                       spec and SparKV's fingerprint of the file, so the test detects a stale
//                       fixture when the writer changes. The model files are temporary: the
//                       test rebuilds them from the spec.
//
// What is recorded per case, for each of llama.cpp's two CPU attention paths (flash attention
// off = "fa_off", the primary reference, and on = "fa_on"; they round differently, and their
// difference is a yardstick for ours):
//   prompt_ids   the prompt's token ids as llama.cpp tokenizes it (both engines are fed these ids,
//                so tokenization is not part of this comparison; it has its own fixtures);
//   tokens       32 greedily generated ids (temperature 0, no repetition penalty, no other
//                sampler; end-of-generation tokens are kept and generation goes on past them);
//   top          the last prompt token's distribution: the N = 100 most likely tokens as
//                [id, log p] (log p computed from llama.cpp's full-vocabulary softmax; with the
//                greedy sampler no truncating sampler runs, so the list covers the whole vocab);
//   steps        at each of the 32 steps, llama.cpp's 5 most likely tokens as [id, log p]: where
//                the engines' greedy tokens first differ, the test reads how far apart llama.cpp
//                puts the two candidates (a near-tie may flip legitimately under rounding).
// Log-probabilities are rounded to 6 decimals (1e-6 nats, far below the errors compared).
//
// Max relative error of the last-token logits (what the test reports and bounds). log p is the
// logit up to a per-distribution constant, so the comparison is made shift-invariant by centring
// on the reference's top-N set S:
//   a_i = log p_ref(i) - mean_{j in S} log p_ref(j)     (llama.cpp)
//   b_i = z_i          - mean_{j in S} z_j              (SparKV's raw logits z)
//   max_rel_err = max_{i in S} |b_i - a_i| / max_{i in S} |a_i|
// i.e. the worst logit error over the 100 most likely tokens, relative to the largest centred
// reference logit in that set. The test also reports max_{i in S} |b_i - a_i| in nats.
//
// Settings: 2 threads, batch size 512 (= micro-batch), context sized to the longest prompt + 32.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuLlama, demoTextPath, knownModelPath, optionReader, peerName } from "./peer/llamacpp.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = optionReader(args);
const buildDir = resolve(repo, option("--build", "build"));
const outDir = resolve(repo, option("--out", "tests/data/llamacpp"));
const only = option("--only", "");
const lincolnPath = demoTextPath();
const makeTestModel = join(buildDir, "bench", "make_test_model");

const THREADS = 2;
const BATCH = 512;
const N_PREDICT = 32;
const TOP_N = 100;
const STEP_TOP_N = 5;

const ATTENTION = { fa_off: false, fa_on: true };
const PRIMARY = "fa_off";
const OUTPUT_SCALE = 8;

// Each model's ChatML default system turn (what its chat template inserts).
const SYSTEM_TURNS = {
  smollm2: "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
  "qwen2.5": "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
};
const chatml = (system, user) => `${system}<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`;

// The real models: fixture name -> known model, default system turn, length of the long passage.
const REAL_MODELS = {
  smollm2: { model: "smollm2-135m", file: "SmolLM2-135M-Instruct.Q4_1.gguf", longMinTokens: 2048 },
  "qwen2.5": { model: "qwen2.5-0.5b", file: "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", longMinTokens: 1024 },
};

const promptsFor = (fixture) => [
  { name: "short-question", text: "What is the capital of France?", special: false },
  { name: "chat-template", text: chatml(SYSTEM_TURNS[fixture], "Give me three tips for staying healthy."), special: true },
  {
    name: "code",
    text: "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n",
    special: false,
  },
  {
    name: "french",
    text: "La Révolution française a commencé en 1789. Les causes principales de cette révolution étaient",
    special: false,
  },
  { name: "lincoln-long", text: null, special: false },  // filled in from the Lincoln text
];

const WEIGHT_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K",
                      "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"];
// Width 320 = 5 heads of 64 (one KV head): every matrix but ffn_down (rows of n_ff = 512) falls
// back to a legacy type, as in Qwen2.5-0.5B (width 896).
const MIXES = [{ mix: "q4_k_m", nEmbd: 320, nHead: 5, nKvHead: 1 }];
const ARCHS = ["llama", "qwen2", "qwen3"];

// The shortest run of whole sentences from the start of the text with >= minTokens tokens.
function longPassage(model, text, minTokens) {
  let end = 0;
  for (;;) {
    const next = text.indexOf(". ", end);
    if (next < 0) throw new Error(`the Lincoln text has fewer than ${minTokens} tokens`);
    end = next + 1;
    const ids = model.tokenize(text.slice(0, end), false);
    if (ids.length >= minTokens) return text.slice(0, end);
  }
}

// Greedy generation with the distribution at every step.
const round6 = (x) => Math.round(x * 1e6) / 1e6;
const topOf = (probabilities, n) => {
  const out = [];
  for (const [id, p] of probabilities) {
    if (out.length === n || !(p > 0)) break;
    out.push([id, round6(Math.log(p))]);
  }
  return out;
};

async function record(sequence, promptIds) {
  await sequence.clearHistory();
  const tokens = [];
  const steps = [];
  let top = null;
  const metadata = { probabilities: true };
  const options = { temperature: 0, yieldEogToken: true };
  for await (const step of sequence.evaluateWithMetadata(promptIds, metadata, options)) {
    if (top === null) top = topOf(step.probabilities, TOP_N);
    const best = topOf(step.probabilities, STEP_TOP_N);
    const chosen = best.find(([id]) => id === step.token);
    if (!chosen || chosen[1] !== best[0][1]) throw new Error(`greedy token ${step.token} is not the most likely`);
    tokens.push(step.token);
    steps.push(best);
    if (tokens.length === N_PREDICT) break;
  }
  return { tokens, top, steps };
}

async function recordCases(llama, modelPath, cases) {
  const model = await llama.loadModel({ modelPath });
  const longest = Math.max(...cases.map((c) => c.prompt_ids.length));
  for (const [label, flashAttention] of Object.entries(ATTENTION)) {
    const context = await model.createContext({
      contextSize: longest + N_PREDICT + 8,
      batchSize: BATCH,
      threads: THREADS,
      flashAttention,
    });
    if (context.flashAttention !== flashAttention) throw new Error(`flash attention ${flashAttention} not applied`);
    const sequence = context.getSequence();
    for (const c of cases) {
      const t0 = performance.now();
      c.llamacpp ??= {};
      c.llamacpp[label] = await record(sequence, c.prompt_ids);
      console.error(`  ${c.name} [${label}]: ${c.prompt_ids.length} prompt tokens, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await context.dispose();
  }
  await model.dispose();
}

function header(extra) {
  return {
    generator: "bench/llamacpp_reference.mjs",
    peer: `${peerName} (llama.cpp, CPU prebuilt)`,
    threads: THREADS,
    batch_size: BATCH,
    n_predict: N_PREDICT,
    top_n: TOP_N,
    primary: PRIMARY,
    attention: "fa_off: flash attention off; fa_on: flash attention on",
    ...extra,
  };
}

async function realModelFixture(llama, fixtureName) {
  const real = REAL_MODELS[fixtureName];
  const modelPath = knownModelPath(real.model);
  const fingerprint = JSON.parse(execFileSync(makeTestModel, ["--fingerprint-of", modelPath], { encoding: "utf8" }));
  const model = await llama.loadModel({ modelPath });
  const lincoln = readFileSync(lincolnPath, "utf8");
  const cases = promptsFor(fixtureName).map((p) => {
    const text = p.text ?? longPassage(model, lincoln, real.longMinTokens);
    const c = { name: p.name, prompt_ids: Array.from(model.tokenize(text, p.special)) };
    c.prompt_text = p.text ?? `The first ${text.length} characters of ${lincolnPath.split("/").pop()}`;
    return c;
  });
  await model.dispose();
  await recordCases(llama, modelPath, cases);
  return header({ model: { name: real.model, file: real.file, fingerprint: fingerprint.fingerprint }, cases });
}

async function randomFixture(llama) {
  const dir = mkdtempSync(join(tmpdir(), "sparkv-parity-"));
  const lincoln = readFileSync(lincolnPath, "utf8");
  const cases = [];
  try {
    let index = 0;
    const variants = [...WEIGHT_TYPES.map((type) => ({ type })), ...MIXES];
    for (const arch of ARCHS) {
      for (const v of variants) {
        const label = v.mix ? `mix-${v.mix}` : v.type;
        const type = v.type ?? "Q8_0";
        const path = join(dir, `${arch}-${label}.gguf`);
        const extra = ["--untied", "--output-scale", String(OUTPUT_SCALE)];
        if (arch === "llama" && !v.mix) extra.push("--embedding-type", type);
        if (v.mix) extra.push("--mix", v.mix, "--n-embd", String(v.nEmbd), "--n-head", String(v.nHead), "--n-kv-head", String(v.nKvHead));
        const seed = String(100 + index);
        const made = JSON.parse(
          execFileSync(makeTestModel, ["--arch", arch, "--type", type, "--seed", seed, "--out", path, ...extra], {
            encoding: "utf8",
          }),
        );
        // A different 600-character slice of the text per case (about 200 tokens in the small vocab).
        const slice = lincoln.slice(1000 + index * 700, 1600 + index * 700);
        const model = await llama.loadModel({ modelPath: path });
        const promptIds = Array.from(model.tokenize(slice, false));
        await model.dispose();
        const c = { name: `${arch}-${label}`, spec: made.spec, fingerprint: made.fingerprint, prompt_ids: promptIds };
        await recordCases(llama, path, [c]);
        cases.push(c);
        ++index;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return header({ cases });
}

const llama = await cpuLlama();
mkdirSync(outDir, { recursive: true });
for (const name of Object.keys(REAL_MODELS)) {
  if (only !== "" && only !== name) continue;
  console.error(`${name}:`);
  const fixture = await realModelFixture(llama, name);
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(fixture) + "\n");
}
if (only === "" || only === "random") {
  console.error("random models:");
  const fixture = await randomFixture(llama);
  writeFileSync(join(outDir, "random_models.json"), JSON.stringify(fixture) + "\n");
}
console.error(`fixtures written to ${outDir}`);
