#include "engine/tokenizer/pretokenize.h"

#include <array>
#include <string>

#include "common/error.h"
#include "engine/tokenizer/unicode.h"

namespace sparkv::pretok {

namespace {

// Per-code-point class bits. kPresent marks every real code point, so that "past the end of the
// word" (no bits) differs from an unassigned code point (kPresent only).
enum : uint8_t {
    kPresent = 1,
    kLetter = 2,        // \p{L}
    kNumber = 4,        // \p{N}
    kSpace = 8,         // \s (Unicode White_Space)
    kAsciiDigit = 16,   // [0-9]
    kPunctOrMath = 32,  // [\p{P}\$\+<=>\^~\|] (the default pre-tokenizer's first rule)
};

uint8_t classify(uint32_t cp) {
    uint8_t bits = kPresent;
    if (unicode::is_whitespace(cp)) bits |= kSpace;
    switch (unicode::category(cp)) {
        case unicode::Category::Letter:
            bits |= kLetter;
            break;
        case unicode::Category::Number:
            bits |= kNumber;
            break;
        case unicode::Category::Punctuation:
            bits |= kPunctOrMath;
            break;
        default:
            break;
    }
    if (cp >= '0' && cp <= '9') bits |= kAsciiDigit;
    switch (cp) {
        case '$':
        case '+':
        case '<':
        case '=':
        case '>':
        case '^':
        case '~':
        case '|':
            bits |= kPunctOrMath;
            break;
        default:
            break;
    }
    return bits;
}

bool is_cr_or_lf(uint32_t cp) {
    return cp == '\r' || cp == '\n';
}

uint32_t ascii_lower(uint32_t cp) {
    return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
}

// One word being split: code points [begin, end) with their classes; emits word lengths.
class Segment {
  public:
    Segment(const uint32_t* cps, const uint8_t* cls, size_t begin, size_t end,
            std::vector<uint32_t>& out)
        : cps_(cps), cls_(cls), begin_(begin), end_(end), out_(out), last_(begin) {}

    size_t begin() const { return begin_; }
    size_t end() const { return end_; }
    // Class bits at i, or 0 past the end of the segment.
    uint8_t cls(size_t i) const { return i < end_ ? cls_[i] : 0; }
    uint32_t cp(size_t i) const { return cps_[i]; }
    bool has(size_t i, uint8_t bits) const { return (cls(i) & bits) != 0; }
    // "Some other character": present but neither white space, letter nor number.
    bool is_other(size_t i) const {
        const uint8_t c = cls(i);
        return c != 0 && (c & (kSpace | kLetter | kNumber)) == 0;
    }
    // Ends the current word at `end` (nothing if empty) and returns `end`.
    size_t emit(size_t end) {
        if (end > last_) out_.push_back(static_cast<uint32_t>(end - last_));
        last_ = end;
        return end;
    }

    // 's 't 're 've 'm 'll 'd at `pos`; returns the match length or 0.
    size_t contraction(size_t pos, bool ignore_case) const {
        if (cp(pos) != '\'' || pos + 1 >= end_) return 0;
        auto lower = [&](size_t i) { return ignore_case ? ascii_lower(cp(i)) : cp(i); };
        const uint32_t c1 = lower(pos + 1);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (pos + 2 >= end_) return 0;
        const uint32_t c2 = lower(pos + 2);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
            return 3;
        return 0;
    }

    // Length of the white-space run starting at `pos`.
    size_t space_run(size_t pos) const {
        size_t n = 0;
        while (has(pos + n, kSpace)) ++n;
        return n;
    }

