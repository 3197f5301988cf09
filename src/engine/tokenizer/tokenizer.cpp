#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "engine/gguf.h"
#include "engine/tokenizer/bpe.h"
#include "engine/tokenizer/pretokenize.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace sparkv {

using tok::ModelType;

struct Tokenizer::Impl {
    tok::Vocab vocab;
    std::optional<tok::BytePairMerges> merges;  // byte-level BPE only
    std::vector<std::string> pieces;  // decoded bytes of every token, control tokens included
};

namespace {

// A run of raw text, or a special token found in it.
struct Fragment {
    int32_t token;  // -1 for text
    size_t offset;
    size_t length;
};

// Splits the text on special tokens, longest first, like llama.cpp's tokenizer_st_partition.
// Control and unknown tokens are only recognised with parse_special; user-defined tokens always.
void partition_special(const tok::Vocab& vocab, std::string_view text, bool parse_special,
                       std::vector<Fragment>& fragments, std::vector<Fragment>& scratch) {
    fragments.clear();
    if (text.empty()) return;
    fragments.push_back({-1, 0, text.size()});
    for (const int32_t id : vocab.special_tokens) {
        if (!parse_special && (vocab.attrs[id] & (tok::kAttrControl | tok::kAttrUnknown))) continue;
        const std::string_view special = vocab.texts[id];
        scratch.clear();
        bool found = false;
        for (const Fragment& f : fragments) {
            if (f.token >= 0) {
                scratch.push_back(f);
                continue;
            }
            const std::string_view piece = text.substr(f.offset, f.length);
            size_t at = 0;
            for (size_t hit; (hit = piece.find(special, at)) != std::string_view::npos;) {
                if (hit > at) scratch.push_back({-1, f.offset + at, hit - at});
                scratch.push_back({id, f.offset + hit, special.size()});
                at = hit + special.size();
                found = true;
            }
            if (at < piece.size()) scratch.push_back({-1, f.offset + at, piece.size() - at});
        }
        if (found) fragments.swap(scratch);
    }
}

// The bytes a token stands for (control tokens: their text).
std::string token_piece(const tok::Vocab& vocab, int32_t id) {
    const std::string& text = vocab.texts[id];
    const uint8_t attr = vocab.attrs[id];
    if (attr & (tok::kAttrControl | tok::kAttrUnknown | tok::kAttrUserDefined)) return text;
    if (attr & tok::kAttrByte) {
        // "<0xXX>"
        if (text.size() == 6 && text.starts_with("<0x") && text.back() == '>') {
            unsigned value = 0;
            for (const char c : text.substr(3, 2)) {
                value <<= 4;
                if (c >= '0' && c <= '9')
                    value |= c - '0';
                else if (c >= 'A' && c <= 'F')
                    value |= c - 'A' + 10;
                else if (c >= 'a' && c <= 'f')
                    value |= c - 'a' + 10;
                else
                    return text;
            }
            return std::string(1, static_cast<char>(value));
        }
        return text;
    }
    if (!(attr & tok::kAttrNormal)) return {};  // unused / undefined tokens render as nothing
    std::string out;
    if (vocab.type == ModelType::SentencePiece) {
        // U+2581 (lower one eighth block) stands for a space.
        for (size_t i = 0; i < text.size();) {
            if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
                out.push_back(' ');
                i += 3;
            } else {
                out.push_back(text[i++]);
            }
        }
        return out;
    }
    // Byte-level: every code point stands for one byte. A code point outside the 256 stand-ins
    // (which llama.cpp renders as "[UNK_BYTE_0x...]") is kept as its own UTF-8.
    std::vector<uint32_t> cps;
    unicode::decode_utf8(text, cps);
    for (const uint32_t cp : cps) {
        const int byte = unicode::code_point_to_byte(cp);
        if (byte >= 0)
            out.push_back(static_cast<char>(byte));
        else
            unicode::append_utf8(cp, out);
    }
    return out;
}

