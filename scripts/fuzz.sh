#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang and runs each for a number of inputs
# (default 1,000,000; first argument overrides), starting from seed corpora where there are
# seeds. Needs: apt install clang libclang-rt-14-dev. Prints each fuzzer's final libFuzzer line.
#   scripts/fuzz.sh            # 1M inputs each
#   scripts/fuzz.sh 20000      # a quick smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1000000}"
build="${SPARKV_FUZZ_BUILD:-build-fuzz}"
CXX="${CXX:-clang++}" cmake -S . -B "$build" -G Ninja -DSPARKV_BUILD_FUZZERS=ON \
  -DSPARKV_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzzers
corpus="$build/corpus"
mkdir -p "$corpus/gguf" "$corpus/codec" "$corpus/manifest" "$corpus/trace"
"$build/fuzz/gguf_fuzz_seeds" "$corpus/gguf"
"$build/fuzz/codec_fuzz_seeds" "$corpus/codec"
"$build/fuzz/manifest_fuzz_seeds" "$corpus/manifest"
# Trace seeds: the start of each shared trace (whole traces would make every input huge).
for t in ../shared/traces/*.down; do [ -f "$t" ] && head -n 200 "$t" >"$corpus/trace/$(basename "$t")"; done
printf '0\n0\n3\n10\n' >"$corpus/trace/seed"
for f in gguf codec manifest trace; do
  echo "== ${f}_fuzz: $runs inputs"
  # -rss_limit_mb keeps a pathological input from taking the machine; every input is bounded.
  "$build/fuzz/${f}_fuzz" "$corpus/$f" -runs="$runs" -rss_limit_mb=2048 -print_final_stats=1 \
    2>"$build/${f}_fuzz.log" || { tail -40 "$build/${f}_fuzz.log"; exit 1; }
  grep -E "^(Done|stat::number_of_executed_units)" "$build/${f}_fuzz.log" | tr '\n' ' '
  echo
done