  private:
    const uint32_t* cps_;
    const uint8_t* cls_;
    size_t begin_;
    size_t end_;
    std::vector<uint32_t>& out_;
    size_t last_;
};

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(Segment& s) {
    size_t pos = s.begin();
    while (pos < s.end()) {
        if (const size_t n = s.contraction(pos, false)) {
            pos = s.emit(pos + n);
            continue;
        }
        // The optional leading space of the next three rules.
        const size_t run = s.cp(pos) == ' ' ? pos + 1 : pos;
        if (s.has(run, kLetter) || s.has(run, kNumber)) {
            const uint8_t bit = s.has(run, kLetter) ? kLetter : kNumber;
            size_t i = run;
            while (s.has(i, bit)) ++i;
            pos = s.emit(i);
            continue;
        }
        if (s.is_other(run)) {
            size_t i = run;
            while (s.is_other(i)) ++i;
            pos = s.emit(i);
            continue;
        }
        const size_t spaces = s.space_run(pos);
        if (spaces > 1 && pos + spaces < s.end()) {
            pos = s.emit(pos + spaces - 1);  // \s+(?!\S): leave the last one to the next word
        } else {
            pos = s.emit(pos + (spaces > 0 ? spaces : 1));
        }
    }
}

// Llama 3 (max_digits 3) and Qwen2 (max_digits 1):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3(Segment& s, size_t max_digits) {
    size_t pos = s.begin();
    while (pos < s.end()) {
        if (const size_t n = s.contraction(pos, true)) {
            pos = s.emit(pos + n);
            continue;
        }
        const uint32_t cp = s.cp(pos);
        if (!is_cr_or_lf(cp) && !s.has(pos, kNumber) &&
            (s.has(pos, kLetter) || s.has(pos + 1, kLetter))) {
            size_t i = pos + 1;
            while (s.has(i, kLetter)) ++i;
            pos = s.emit(i);
            continue;
        }
        if (s.has(pos, kNumber)) {
            size_t i = pos;
            while (s.has(i, kNumber) && i - pos < max_digits) ++i;
            pos = s.emit(i);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'. After a space at the very end this takes just the space,
        // which is also what the white-space rules would do.
        const size_t run = cp == ' ' ? pos + 1 : pos;
        if (s.is_other(run) || (cp == ' ' && run == s.end())) {
            size_t i = run;
            while (s.is_other(i)) ++i;
            while (i < s.end() && is_cr_or_lf(s.cp(i))) ++i;
            pos = s.emit(i);
            continue;
        }
        size_t spaces = 0;
        size_t after_last_newline = 0;
        while (s.has(pos + spaces, kSpace)) {
            if (is_cr_or_lf(s.cp(pos + spaces))) after_last_newline = pos + spaces + 1;
            ++spaces;
        }
        if (after_last_newline > 0) {
            pos = s.emit(after_last_newline);  // \s*[\r\n]+
        } else if (spaces > 1 && pos + spaces < s.end()) {
            pos = s.emit(pos + spaces - 1);  // \s+(?!\S)
        } else {
            pos = s.emit(pos + (spaces > 0 ? spaces : 1));
        }
    }
}

// A rule that isolates its matches (as llama.cpp's regex fallback does): text between matches
// stays one word. `match(i)` gives the length of the match starting at i, 0 if none.
template <typename Match>
void split_isolating(Segment& s, Match match) {
    size_t pos = s.begin();
    while (pos < s.end()) {
        const size_t n = match(pos);
        if (n == 0) {
            ++pos;
            continue;
        }
        s.emit(pos);
        pos = s.emit(pos + n);
    }
    s.emit(s.end());
}

enum class Stage { Gpt2, Llama3, Qwen2, EachNumber, NumberRuns, PunctRuns, AsciiDigitTriples };

void run_stage(Stage stage, const uint32_t* cps, const uint8_t* cls,
               const std::vector<uint32_t>& in, std::vector<uint32_t>& out) {
    out.clear();
    size_t begin = 0;
    for (const uint32_t length : in) {
        Segment s(cps, cls, begin, begin + length, out);
        auto run = [&s](uint8_t bit) {
            return [&s, bit](size_t pos) {
                size_t i = pos;
                while (s.has(i, bit)) ++i;
                return i - pos;
            };
        };
        switch (stage) {
            case Stage::Gpt2:
                split_gpt2(s);
                break;
            case Stage::Llama3:
                split_llama3(s, 3);
                break;
            case Stage::Qwen2:
                split_llama3(s, 1);
                break;
            case Stage::EachNumber:
                split_isolating(s, [&s](size_t pos) -> size_t { return s.has(pos, kNumber); });
                break;
            case Stage::NumberRuns:
                split_isolating(s, run(kNumber));
                break;
            case Stage::PunctRuns:
                split_isolating(s, run(kPunctOrMath));
                break;
            case Stage::AsciiDigitTriples:
                split_isolating(s, [&s](size_t pos) -> size_t {
                    const bool three = s.has(pos, kAsciiDigit) && s.has(pos + 1, kAsciiDigit) &&
                                       s.has(pos + 2, kAsciiDigit);
                    return three ? 3 : 0;
                });
                break;
        }
        begin += length;
    }
}

struct NamedPreTokenizer {
    const char* name;
    PreTokenizerInfo info;
};

// tokenizer.ggml.pre names whose regexes and defaults in llama.cpp (src/llama-vocab.cpp) match one
// of the kinds above. "gpt2" is accepted as a spelling of llama.cpp's "gpt-2".
constexpr std::array kNames = {
    NamedPreTokenizer{"default", {Kind::Default, false, false}},
    NamedPreTokenizer{"gpt-2", {Kind::Gpt2, false, false}},
    NamedPreTokenizer{"gpt2", {Kind::Gpt2, false, false}},
    NamedPreTokenizer{"phi-2", {Kind::Gpt2, false, false}},
    NamedPreTokenizer{"mpt", {Kind::Gpt2, false, false}},
    NamedPreTokenizer{"olmo", {Kind::Gpt2, false, false}},
    NamedPreTokenizer{"smollm", {Kind::Smollm, false, false}},
    NamedPreTokenizer{"starcoder", {Kind::Smollm, false, false}},
    NamedPreTokenizer{"refact", {Kind::Smollm, false, false}},
    NamedPreTokenizer{"codeshell", {Kind::Smollm, false, false}},
    NamedPreTokenizer{"llama3", {Kind::Llama3, true, true}},
    NamedPreTokenizer{"llama-v3", {Kind::Llama3, true, true}},
    NamedPreTokenizer{"llama-bpe", {Kind::Llama3, true, true}},
    NamedPreTokenizer{"falcon3", {Kind::Llama3, true, true}},
    NamedPreTokenizer{"qwen2", {Kind::Qwen2, false, false}},
    NamedPreTokenizer{"deepseek-r1-qwen", {Kind::Qwen2, false, false}},
    NamedPreTokenizer{"stablelm2", {Kind::Qwen2, false, false}},
};

}  // namespace

PreTokenizerInfo lookup(std::string_view name) {
    if (name.empty()) return kNames[0].info;
    for (const auto& entry : kNames)
        if (name == entry.name) return entry.info;
    std::string known;
    for (const auto& entry : kNames) known += (known.empty() ? "" : ", ") + std::string(entry.name);
    fail("tokenizer: unknown pre-tokenizer '{}' (tokenizer.ggml.pre); supported: {}", name, known);
}

void Splitter::split(std::span<const uint32_t> cps, std::vector<uint32_t>& lengths) {
    classes_.resize(cps.size());
    for (size_t i = 0; i < cps.size(); ++i) classes_[i] = classify(cps[i]);
    lengths.clear();
    if (cps.empty()) return;
    lengths.push_back(static_cast<uint32_t>(cps.size()));

    auto apply = [&](Stage stage) {
        run_stage(stage, cps.data(), classes_.data(), lengths, scratch_);
        lengths.swap(scratch_);
    };
    switch (kind_) {
        case Kind::Default:
            apply(Stage::PunctRuns);
            apply(Stage::Gpt2);
            apply(Stage::NumberRuns);
            apply(Stage::AsciiDigitTriples);
            break;
        case Kind::Gpt2:
            apply(Stage::Gpt2);
            break;
        case Kind::Smollm:
            apply(Stage::EachNumber);
            apply(Stage::Gpt2);
            break;
        case Kind::Llama3:
            apply(Stage::Llama3);
            break;
        case Kind::Qwen2:
            apply(Stage::Qwen2);
            break;
    }
}

}  // namespace sparkv::pretok