bool renders_only_on_request(uint8_t attr) {
    return (attr & (tok::kAttrControl | tok::kAttrUnknown)) != 0;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
    auto impl = std::make_unique<Impl>();
    impl->vocab = tok::load_vocab(file);
    if (impl->vocab.type == ModelType::BytePair) {
        if (!file.has("tokenizer.ggml.merges"))
            fail("{}: byte-level BPE tokenizer without tokenizer.ggml.merges", file.source());
        impl->merges.emplace(impl->vocab, file.get_string_array("tokenizer.ggml.merges"));
    }
    impl->pieces.reserve(impl->vocab.texts.size());
    for (int32_t id = 0; id < impl->vocab.size(); ++id)
        impl->pieces.push_back(token_piece(impl->vocab, id));
    return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
    const tok::Vocab& vocab = impl_->vocab;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    std::vector<Fragment> fragments;
    std::vector<Fragment> scratch;
    partition_special(vocab, text, parse_special, fragments, scratch);

    if (add_special && vocab.add_bos) out.push_back(vocab.bos);
    tok::MergeScratch merge_scratch;
    if (vocab.type == ModelType::BytePair) {
        pretok::Splitter splitter(vocab.pre.kind);
        std::vector<uint32_t> cps;
        std::vector<uint32_t> lengths;
        std::string word;
        for (const Fragment& f : fragments) {
            if (f.token >= 0) {
                out.push_back(f.token);
                continue;
            }
            cps.clear();
            unicode::decode_utf8(text.substr(f.offset, f.length), cps);
            splitter.split(cps, lengths);
            size_t at = 0;
            for (const uint32_t length : lengths) {
                // Words are re-encoded from code points, so malformed input reaches the merges
                // as U+FFFD, as in llama.cpp.
                word.clear();
                for (size_t k = at; k < at + length; ++k) unicode::append_utf8(cps[k], word);
                impl_->merges->encode_word(vocab, word, out, merge_scratch);
                at += length;
            }
        }
    } else {
        std::string escaped;
        bool after_special = true;  // the space prefix goes before the text and after specials
        for (const Fragment& f : fragments) {
            if (f.token >= 0) {
                out.push_back(f.token);
                after_special = true;
                continue;
            }
            escaped.clear();
            if (vocab.add_space_prefix && after_special) escaped += "\xE2\x96\x81";
            for (const char c : text.substr(f.offset, f.length)) {
                if (c == ' ')
                    escaped += "\xE2\x96\x81";
                else
                    escaped.push_back(c);
            }
            tok::encode_sentencepiece(vocab, escaped, out, merge_scratch);
            after_special = false;
        }
    }
    if (add_special && vocab.add_eos) out.push_back(vocab.eos);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t token, bool render_special) const {
    const tok::Vocab& vocab = impl_->vocab;
    if (token < 0 || token >= vocab.size())
        fail("tokenizer: token id {} is out of range (vocabulary has {} tokens)", token,
             vocab.size());
    if (!render_special && renders_only_on_request(vocab.attrs[token])) return {};
    return impl_->pieces[token];
}

std::string Tokenizer::decode(std::span<const int32_t> tokens, bool render_special) const {
    const tok::Vocab& vocab = impl_->vocab;
    std::string out;
    // SentencePiece adds a space before the text; take it off the first piece that has text
    // (leading control tokens such as BOS render as nothing), so that decode(encode(x)) == x.
    bool strip_space = vocab.type == ModelType::SentencePiece && vocab.add_space_prefix;
    for (const int32_t token : tokens) {
        if (token < 0 || token >= vocab.size())
            fail("tokenizer: token id {} is out of range (vocabulary has {} tokens)", token,
                 vocab.size());
        const uint8_t attr = vocab.attrs[token];
        if (renders_only_on_request(attr) && !render_special) continue;
        const std::string& piece = impl_->pieces[token];
        if (strip_space && !piece.empty()) {
            strip_space = false;
            if (!renders_only_on_request(attr) && piece.front() == ' ') {
                out.append(piece, 1);
                continue;
            }
        }
        out += piece;
    }
    return out;
}

int32_t Tokenizer::n_vocab() const {
    return impl_->vocab.size();
}
int32_t Tokenizer::bos() const {
    return impl_->vocab.bos;
}
int32_t Tokenizer::eos() const {
    return impl_->vocab.eos;
}

bool Tokenizer::is_end_of_generation(int32_t token) const {
    const auto& eog = impl_->vocab.end_of_generation;
    return std::binary_search(eog.begin(), eog.end(), token);
}

const std::string& Tokenizer::model_name() const {
    return impl_->vocab.model_name;
}
const std::string& Tokenizer::pre_name() const {
    return impl_->vocab.pre_name;
}

}  // namespace sparkv
