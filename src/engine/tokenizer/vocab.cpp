#include "engine/tokenizer/vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "common/error.h"
#include "engine/gguf.h"

namespace sparkv::tok {

namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTokenType = "tokenizer.ggml.token_type";

// GGUF token types (gguf-py TokenType).
uint8_t attr_from_token_type(int64_t type) {
    switch (type) {
        case 1:
            return kAttrNormal;
        case 2:
            return kAttrUnknown;
        case 3:
            return kAttrControl;
        case 4:
            return kAttrUserDefined;
        case 5:
            return kAttrUnused;
        case 6:
            return kAttrByte;
        default:
            return kAttrUndefined;
    }
}

bool is_integer_type(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8:
        case GgufValueType::INT8:
        case GgufValueType::UINT16:
        case GgufValueType::INT16:
        case GgufValueType::UINT32:
        case GgufValueType::INT32:
        case GgufValueType::UINT64:
        case GgufValueType::INT64:
            return true;
        default:
            return false;
    }
}

std::vector<float> read_scores(const GgufFile& file, size_t n_tokens) {
    std::vector<float> scores(n_tokens, 0.0f);
    const GgufValue* v = file.find(kKeyScores);
    if (!v) return scores;
    std::vector<float> values;
    if (v->type == GgufValueType::ARRAY && is_integer_type(v->elem_type)) {
        for (const int64_t s : file.get_int_array(kKeyScores))
            values.push_back(static_cast<float>(s));
    } else {
        values = file.get_float_array(kKeyScores);
    }
    if (values.size() < n_tokens)
        fail("{}: {} has {} entries for {} tokens", file.source(), kKeyScores, values.size(),
             n_tokens);
    std::copy_n(values.begin(), n_tokens, scores.begin());
    return scores;
}

std::vector<uint8_t> read_attrs(const GgufFile& file, size_t n_tokens) {
    std::vector<uint8_t> attrs(n_tokens, kAttrNormal);
    if (!file.has(kKeyTokenType)) return attrs;
    const auto types = file.get_int_array(kKeyTokenType);
    if (types.size() < n_tokens)
        fail("{}: {} has {} entries for {} tokens", file.source(), kKeyTokenType, types.size(),
             n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) attrs[i] = attr_from_token_type(types[i]);
    return attrs;
}

// A special-token id from metadata; an absent key keeps `id`, an out-of-range value is ignored
// (as llama.cpp does, which warns and keeps its default).
int32_t read_token_id(const GgufFile& file, std::string_view key, int32_t id, int32_t n_tokens) {
    if (id >= n_tokens) id = -1;
    if (!file.has(key)) return id;
    const uint64_t value = file.get_uint(key);
    return value < static_cast<uint64_t>(n_tokens) ? static_cast<int32_t>(value) : id;
}

// Texts llama.cpp treats as end of generation (it keys these on the text; see
// llama_vocab::impl::load). A token with one of them becomes a control token.
// clang-format off
constexpr std::array<std::string_view, 22> kEndOfGenerationTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
};
// clang-format on

// Fill-in-the-middle tokens recognised by text when their ids are not in the metadata. llama.cpp
// makes them control tokens; pad, repo and file-separator also end generation.
struct FimKind {
    std::string_view key;
    bool ends_generation;
    std::vector<std::string_view> texts;
};

