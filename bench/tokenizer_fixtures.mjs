#!/usr/bin/env node
// Regenerates SparKV's tokenizer fixtures from llama.cpp (node-llama-cpp, the peer of
// bench/peer/package.json).
//
//   cmake --build build --target write_test_vocabs
//   node bench/tokenizer_fixtures.mjs [--build build] [--out tests/data/tokenizer]
//
// Writes, for each vocabulary, the token ids llama.cpp gives for a list of tricky strings, with
// special-token parsing off and on (model.tokenize(text, specialTokens), which is
// common_tokenize(vocab, text, add_special = false, parse_special)), its detokenization, and the
// BOS / EOS / end-of-generation ids:
//   smollm2.json      - the reference model (SmolLM2-135M-Instruct, pre-tokenizer "smollm"), plus
//                       the whole demo text, stored as base64 of little-endian uint16 ids.
//   qwen2.5.json      - Qwen2.5-Coder-0.5B-Instruct (pre-tokenizer "qwen2", 151k tokens), plus the
//                       demo text as base64 of little-endian uint32 ids.
//   small_vocabs.json - small vocabulary-only GGUF files (byte-level BPE with the pre-tokenizers
//                       llama-bpe, qwen2, gpt-2, smollm, default and none; SentencePiece), written
//                       by the C++ helper build/tests/engine/tokenizer/write_test_vocabs into a
//                       temporary directory (the same code rebuilds them inside the tests, so no
//                       GGUF file is kept). llama.cpp loads them with vocabOnly: true.
// It also prints llama.cpp's time to tokenize the demo text (median of repeated runs).
// While loading the tensor-less vocabularies node-llama-cpp first tries a memory estimate of the
// file as a full model and logs "missing tensor 'token_embd.weight'": harmless, the vocabulary-only
// load that follows is what tokenizes.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuLlama, demoTextPath, knownModelPath, optionReader, peerName } from "./peer/llamacpp.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = optionReader(args);
const buildDir = resolve(repo, option("--build", "build"));
const outDir = resolve(repo, option("--out", "tests/data/tokenizer"));
const demoPath = demoTextPath();
// Fixture file -> known model name (sparkv model --fetch).
const MODEL_FIXTURES = { "smollm2.json": "smollm2-135m", "qwen2.5.json": "qwen2.5-0.5b" };

// Strings that probe the pre-tokenizers, merges, special tokens and byte handling.
const CASES = [
  "",
  " ",
  "  ",
  "Hello world",
  " Hello world",
  "Hello  world   three    spaces",
  "trailing spaces   ",
  "\n",
  "\n\n\n",
  "line one\nline two\r\nline three\rend",
  " \n \n\t\n  x",
  "tabs\tand\t\tmore\t",
  "It's, I'm, you're, we've, they'll, he'd, don't, can't",
  "IT'S I'M YOU'RE WE'VE THEY'LL HE'D DON'T",
  "'s 't 're 've 'm 'll 'd '",
  "rock 'n' roll ''quoted'' 'single'",
  "12345678901234567890",
  "3.14159 2,718 1e10 0x1F 1/2 -42 +7",
  "In 1862 there were 31,443,321 people.",
  "٣٤٥ ١٢٣ ²³ ½ Ⅻ ① 〇",
  "$3.50 12.5% ~tilde ^caret |pipe| <less> =equal= `tick`",
  "!!!??? ... --- *** ### @@@ &&& ((( ))) [[[ ]]] {{{ }}}",
  "def tokenize(text):\n    for word in text.split():\n        yield word.lower()  # comment\n",
  "int main() { return x == y ? 0 : -1; }   // a->b && c || d",
  "    four spaces indent\n        eight",
  "Le garçon a mangé une crème brûlée à Noël.",
  "Über den Flüssen liegt Nebel; Straße, Äpfel, ÄÖÜ.",
  "Ελληνικά γράμματα και λέξεις",
  "Русский текст для проверки, спасибо! Привет, мир.",
  "日本語の文章と中文的句子。한국어 문장도 있습니다.",
  "مرحبا بالعالم العربي",
  "हिन्दी में लिखा गया वाक्य",
  "ภาษาไทยไม่มีช่องว่าง",
  "e\u0301 combining a\u0308 marks o\u0302\u0323",
  "😀 🚀 ✨ 👨‍👩‍👧‍👦 🇫🇷 👍🏽",
  "emoji😀inside😀words",
  "café naïve résumé façade coöperate",
  "no\u00a0break\u00a0space and\u3000ideographic\u2003em space",
  "zero\u200bwidth\u200cjoiners\u200d and\ufeffbom",
  "unassigned \u0378 private \ue000 specials \ufffd \uffff",
  "new in Unicode 15: \u2ffc\u31ef \u{1b132} \u{1f6dc}",
  "supercalifragilistic xylophone xyxy",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "the the the of of and and to to in in that that",
  "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
  "<|im_start|><|im_end|><|endoftext|>",
  "text<|endoftext|>more text",
  "<|im_start partial <|im_end| and |im_end|>",
  "<s>[INST] Hi [/INST] Hello</s><unk>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "use <tool> and <tool><tool> here",
  "<reponame>x<filename>y<gh_stars>",
  "<0x41><0xE2> bytes <0x0A>",
  "\u2581 lower one eighth block \u2581\u2581",
  "mixedCASE camelCase snake_case kebab-case SCREAMING_CASE",
  "https://example.com/path?q=1&r=two#frag user@example.org",
  "A\u0000NUL and \u0001\u0002\u001f controls \u007f\u0085\u009f",
  "a1234b c12d 1234567 +12345 12,345.6789 v2.0.1",
  "(hello) [world] {json} \"quoted\" ...dots -dash $money #tag @user",
  "«guillemets» “curly” ‘single’ — em–en dash… ellipsis",
  "\r\n\r\n \r\n \n\r x\r",
  "word\n\n  next\t\t  \nend",
  "x\u00a0\u00a0y hello\u2028world\u2029para\u0085nel",
  "\u01c5ungla \u1e9e titlecase and sharp s",
  "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff11\uff12\uff13 \uff01",
  "I'm you'Re WE'Ve it'S they'lL she'D o'clock y'all",
  "  leading\nand trailing\n  ",
  "ß ﬁ ﬂ ǆ ǈ İstanbul ı",
];

