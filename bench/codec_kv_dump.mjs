// Dumps the real KV cache of a text, as computed by the llama.cpp peer, into the codec's unit
// layout so that bench/codec_micro can measure the codec on realistic data (--kv FILE).
//
// Usage: node bench/codec_kv_dump.mjs [--tokens N] [--text FILE] [--out FILE]
// Output: raw fp16, units in order (chunk t, layer l) with 1024-token chunks; each unit is
// K [n_kv_heads][n_tokens][head_dim] followed by V in the same layout. A small JSON sidecar
// (FILE.json) records the shapes. K is stored after RoPE, as every llama-family cache does.
import { readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuLlama, demoTextPath, optionReader, referenceModelPath } from "./peer/llamacpp.mjs";

const args = process.argv.slice(2);
const opt = optionReader(args);
const nTokens = Number(opt("--tokens", "4096"));
const textPath = opt("--text", demoTextPath());
const modelPath = opt("--model", referenceModelPath());
const outPath = opt("--out", join(tmpdir(), "sparkv-kv.f16"));
const chunk = Number(opt("--chunk", "1024"));

const llama = await cpuLlama();
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: nTokens + 16, threads: 2, batchSize: 512 });
const sequence = context.getSequence();
const tokens = model.tokenize(readFileSync(textPath, "utf8")).slice(0, nTokens);
if (tokens.length < nTokens) throw new Error(`text has only ${tokens.length} tokens`);
await sequence.evaluateWithoutGeneratingNewTokens(tokens);
const statePath = opt("--keep-state", join(tmpdir(), `sparkv-state-${process.pid}.bin`));
await sequence.saveStateToFile(statePath);
const state = readFileSync(statePath);
if (!args.includes("--keep-state")) rmSync(statePath);

// Parse llama.cpp's sequence state file (magic 'ggsq', version 3).
let off = 0;
const u32 = () => { const v = state.readUInt32LE(off); off += 4; return v; };
const u64 = () => { const v = Number(state.readBigUInt64LE(off)); off += 8; return v; };
const magic = u32(), version = u32();
if (magic !== 0x67677371 || version !== 3) throw new Error(`unexpected state file ${magic.toString(16)} v${version}`);
const nPrompt = u32();
off += 4 * nPrompt;  // prompt tokens
let cells = u32();
if (cells === 1) cells = u32();  // newer layouts write n_stream first
if (cells !== nTokens) throw new Error(`state holds ${cells} cells, expected ${nTokens}`);
for (let i = 0; i < cells; i++) {  // pos, seq ids
  off += 4;
  const nSeq = u32();
  off += 4 * nSeq;
}
const vTrans = u32(), nLayer = u32();
const F16 = 1;
const keys = [];
for (let l = 0; l < nLayer; l++) {
  if (state.readInt32LE(off) !== F16) throw new Error("K cache is not f16"); off += 4;
  const row = u64();
  keys.push(state.subarray(off, off + row * cells)); off += row * cells;
}
const embd = keys[0].length / cells / 2;
const values = [];
for (let l = 0; l < nLayer; l++) {
  if (state.readInt32LE(off) !== F16) throw new Error("V cache is not f16"); off += 4;
  if (vTrans) {
    off += 4; const n = u32();
    values.push({ t: true, d: state.subarray(off, off + n * cells * 2) }); off += n * cells * 2;
  } else {
    const row = u64(); values.push({ t: false, d: state.subarray(off, off + row * cells) }); off += row * cells;
  }
}

const meta = model.fileInfo.metadata;
const nHeads = meta[meta.general.architecture].attention.head_count_kv;
const headDim = embd / nHeads;
const out = [];
for (let t0 = 0; t0 < cells; t0 += chunk) {
  const n = Math.min(chunk, cells - t0);
  for (let l = 0; l < nLayer; l++) {
    for (const which of ["k", "v"]) {
      const unit = Buffer.alloc(nHeads * n * headDim * 2);
      for (let h = 0; h < nHeads; h++)
        for (let i = 0; i < n; i++)
          for (let d = 0; d < headDim; d++) {
            const e = h * headDim + d, dst = ((h * n + i) * headDim + d) * 2;
            let src;
            if (which === "k") src = ((t0 + i) * embd + e) * 2;
            else src = values[l].t ? (e * cells + t0 + i) * 2 : ((t0 + i) * embd + e) * 2;
            (which === "k" ? keys[l] : values[l].d).copy(unit, dst, src, src + 2);
          }
      out.push(unit);
    }
  }
}
writeFileSync(outPath, Buffer.concat(out));
writeFileSync(outPath + ".json", JSON.stringify({ tokens: cells, chunk, layers: nLayer, kv_heads: nHeads,
  head_dim: headDim, text: textPath, token_ids: Array.from(tokens) }));
console.log(`wrote ${outPath}: ${cells} tokens, ${nLayer} layers, ${nHeads} KV heads x ${headDim}`);
await context.dispose(); await model.dispose();
