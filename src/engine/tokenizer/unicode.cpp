#include "engine/tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace sparkv::unicode {

namespace {

#include "engine/tokenizer/unicode_tables.inc"

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// Byte-level BPE (GPT-2): printable Latin-1 bytes stand for themselves; the 68 others (controls,
// space, DEL, 0x80-0xA0, soft hyphen) are moved to U+0100 onwards, in byte order.
constexpr bool is_printable_latin1(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

constexpr std::array<uint16_t, 256> make_byte_to_cp() {
    std::array<uint16_t, 256> map{};
    uint16_t next = 256;
    for (int b = 0; b < 256; ++b) map[b] = is_printable_latin1(b) ? b : next++;
    return map;
}

constexpr std::array<uint16_t, 256> kByteToCp = make_byte_to_cp();
constexpr uint32_t kStandInEnd = 256 + 68;

constexpr std::array<int16_t, kStandInEnd> make_cp_to_byte() {
    std::array<int16_t, kStandInEnd> map{};
    for (auto& v : map) v = -1;
    for (int b = 0; b < 256; ++b) map[kByteToCp[b]] = static_cast<int16_t>(b);
    return map;
}

constexpr std::array<int16_t, kStandInEnd> kCpToByte = make_cp_to_byte();

constexpr Category lookup_category(uint32_t cp) {
    const uint32_t key = (cp << 8) | 0xFF;
    const auto* end = std::end(kCategoryRanges);
    const auto* it = std::upper_bound(std::begin(kCategoryRanges), end, key);
    return static_cast<Category>(*(it - 1) & 0xFF);
}

constexpr std::array<Category, 128> make_ascii_categories() {
    std::array<Category, 128> cat{};
    for (uint32_t c = 0; c < 128; ++c) cat[c] = lookup_category(c);
    return cat;
}

constexpr std::array<Category, 128> kAsciiCategories = make_ascii_categories();

bool is_continuation(uint8_t b) {
    return (b & 0xC0) == 0x80;
}

}  // namespace

const char* tables_version() {
    return kUnicodeVersion;
}

Category category(uint32_t cp) {
    if (cp < 128) return kAsciiCategories[cp];
    if (cp > kMaxCodePoint) return Category::Undefined;
    return lookup_category(cp);
}

bool is_whitespace(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return false;
    switch (cp) {
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000:
            return true;
        default:
            return cp >= 0x2000 && cp <= 0x200A;
    }
}

void decode_utf8(std::string_view text, std::vector<uint32_t>& out) {
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        const uint8_t b = s[i];
        if (b < 0x80) {
            out.push_back(b);
            ++i;
            continue;
        }
        size_t len = 0;
        uint32_t cp = 0;
        if ((b & 0xE0) == 0xC0) {
            len = 2;
            cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3;
            cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4;
            cp = b & 0x07;
        }
        bool ok = len != 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; ++k) {
            ok = is_continuation(s[i + k]);
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (!ok || cp > kMaxCodePoint) {
            out.push_back(kReplacementCharacter);
            ++i;
            continue;
        }
        out.push_back(cp);
        i += len;
    }
}

void append_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

uint32_t byte_to_code_point(uint8_t byte) {
    return kByteToCp[byte];
}

int code_point_to_byte(uint32_t cp) {
    return cp < kStandInEnd ? kCpToByte[cp] : -1;
}

}  // namespace sparkv::unicode
