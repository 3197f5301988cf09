#!/usr/bin/env bash
# Cross-check for bench/engine_vs_llamacpp.mjs: llama.cpp's own llama-bench, built with
# -march=native from the llama.cpp sources that the pinned node-llama-cpp (bench/peer) ships (a
# git bundle), so that neither the node bindings nor the prebuilt CPU variant can be what makes
# llama.cpp slower. Source and build live in the cache, outside git; the first run builds (about
# 10 min on 2 cores).
#
#   bench/llamacpp_native.sh [--runs 3] [--threads 2] [--model FILE] [-- EXTRA_LLAMA_BENCH_ARGS...]
#   bench/llamacpp_native.sh --print-binary     (build if needed, print llama-bench's path)
#
# Runs prefill of 1024 tokens at depths 0, 3072 and 7168 and 64 decode tokens, flash attention
# off and on, and prints llama-bench's markdown table (mean +- stddev over the runs).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SPARKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkv}"
model="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
runs=3
threads=2
extra=()
print_binary=0
while [ $# -gt 0 ]; do
  case "$1" in
    --print-binary) print_binary=1; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "llamacpp_native: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
peer="$("$repo/bench/peer/install.sh")"
bundle="$peer/node_modules/node-llama-cpp/llama/gitRelease.bundle"
src="${LLAMACPP_SRC:-$cache/llama.cpp-src}"        # overridable, e.g. to reuse an existing build
build="${LLAMACPP_BUILD:-$cache/llama.cpp-build-noamx}"
if [ ! -e "$src/.git" ]; then
  echo "llamacpp_native: unpacking the llama.cpp sources from $bundle" >&2
  git clone -q "$bundle" "$src"
fi
if [ ! -x "$build/bin/llama-bench" ]; then
  echo "llamacpp_native: building llama-bench (native, Release) in $build" >&2
  # No AMX: -march=native enables it on CPUs that have it, but using its tiles needs the kernel's
  # permission (arch_prctl ARCH_REQ_XCOMP_PERM), which sandboxed and virtualised kernels can
  # refuse: llama-bench then dies with SIGILL in its AMX GEMM (seen on this project's machines).
  # SparKV uses no AMX either; every other extension of the CPU stays on.
  noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
  cmake --build "$build" --target llama-bench >&2
fi
if [ "$print_binary" = 1 ]; then echo "$build/bin/llama-bench"; exit 0; fi
[ -f "$model" ] || { echo "llamacpp_native: no model at $model (run: build/sparkv model --fetch)" >&2; exit 1; }
version="$(sed -n 's/^  "version": "\(.*\)".*/\1/p' "$peer/node_modules/node-llama-cpp/package.json")"
echo "llama-bench $(git -C "$src" rev-parse --short HEAD) (node-llama-cpp $version sources), native build, $threads threads, $runs runs"
"$build/bin/llama-bench" -m "$model" -t "$threads" -p 1024 -n 64 -d 0,3072,7168 -fa 0,1 -r "$runs" "${extra[@]}"
