#!/usr/bin/env python3
"""Generate src/engine/tokenizer/unicode_tables.inc: general-category ranges for the tokenizer.

The pre-tokenizers need \\p{L}, \\p{N}, \\p{P}, \\p{S}, \\p{M} and "is this code point assigned at
all" (llama.cpp's splitter treats unassigned code points differently from out-of-range ones). We
store one sorted list of ranges, each packed into a uint32 as (first_code_point << 8) | category;
a lookup is a binary search (ASCII has its own fast path in C++).

Unicode version. llama.cpp (the peer, src/unicode-data.cpp) was generated from Unicode 15.1.0;
this script reproduces its categories exactly with `unicodedata2==15.1.0`:

    python3 -m venv /tmp/ucd && /tmp/ucd/bin/pip install unicodedata2==15.1.0
    /tmp/ucd/bin/python scripts/gen_unicode_tables.py > src/engine/tokenizer/unicode_tables.inc

Without unicodedata2 it falls back to the interpreter's own `unicodedata` (Python 3.11 ships
Unicode 14.0.0) and says so in the output: 5,116 code points (assigned in 15.0/15.1) then differ
from llama.cpp's tables, all of them "undefined" here. Pass --check PATH/unicode-data.cpp to count
the differences against a llama.cpp checkout.

White space is the Unicode White_Space property (PropList.txt), which `unicodedata` does not
expose; it has not changed since Unicode 6.3 and is the same list llama.cpp uses, so it is written
out below and kept in C++ as a short switch.
"""
import argparse
import re
import sys

try:
    import unicodedata2 as ucd
    SOURCE = "unicodedata2"
except ImportError:  # pragma: no cover - depends on the environment
    import unicodedata as ucd
    SOURCE = "unicodedata (standard library)"

MAX_CODEPOINT = 0x110000
LLAMA_CPP_UNICODE_VERSION = "15.1.0"

# Category codes, shared with unicode.h (enum class UnicodeCategory).
CATEGORIES = {
    "undefined": 0, "letter": 1, "number": 2, "punctuation": 3, "symbol": 4, "mark": 5,
    "separator": 6, "control": 7,
}
GENERAL_TO_CATEGORY = {
    "Cn": "undefined",
    "Cc": "control", "Cf": "control", "Co": "control", "Cs": "control",
    "Ll": "letter", "Lm": "letter", "Lo": "letter", "Lt": "letter", "Lu": "letter",
    "Mc": "mark", "Me": "mark", "Mn": "mark",
    "Nd": "number", "Nl": "number", "No": "number",
    "Pc": "punctuation", "Pd": "punctuation", "Pe": "punctuation", "Pf": "punctuation",
    "Pi": "punctuation", "Po": "punctuation", "Ps": "punctuation",
    "Sc": "symbol", "Sk": "symbol", "Sm": "symbol", "So": "symbol",
    "Zl": "separator", "Zp": "separator", "Zs": "separator",
}
WHITE_SPACE = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
               0x2029, 0x202F, 0x205F, 0x3000]

# llama.cpp flag bits (unicode.h) for --check.
LLAMA_FLAGS = {"undefined": 0x01, "number": 0x02, "letter": 0x04, "separator": 0x08, "mark": 0x10,
               "punctuation": 0x20, "symbol": 0x40, "control": 0x80}


def categories():
    return [CATEGORIES[GENERAL_TO_CATEGORY[ucd.category(chr(c))]] for c in range(MAX_CODEPOINT)]


def ranges(cats):
    out = [(0, cats[0])]
    for c in range(1, MAX_CODEPOINT):
        if cats[c] != out[-1][1]:
            out.append((c, cats[c]))
    return out


def check_contraction_lowercase():
    """The Llama-3 / Qwen2 contractions ('s, 't, 're, 've, 'm, 'll, 'd) are case-insensitive.
    The C++ side lowercases ASCII only; that is exact if no other code point lowercases to one
    of these letters (llama.cpp applies the full simple-lowercase table)."""
    letters = set("strevmld")
    for c in range(0x80, MAX_CODEPOINT):
        low = chr(c).lower()
        if len(low) == 1 and low in letters:
            sys.exit(f"U+{c:04X} lowercases to {low!r}: the ASCII-only lowercase is not enough")


def check_against_llama(path, cats):
    src = open(path, encoding="utf-8").read()
    body = re.search(r"unicode_ranges_flags = \{.*?\n(.*?)\};", src, re.S).group(1)
    table = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", body)]
    code_of = {LLAMA_FLAGS[name]: CATEGORIES[name] for name in LLAMA_FLAGS}
    differ = 0
    for (start, flags), (end, _) in zip(table, table[1:]):
        expected = code_of[flags & 0xFF]
        differ += sum(1 for c in range(start, end) if cats[c] != expected)
    print(f"{differ} code points differ from {path}", file=sys.stderr)
    return differ


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", metavar="UNICODE_DATA_CPP",
                        help="compare with llama.cpp's src/unicode-data.cpp and report to stderr")
    args = parser.parse_args()

    check_contraction_lowercase()
    cats = categories()
    table = ranges(cats)
    if args.check:
        check_against_llama(args.check, cats)

    version = ucd.unidata_version
    note = ("matches llama.cpp's tables" if version == LLAMA_CPP_UNICODE_VERSION else
            f"llama.cpp uses {LLAMA_CPP_UNICODE_VERSION}: code points assigned after {version} "
            "are 'undefined' here")
    print("// Generated by scripts/gen_unicode_tables.py; do not edit.")
    print(f"// Unicode {version} from {SOURCE} ({note}).")
    print("// Each entry: (first code point << 8) | category; a range runs to the next entry.")
    print("// Categories: " + ", ".join(f"{v}={k}" for k, v in CATEGORIES.items()) + ".")
    print(f"inline constexpr char kUnicodeVersion[] = \"{version}\";")
    print(f"inline constexpr uint32_t kCategoryRanges[{len(table)}] = {{")
    per_line = 6
    for i in range(0, len(table), per_line):
        chunk = table[i:i + per_line]
        print("    " + " ".join(f"0x{(start << 8) | cat:08X}," for start, cat in chunk))
    print("};")
    ws = ", ".join(f"0x{c:04X}" for c in WHITE_SPACE)
    print(f"// White_Space: {ws}")


if __name__ == "__main__":
    main()
