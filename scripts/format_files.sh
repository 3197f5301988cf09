#!/usr/bin/env bash
# Lists the C++ files clang-format owns (NUL-separated): every tracked .cpp/.h outside tests/data,
# plus untracked ones not ignored, so a new file is checked before it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.h' ':!:tests/data/**'
else  # a source tarball
  find include src tests testkit bench fuzz examples \( -name '*.cpp' -o -name '*.h' \) \
    -not -path 'tests/data/*' -print0
fi