const fnv1a64 = (buffer) => {
  let h = 0xcbf29ce484222325n;
  for (const b of buffer) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
};

// Token ids as base64 of little-endian integers: uint16 when every id fits, else uint32.
const idsBase64 = (tokens) => {
  const wide = tokens.some((t) => t > 0xffff);
  const buf = Buffer.alloc(tokens.length * (wide ? 4 : 2));
  tokens.forEach((t, i) => (wide ? buf.writeUInt32LE(t, i * 4) : buf.writeUInt16LE(t, i * 2)));
  return { [wide ? "tokens_u32le_base64" : "tokens_u16le_base64"]: buf.toString("base64") };
};

async function describe(llama, name, path, { detokenize, demo }) {
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  const nVocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length ?? null;
  const eog = [];
  for (let t = 0; t < nVocab; ++t) if (model.isEogToken(t)) eog.push(t);
  const cases = CASES.map((text) => {
    const plain = Array.from(model.tokenize(text, false));
    const special = Array.from(model.tokenize(text, true));
    const entry = { text, plain, special };
    if (detokenize) {
      entry.detok_plain = model.detokenize(plain, false);
      entry.detok_special = model.detokenize(special, true);
    }
    return entry;
  });
  const out = { vocab: name, n_vocab: nVocab, bos: model.tokens.bos, eos: model.tokens.eos, eog, cases };
  if (demo) {
    const bytes = readFileSync(demoPath);
    const text = bytes.toString("utf8");
    const tokens = Array.from(model.tokenize(text, false));
    const times = [];
    for (let i = 0; i < 15; ++i) {
      const t0 = process.hrtime.bigint();
      model.tokenize(text, false);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(`${name}: llama.cpp tokenized the demo text (${bytes.length} bytes, ${tokens.length} tokens) ` +
                `in ${times[times.length >> 1].toFixed(2)} ms (median of ${times.length}, incl. the JS binding)`);
    out.demo = { file: "lincoln-1862-state-of-the-union.txt", bytes: bytes.length, fnv1a64: fnv1a64(bytes),
                 count: tokens.length, ...idsBase64(tokens) };
  }
  await model.dispose();
  const nTokens = cases.reduce((n, c) => n + c.plain.length + c.special.length, 0);
  console.log(`${name}: ${cases.length} strings, ${nTokens} tokens (plain + special)`);
  return out;
}

// Indented JSON with arrays of numbers kept on one line.
const writeJson = (file, value) => {
  const text = JSON.stringify(value, null, 1)
    .replace(/\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]/g, (_, body) => `[${body.split(/,\s*/).join(",")}]`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, file), text + "\n");
  console.log(`wrote ${join(outDir, file)}`);
};

const llama = await cpuLlama();
const header = {
  generator: "bench/tokenizer_fixtures.mjs",
  peer: `${peerName} (llama.cpp), model.tokenize(text, specialTokens)`,
};

for (const [file, name] of Object.entries(MODEL_FIXTURES)) {
  const modelPath = knownModelPath(name);
  if (!existsSync(modelPath)) throw new Error(`${name} missing at ${modelPath} (run sparkv model --fetch)`);
  const vocab = file.replace(/\.json$/, "");
  writeJson(file, { ...header, ...(await describe(llama, vocab, modelPath, { detokenize: true, demo: existsSync(demoPath) })) });
}

const writer = join(buildDir, "tests", "engine", "tokenizer", "write_test_vocabs");
if (!existsSync(writer)) throw new Error(`${writer} missing: cmake --build ${buildDir} --target write_test_vocabs`);
const dir = mkdtempSync(join(tmpdir(), "sparkv-vocabs-"));
try {
  const files = execFileSync(writer, [dir], { encoding: "utf8" }).trim().split("\n").map((l) => l.split(" "));
  const vocabs = [];
  for (const [name, path] of files) {
    // llama.cpp cleans spaces around punctuation when detokenizing some BPE vocabularies;
    // SparKV returns exact bytes, so only the others are compared on detokenization.
    const exact = name === "bpe-qwen2" || name === "bpe-smollm" || name === "spm";
    vocabs.push(await describe(llama, name, path, { detokenize: exact, demo: false }));
  }
  writeJson("small_vocabs.json", { ...header, vocabs });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
