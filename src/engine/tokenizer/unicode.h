// Code points for the tokenizer: lenient UTF-8 decoding (as llama.cpp does it), general categories
// from generated Unicode tables, white space, and GPT-2's byte <-> code point mapping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv::unicode {

enum class Category : uint8_t {
    Undefined = 0,  // unassigned (Cn)
    Letter,         // L*
    Number,         // N*
    Punctuation,    // P*
    Symbol,         // S*
    Mark,           // M*
    Separator,      // Z*
    Control,        // Cc, Cf, Co, Cs
};

inline constexpr uint32_t kReplacementCharacter = 0xFFFD;

// Unicode version of the generated category tables.
const char* tables_version();

Category category(uint32_t cp);
// The Unicode White_Space property.
bool is_whitespace(uint32_t cp);

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes), without
// looking at the following bytes; used to cut text into characters the way llama.cpp does.
inline size_t sequence_length(uint8_t lead) {
    if (lead < 0xC0) return 1;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    return 4;
}

// Decodes UTF-8 into code points, appending to `out`. Malformed input never throws: a byte that
// does not start a complete sequence becomes U+FFFD and decoding resumes at the next byte. Like
// llama.cpp, overlong forms and surrogates are decoded as written (no crash, just their value);
// unlike llama.cpp (which throws there), values above U+10FFFF become U+FFFD.
void decode_utf8(std::string_view text, std::vector<uint32_t>& out);

// Appends the UTF-8 encoding of a code point (which must be <= U+10FFFF).
void append_utf8(uint32_t cp, std::string& out);

// GPT-2 byte-level mapping: every byte has a printable code point stand-in.
uint32_t byte_to_code_point(uint8_t byte);
// The byte a stand-in code point represents, or -1 if `cp` is not one.
int code_point_to_byte(uint32_t cp);

}  // namespace sparkv::unicode
