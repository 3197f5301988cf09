#!/usr/bin/env bash
# A 3-node Garage cluster on one machine (three processes, replication factor 3, one zone per
# node, loopback ports only), a context ingested into it, one node stopped, and then every unit
# streamed from what is left, compared with `sparkv serve` on a local directory:
#
#   bench/garage_cluster.sh [--runs 5] [--tokens 4096] [--level q5h] [--keep]
#   (SPARKV_CPU_LOCK= to run without the shared CPU lock)
#
# Needs build/sparkv, build/bench/store_stream_bench, the reference model (`sparkv model
# --fetch`) and Garage (scripts/install_garage.sh). Everything lives in a temp dir that is
# removed at the end (--keep leaves it and the processes' logs). The layout it sets up:
#
#   node   rpc     s3 api  web     zone  capacity
#   1      39311   39310   39312   dc1   1G       \
#   2      39321   39320   39322   dc2   1G        } replication_factor = 3: every object on
#   3      39331   39330   39332   dc3   1G       /  all three, quorum 2 for reads and writes
#
# Steps (each the plain garage CLI, so this doubles as the operator's recipe):
#   garage -c node1.toml node id -q; garage -c node1.toml node connect <id2>@127.0.0.1:39321 ...
#   garage layout assign -z dc1 -c 1G <id1>; ... ; garage layout apply --version 1
#   garage key import <GK...> <secret> -n sparkv; garage bucket create sparkv-bench
#   garage bucket allow --read --write --owner sparkv-bench --key sparkv
#   garage bucket website --allow sparkv-bench     # public-read for devices (web endpoint)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=5 TOKENS=4096 LEVEL=q5h KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --tokens) TOKENS=$2; shift 2 ;;
    --level) LEVEL=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--runs N] [--tokens N] [--level L] [--keep]" >&2; exit 2 ;;
  esac
done
CACHE="${SPARKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkv}"
GARAGE="${SPARKV_GARAGE:-$CACHE/garage/bin/garage}"
[ -x "$GARAGE" ] || { echo "garage not found at $GARAGE (scripts/install_garage.sh)" >&2; exit 1; }
# CPU-heavy steps take the machine's shared lock (CONVENTIONS.md); SPARKV_CPU_LOCK= disables it.
LOCK=${SPARKV_CPU_LOCK-flock /tmp/sparkv-cpu.lock}
SPARKV=build/sparkv
BENCH=build/bench/store_stream_bench
[ -x "$SPARKV" ] && [ -x "$BENCH" ] || { echo "build sparkv and store_stream_bench first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sparkv-garage3-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
KEY_ID=GK5a3c0e7d9b1f2a4c6e8d0b2f
KEY_SECRET=9f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
BUCKET=sparkv-bench
for n in 1 2 3; do
  mkdir -p "$WORK/node$n"
  cat > "$WORK/node$n.toml" <<EOF
metadata_dir = "$WORK/node$n/meta"
data_dir = "$WORK/node$n/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:393${n}1"
rpc_public_addr = "127.0.0.1:393${n}1"
rpc_secret = "$SECRET"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:393${n}0"
root_domain = ".s3.garage.localhost"
[s3_web]
bind_addr = "127.0.0.1:393${n}2"
root_domain = ".web.garage.localhost"
index = "index.html"
EOF
  RUST_LOG=warn "$GARAGE" -c "$WORK/node$n.toml" server > "$WORK/node$n.log" 2>&1 &
  PIDS+=($!)
done
g() { "$GARAGE" -c "$WORK/node1.toml" "$@"; }
for n in 1 2 3; do
  for _ in $(seq 100); do "$GARAGE" -c "$WORK/node$n.toml" node id -q >/dev/null 2>&1 && break; sleep 0.1; done
done
ID=()
for n in 1 2 3; do ID[$n]=$("$GARAGE" -c "$WORK/node$n.toml" node id -q | cut -d@ -f1); done
g node connect "${ID[2]}@127.0.0.1:39321" >/dev/null
g node connect "${ID[3]}@127.0.0.1:39331" >/dev/null
for n in 1 2 3; do g layout assign -z "dc$n" -c 1G "${ID[$n]}" >/dev/null; done
g layout apply --version 1 >/dev/null
g key import "$KEY_ID" "$KEY_SECRET" -n sparkv --yes >/dev/null
g bucket create "$BUCKET" >/dev/null
g bucket allow --read --write --owner "$BUCKET" --key sparkv >/dev/null
g bucket website --allow "$BUCKET" >/dev/null
echo "== 3-node layout" >&2
g status >&2

export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$KEY_SECRET AWS_REGION=garage
export AWS_ENDPOINT_URL=http://127.0.0.1:39310
for _ in $(seq 100); do "$SPARKV" gc --store "s3://$BUCKET/kv" --dry-run >/dev/null 2>&1 && break; sleep 0.2; done

DOC="$CACHE/texts/lincoln-1862-state-of-the-union.txt"  # the demo text (`sparkv model --fetch`)
[ -f "$DOC" ] || { echo "demo text missing: build/sparkv model --fetch" >&2; exit 1; }
echo "== ingest $TOKENS tokens of $DOC into s3://$BUCKET/kv (via node 1) and $WORK/fs" >&2
ID_S3=$($LOCK "$SPARKV" ingest --store "s3://$BUCKET/kv" --doc "$DOC" \
        --max-tokens "$TOKENS" --levels "$LEVEL,int8" --threads 2)
ID_FS=$($LOCK "$SPARKV" ingest --store "$WORK/fs" --doc "$DOC" \
        --max-tokens "$TOKENS" --levels "$LEVEL,int8" --threads 2)
[ "$ID_S3" = "$ID_FS" ] || { echo "context ids differ: $ID_S3 $ID_FS" >&2; exit 1; }

"$SPARKV" serve --store "$WORK/fs" --listen 127.0.0.1:39401 > "$WORK/serve-fs.log" 2>&1 &
PIDS+=($!)
AWS_ENDPOINT_URL=http://127.0.0.1:39320 "$SPARKV" serve --store "s3://$BUCKET/kv" \
  --listen 127.0.0.1:39402 > "$WORK/serve-s3.log" 2>&1 &
PIDS+=($!)
sleep 1

bench() {
  $LOCK "$BENCH" --context "$ID_S3" --level "$LEVEL" --runs "$RUNS" \
    --endpoint serve-fs=127.0.0.1:39401 \
    --endpoint "garage-web=http://127.0.0.1:39312/kv@$BUCKET.web.garage.localhost" \
    --endpoint serve-s3=127.0.0.1:39402
}
echo "== streaming bench, all 3 nodes up ($RUNS runs each, unpaced loopback)" >&2
echo "## all 3 nodes up"
bench
echo "== stopping node 3 (SIGKILL), leaving 2 of 3 replicas" >&2
kill -9 "${PIDS[2]}"
sleep 1
echo "== every unit through node 1's and node 2's web endpoints, with node 3 down" >&2
for port in 39312 39322; do
  "$SPARKV" fetch --server "http://127.0.0.1:$port/kv" --host-header "$BUCKET.web.garage.localhost" \
    --context "$ID_S3" --level "$LEVEL"
done
echo "== streaming bench, node 3 down ($RUNS runs each, unpaced loopback)" >&2
echo "## node 3 down"
bench
