#!/usr/bin/env bash
# Installs the llama.cpp peer (npm node-llama-cpp, the version pinned in package.json, prebuilt CPU
# libraries) into the SparKV cache, outside git. Used only by the comparison scripts in bench/,
# never by the product. A different pinned version replaces the installed one.
set -euo pipefail
root="${SPARKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkv}/peer"
mkdir -p "$root"
cp "$(dirname "$0")/package.json" "$root/package.json"
want="$(sed -n 's/.*"node-llama-cpp": "\(.*\)".*/\1/p' "$root/package.json")"
have="$(sed -n 's/^  "version": "\(.*\)".*/\1/p' "$root/node_modules/node-llama-cpp/package.json" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  (cd "$root" && npm install --no-audit --no-fund --ignore-scripts >&2)
fi
echo "$root"
