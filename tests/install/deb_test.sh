#!/usr/bin/env bash
# Builds the .deb with CPack into a temporary directory and installs it with dpkg into a scratch
# root (its own dpkg database, no root needed; the run-time libraries are the host's, so
# dependencies are not resolved there), then runs the packaged binary from that root.
#   deb_test.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v dpkg-deb >/dev/null || { echo "deb_test: dpkg-deb not found (not a Debian system)"; exit 1; }

cpack -G DEB -B "$tmp/out" --config "$build/CPackConfig.cmake" >/dev/null
deb=$(ls "$tmp"/out/sparkv_*.deb)
echo "deb_test: $(basename "$deb"), $(stat -c %s "$deb") bytes; Depends: $(dpkg-deb -f "$deb" Depends)"
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --force-not-root --log=/dev/null -i "$deb" >/dev/null 2>&1 \
  || { dpkg --root="$root" --force-depends --force-not-root --log=/dev/null -i "$deb"; exit 1; }
dpkg --root="$root" -L sparkv | grep -qx /usr/share/sparkv/fetch_assets.py
"$root/usr/bin/sparkv" --version | grep -qx "sparkv [0-9.]*"
"$root/usr/bin/sparkv" model --path >/dev/null
[[ -f "$root/usr/lib/cmake/sparkv/sparkvConfig.cmake" && -f "$root/usr/lib/pkgconfig/sparkv.pc" ]]
echo "deb_test: installed into a scratch root and ran $root/usr/bin/sparkv"
