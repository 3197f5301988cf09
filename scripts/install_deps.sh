#!/usr/bin/env bash
# Installs SparKV's build and test dependencies from Debian packages (Debian 12 / bookworm).
# Tools already on PATH (from Debian or elsewhere, e.g. a Node.js distribution's npm) are kept;
# only what is missing is installed.
set -euo pipefail
declare -A tools=([cmake]=cmake [ninja]=ninja-build [g++]=g++ [pkg-config]=pkg-config
                  [python3]=python3 [npm]=npm [clang-format]=clang-format)
libraries=(libgtest-dev libzstd-dev libxxhash-dev nlohmann-json3-dev libcli11-dev libfmt-dev
           libcpp-httplib-dev libsodium-dev libssl-dev zlib1g-dev libbrotli-dev libcurl4-openssl-dev
           libexpat1-dev
           nginx)  # the test that serves a store as static files (tests/infra); not a library
missing=()
for tool in "${!tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${tools[$tool]}")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
for p in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_deps: apt-get not found; install these Debian packages yourself: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install_deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
