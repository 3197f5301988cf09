// Loads node-llama-cpp from the peer install made by bench/peer/install.sh.
import { execFileSync } from "node:child_process";
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
