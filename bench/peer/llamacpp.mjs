// Loads node-llama-cpp from the peer install made by bench/peer/install.sh.
import { execFileSync } from "node:child_process";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

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
export const referenceModelPath = () => join(sparkvCache(), "models", "SmolLM2-135M-Instruct.Q4_1.gguf");
export const demoTextPath = () => join(sparkvCache(), "texts", "lincoln-1862-state-of-the-union.txt");
