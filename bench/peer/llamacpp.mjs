// Loads node-llama-cpp from the peer install made by bench/peer/install.sh.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

// The peer's version, as pinned in bench/peer/package.json (printed next to every result).
export const peerVersion = JSON.parse(readFileSync(join(here, "package.json"), "utf8")).dependencies["node-llama-cpp"];
export const peerName = `node-llama-cpp ${peerVersion}`;

export function peerRoot() {
  return execFileSync(join(here, "install.sh"), { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

export async function loadNodeLlamaCpp() {
  const root = peerRoot();
  return import(pathToFileURL(join(root, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
}

// A llama.cpp instance on the CPU, quiet, with the thread count the caller gives.
export async function cpuLlama() {
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  return getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
}

// `--name value` from a script's arguments, or the fallback.
export function optionReader(args) {
  return (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
  };
}

// SparKV's cache (the rule of src/common/paths.cpp) and what `sparkv model --fetch` puts there.
export const sparkvCache = () =>
  process.env.SPARKV_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "sparkv");
// The models `sparkv model --fetch` knows by name (src/common/paths.cpp), and the same-shape
// copies of the reference model that bench/engine_vs_llamacpp.mjs makes with
// `sparkv model --convert` (one per weight type).
export const KNOWN_MODELS = {
  "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
  "qwen2.5-0.5b": "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
};
export const knownModelPath = (name) => {
  if (!(name in KNOWN_MODELS)) throw new Error(`unknown model ${name}; known: ${Object.keys(KNOWN_MODELS).join(", ")}`);
  return join(sparkvCache(), "models", KNOWN_MODELS[name]);
};
export const referenceModelPath = () => knownModelPath("smollm2-135m");
export const convertedModelPath = (type) =>
  join(sparkvCache(), "models", "converted", `SmolLM2-135M-Instruct.${type.toUpperCase()}.gguf`);
export const demoTextPath = () => join(sparkvCache(), "texts", "lincoln-1862-state-of-the-union.txt");
