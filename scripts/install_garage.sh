#!/usr/bin/env bash
# Builds Garage (the S3-compatible distributed object store the S3 tests run against) into the
# cache, from crates.io with cargo: `cargo install --locked garage --version 2.5.0`. Skipped
# when the binary is already there (about 16 minutes on 2 cores otherwise).
#   cache: $SPARKV_CACHE, else $XDG_CACHE_HOME/sparkv, else ~/.cache/sparkv (as `sparkv model`)
set -euo pipefail
VERSION=2.5.0
CACHE="${SPARKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkv}"
ROOT="$CACHE/garage"
BIN="$ROOT/bin/garage"
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "cargo:$VERSION"; then
  echo "install_garage: $BIN ($VERSION) is there" >&2
  exit 0
fi
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "install_garage: cargo not found (install Rust with rustup, or Debian's cargo if recent enough)" >&2
  exit 1
fi
echo "install_garage: building garage $VERSION with $(cargo --version) into $ROOT (about 16 min on 2 cores)" >&2
start=$(date +%s)
cargo install --locked garage --version "$VERSION" --root "$ROOT"
echo "install_garage: built in $(( $(date +%s) - start )) s" >&2
"$BIN" --version >&2
