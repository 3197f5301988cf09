#!/usr/bin/env bash
# Applies clang-format (the checked-in .clang-format) in place to every C++ file that
# scripts/check_format.sh checks.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
scripts/format_files.sh | xargs -0 -r "$CLANG_FORMAT" --style=file -i
