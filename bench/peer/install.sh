#!/usr/bin/env bash
# Installs the llama.cpp peer (npm node-llama-cpp (version in package.json), prebuilt CPU libraries) into the SparKV
# cache, outside git. Used only by the comparison scripts in bench/, never by the product.
set -euo pipefail
root="${SPARKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkv}/peer"
mkdir -p "$root"
cp "$(dirname "$0")/package.json" "$root/package.json"
if [ ! -d "$root/node_modules/node-llama-cpp" ]; then
  (cd "$root" && npm install --no-audit --no-fund --ignore-scripts >&2)
fi
echo "$root"
