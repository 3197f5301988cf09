#!/usr/bin/env bash
# Where SparKV's engine spends its time: runs build/bench/engine_bench under `perf record` (the
# software cpu-clock event, which works in containers without hardware counters) and prints the
# hottest functions. Nothing in the engine is instrumented, so the profiled build is the real one.
#
#   bench/profile_engine.sh [--build build] [--out DIR] [-- ENGINE_BENCH_ARGS...]
#
# Default engine_bench arguments: --threads 2 --chunks 4 --decode 32 --decode-depths 1024,4096
# (a 4,096-token chunked prefill of the demo text, then decode). The profile covers the whole
# process, prefill and decode together; pass e.g. `-- --chunks 1 --decode 1 --decode-depths 1`
# for prefill alone. For call stacks, configure with -DCMAKE_BUILD_TYPE=RelWithDebInfo and add
# `--call-graph dwarf` to PERF_RECORD_ARGS.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (use -- before engine_bench arguments)" >&2; exit 2 ;;
  esac
done
bench_args=("$@")
if [ ${#bench_args[@]} -eq 0 ]; then
  bench_args=(--threads 2 --chunks 4 --decode 32 --decode-depths 1024,4096)
fi
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$build/bench/engine_bench" ] || { echo "build engine_bench first: cmake --build $build --target engine_bench" >&2; exit 1; }
out="${out:-$(mktemp -d /tmp/sparkv-profile-XXXXXX)}"
mkdir -p "$out"

# shellcheck disable=SC2086
perf record -e cpu-clock -F 999 ${PERF_RECORD_ARGS:-} -o "$out/perf.data" -- \
  "$build/bench/engine_bench" "${bench_args[@]}" | tee "$out/engine_bench.txt"
perf report -i "$out/perf.data" --no-children --sort symbol --percent-limit 0.5 --stdio 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | sed -e 's/[ -]*$//' | cut -c1-160 | head -40 | tee "$out/report.txt"
echo "perf data and report in $out (perf report -i $out/perf.data for more)"
