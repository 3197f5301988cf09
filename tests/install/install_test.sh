#!/usr/bin/env bash
# Installs the build into a temporary prefix, moves the prefix (so nothing can lean on the paths
# the build knew) and uses it as a user would: the installed binary (--version, model --path, the
# fetch script found beside it, a short generate), and examples/minimal built against the
# installed CMake package and, separately, against its pkg-config file.
#   install_test.sh BUILD_DIR SOURCE_DIR MAKE_TEST_MODEL
set -euo pipefail
build=$1 source=$2 make_test_model=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { echo "install_test: $*"; }

cmake --install "$build" --prefix "$tmp/staging" >/dev/null
mv "$tmp/staging" "$tmp/prefix"
prefix=$tmp/prefix
sparkv=$prefix/bin/sparkv
cd "$tmp"

step "--version"
"$sparkv" --version | grep -qx "sparkv [0-9.]*"
step "model --path: $("$sparkv" model --path)"
"$sparkv" model --path | grep -q "SmolLM2-135M-Instruct.Q4_1.gguf$"

# The fetch step runs the script installed with the binary (a moved prefix cannot reach the
# sources). Fetching the demo text is a no-op when it is already in the cache (as in CI, after the
# README's `model --fetch`); without it only the installed file is checked (no network in a test).
text="$(dirname "$("$sparkv" model --path)")/../texts/lincoln-1862-state-of-the-union.txt"
if [[ -f "$text" ]]; then
  "$sparkv" model --fetch text 2>"$tmp/fetch.log" || { cat "$tmp/fetch.log"; exit 1; }
  grep -q "python3 '$prefix/share/sparkv/fetch_assets.py'" "$tmp/fetch.log" \
    || { echo "install_test: fetch did not use the installed script:"; cat "$tmp/fetch.log"; exit 1; }
  step "model --fetch ran $prefix/share/sparkv/fetch_assets.py"
else
  [[ -x "$prefix/share/sparkv/fetch_assets.py" ]]
  step "demo text not in the cache: fetch not run, script installed"
fi

# The codec profile shipped for the reference model sits beside the fetch script.
[[ -f "$prefix/share/sparkv/codec-profiles/b8951aa641e75aa1.json" ]]
step "codec profile of the reference model installed"

# A small random-weight model written by the project's own GGUF writer: fast and always there.
"$make_test_model" --out "$tmp/tiny.gguf" >/dev/null
step "generate on a random-weight model"
"$sparkv" generate --model "$tmp/tiny.gguf" -p "hello world" -n 4 --threads 1 --json >"$tmp/gen.json"
grep -q '"tokens"' "$tmp/gen.json" || { cat "$tmp/gen.json"; exit 1; }
# Answer and statistics on one stream (a pipe, a log file): the answer ends its own line before the
# statistics line starts.
"$sparkv" generate --model "$tmp/tiny.gguf" -p "hello world" -n 4 --threads 1 >"$tmp/gen.txt" 2>&1
tail -1 "$tmp/gen.txt" | grep -Eq "^sparkv: [0-9]+ prompt tokens" || { cat "$tmp/gen.txt"; exit 1; }
if [[ -f "$("$sparkv" model --path)" ]]; then
  step "generate on the reference model"
  "$sparkv" generate -p "The capital of France is" -n 4 --threads 1 >"$tmp/ref.txt" 2>&1
  tail -1 "$tmp/ref.txt" | grep -Eq "^sparkv: [0-9]+ prompt tokens" || { cat "$tmp/ref.txt"; exit 1; }
fi

step "examples/minimal against find_package(sparkv)"
cmake -S "$source/examples/minimal" -B "$tmp/example" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/example" >/dev/null
"$tmp/example/minimal" "$tmp/tiny.gguf" "hello" | tail -1 | grep -q "tokens generated"

step "examples/minimal against pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
# The .pc finds the prefix relative to itself, so the moved prefix is found.
flags=$(pkg-config --cflags --libs sparkv)
# shellcheck disable=SC2086
c++ -std=c++20 -O1 "$source/examples/minimal/minimal.cpp" -o "$tmp/minimal-pc" $flags
"$tmp/minimal-pc" "$tmp/tiny.gguf" "hello" | tail -1 | grep -q "tokens generated"
step "passed"