const std::vector<FimKind>& fim_kinds() {
    // clang-format off
    static const std::vector<FimKind> kinds = {
        {"tokenizer.ggml.fim_pre_token_id", false,
         {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
          "<|code_prefix|>", "<|prefix|>"}},
        {"tokenizer.ggml.fim_suf_token_id", false,
         {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
          "<|code_suffix|>", "<|suffix|>"}},
        {"tokenizer.ggml.fim_mid_token_id", false,
         {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
          "<|code_middle|>", "<|middle|>"}},
        {"tokenizer.ggml.fim_pad_token_id", true,
         {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}},
        {"tokenizer.ggml.fim_rep_token_id", true,
         {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
        {"tokenizer.ggml.fim_sep_token_id", true, {"<|file_sep|>"}},
    };
    // clang-format on
    return kinds;
}

void find_end_of_generation(const GgufFile& file, Vocab& v) {
    const int32_t n = v.size();
    std::vector<int32_t> eog;
    for (const auto& fim : fim_kinds()) {
        int32_t id = read_token_id(file, fim.key, -1, n);
        if (id < 0) {
            // Several candidates: llama.cpp takes whichever its hash map yields first; we take
            // the lowest id so that the choice is stable.
            for (const auto text : fim.texts) {
                const int32_t found = v.find(text);
                if (found >= 0 && (id < 0 || found < id)) id = found;
            }
            if (id >= 0) v.attrs[id] |= kAttrControl;
        }
        if (id >= 0 && fim.ends_generation) eog.push_back(id);
    }
    for (const auto text : kEndOfGenerationTexts) {
        const int32_t id = v.find(text);
        if (id < 0) continue;
        v.attrs[id] |= kAttrControl;
        eog.push_back(id);
    }
    for (const int32_t id : {v.eos, read_token_id(file, "tokenizer.ggml.eot_token_id", -1, n),
                             read_token_id(file, "tokenizer.ggml.eom_token_id", -1, n)}) {
        if (id >= 0) eog.push_back(id);
    }
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    v.end_of_generation = std::move(eog);
}

void collect_special_tokens(Vocab& v) {
    for (int32_t id = 0; id < v.size(); ++id)
        if (v.attrs[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown))
            v.special_tokens.push_back(id);
    // Longest first, so that a token is never pre-empted by one of its own substrings.
    std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(),
                     [&](int32_t a, int32_t b) { return v.texts[a].size() > v.texts[b].size(); });
}

}  // namespace

Vocab load_vocab(const GgufFile& file) {
    Vocab v;
    if (!file.has(kKeyModel))
        fail("{}: no tokenizer in the file (metadata '{}' missing)", file.source(), kKeyModel);
    v.model_name = file.get_string(kKeyModel);
    v.pre_name = file.get_string(kKeyPre, "");

    // Per-model defaults from llama.cpp; metadata below overrides them.
    int32_t bos = -1;
    int32_t eos = -1;
    int32_t unk = -1;
    if (v.model_name == "gpt2") {
        v.type = ModelType::BytePair;
        v.pre = pretok::lookup(v.pre_name);
        v.add_bos = v.pre.add_bos;
        bos = 11;  // llama.cpp's GPT-2 defaults, kept for fidelity; real files set both
        eos = 11;
    } else if (v.model_name == "llama") {
        v.type = ModelType::SentencePiece;
        v.add_bos = true;
        v.add_space_prefix = true;
        bos = 1;
        eos = 2;
        unk = 0;
    } else {
        fail(
            "{}: unsupported tokenizer model '{}' ({}); SparKV supports 'gpt2' (byte-level BPE) "
            "and 'llama' (SentencePiece BPE)",
            file.source(), v.model_name, kKeyModel);
    }
    v.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);

    const auto& texts = file.get_string_array(kKeyTokens);
    if (texts.empty()) fail("{}: {} is empty", file.source(), kKeyTokens);
    if (texts.size() > static_cast<size_t>(INT32_MAX))
        fail("{}: {} has {} tokens, too many", file.source(), kKeyTokens, texts.size());
    const auto n = static_cast<int32_t>(texts.size());
    v.texts.reserve(texts.size());
    v.text_to_id.reserve(texts.size());
    for (int32_t i = 0; i < n; ++i) {
        // An empty token could never be matched; llama.cpp renames it the same way.
        std::string text = texts[i].empty() ? fmt::format("[EMPTY_{}]", i) : std::string(texts[i]);
        v.text_to_id[text] = i;
        v.texts.push_back(std::move(text));
    }
    v.scores = read_scores(file, texts.size());
    v.attrs = read_attrs(file, texts.size());

    v.bos = read_token_id(file, "tokenizer.ggml.bos_token_id", bos, n);
    v.eos = read_token_id(file, "tokenizer.ggml.eos_token_id", eos, n);
    v.unk = read_token_id(file, "tokenizer.ggml.unknown_token_id", unk, n);
    v.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", v.add_bos);
    v.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", v.add_eos);
    if (v.add_bos && v.bos < 0)
        fail("{}: the tokenizer asks for a BOS token but has none", file.source());
    if (v.add_eos && v.eos < 0)
        fail("{}: the tokenizer asks for an EOS token but has none", file.source());

    find_end_of_generation(file, v);
    collect_special_tokens(v);
    return v;
}

}  // namespace sparkv::tok
