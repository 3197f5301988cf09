#!/usr/bin/env bash
# Fails (exit 1) when a C++ file differs from what clang-format makes of it with the checked-in
# .clang-format, naming each file and the first differences; changes nothing. scripts/format.sh
# applies the format. clang-format from Debian (scripts/install_deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null || { echo "check_format: $CLANG_FORMAT not found (apt install clang-format)" >&2; exit 2; }
mapfile -d '' files < <(scripts/format_files.sh)
bad=()
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if (( ${#bad[@]} )); then
  "$CLANG_FORMAT" --style=file --dry-run "${bad[0]}" 2>&1 | head -20 >&2
  printf 'check_format: %d of %d files are not formatted (%s); run scripts/format.sh:\n' \
    "${#bad[@]}" "${#files[@]}" "$("$CLANG_FORMAT" --version)" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
