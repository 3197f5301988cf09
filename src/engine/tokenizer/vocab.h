// The vocabulary part of a tokenizer, read from GGUF metadata: token texts, scores and attributes,
// special token ids, and the per-model defaults llama.cpp applies when metadata is silent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/pretokenize.h"

namespace sparkv {
class GgufFile;
}

namespace sparkv::tok {

// Token attributes (bit set); GGUF token types map onto them as in llama.cpp.
enum TokenAttr : uint8_t {
    kAttrUndefined = 0,
    kAttrUnknown = 1 << 0,
    kAttrUnused = 1 << 1,
    kAttrNormal = 1 << 2,
    kAttrControl = 1 << 3,
    kAttrUserDefined = 1 << 4,
    kAttrByte = 1 << 5,
};

enum class ModelType { BytePair, SentencePiece };

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TextToId = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocab {
    ModelType type = ModelType::BytePair;
    std::string model_name;  // tokenizer.ggml.model
    std::string pre_name;    // tokenizer.ggml.pre ("" if absent)
    pretok::PreTokenizerInfo pre{};

    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<uint8_t> attrs;
    TextToId text_to_id;

    int32_t bos = -1;
    int32_t eos = -1;
    int32_t unk = -1;
    bool add_bos = false;
    bool add_eos = false;
    bool add_space_prefix = false;

    // Control, user-defined and unknown tokens, longest text first: the strings matched in the
    // raw text before any model-specific splitting.
    std::vector<int32_t> special_tokens;
    // End-of-generation tokens (sorted).
    std::vector<int32_t> end_of_generation;

    int32_t size() const { return static_cast<int32_t>(texts.size()); }
    // Token id of an exact text, or -1.
    int32_t find(std::string_view text) const {
        const auto it = text_to_id.find(text);
        return it == text_to_id.end() ? -1 : it->second;
    }
};

// Throws Error if the metadata is missing, malformed, or names an unsupported tokenizer.
Vocab load_vocab(const GgufFile& file);

}  // namespace sparkv::tok
