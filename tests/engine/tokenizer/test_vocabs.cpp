#include "test_vocabs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <string_view>
#include <unordered_map>

#include "engine/tokenizer/bpe.h"
#include "engine/tokenizer/unicode.h"

namespace sparkv::testing {

namespace {

// Training text: varied on purpose (prose, contractions, numbers, code, several scripts) so that
// the learned merges exercise every pre-tokenizer rule. Changing it changes the vocabularies:
// regenerate the fixtures with bench/tokenizer_fixtures.mjs afterwards.
constexpr std::string_view kCorpus = R"(The tokenizer reads its vocabulary from the model file.
It's not hard: we'll split the text into words, then merge the most frequent pairs. They're
fast, and you've seen it before; I'm sure he'd agree that it isn't magic. THE END? Don't stop!
In 1862 there were 31,443,321 people; by 2024 the number had grown past 334,914,895.
Prices: $3.50, 12.5%, 1/3 of 99 and 1000000 grains of sand. Call 555-0100 at 9:30.
def tokenize(text):
    for word in text.split():
        yield word.lower()  # comment
int main() { return x == y ? 0 : -1; }   // braces {} [] () <tag> a->b && c || d
Le garçon a mangé une crème brûlée à Noël. Über den Flüssen liegt Nebel; straße, Äpfel.
Ελληνικά γράμματα και λέξεις. Русский текст для проверки, спасибо. Привет, мир!
日本語の文章と中文的句子。 한국어 문장도 있습니다. 😀 🚀 ✨ café naïve résumé
the the the of of and and to to in in that that is is was was for for on on with with
  indented line with  double spaces	and a tab
line one
line two

paragraph after a blank line, then CRLF lines
)";

constexpr int kBpeMerges = 500;
constexpr int kSpmPieces = 400;

// Splits the corpus into training words: a run of letters (any non-ASCII byte counts as a
// letter), digits, other symbols or spaces, a single leading space staying with its word.
std::vector<std::string> training_words() {
    auto kind = [](unsigned char c) {
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') return 0;
        if (std::isalpha(c) || c >= 0x80) return 1;
        if (std::isdigit(c)) return 2;
        return 3;
    };
    std::vector<std::string> words;
    std::string current;
    int current_kind = -1;
    for (const char ch : kCorpus) {
        const int k = kind(static_cast<unsigned char>(ch));
        const bool joins_space = current == " " && k != 0;
        if (!current.empty() && k != current_kind && !joins_space) {
            words.push_back(current);
            current.clear();
        }
        current.push_back(ch);
        current_kind = k;
    }
    if (!current.empty()) words.push_back(current);
    return words;
}

std::string byte_level(std::string_view bytes) {
    std::string out;
    tok::append_byte_level(bytes, out);
    return out;
}

struct BpeTraining {
    std::vector<std::string> tokens;  // byte alphabet, then merge results
    std::vector<std::string> merges;
};

// Classic BPE training over symbol ids; ties go to the lexicographically smallest pair.
BpeTraining train_bpe() {
    BpeTraining out;
    std::unordered_map<std::string, int32_t> ids;
    auto id_of = [&](const std::string& s) {
        auto [it, added] = ids.emplace(s, static_cast<int32_t>(out.tokens.size()));
        if (added) out.tokens.push_back(s);
        return it->second;
    };
    for (int b = 0; b < 256; ++b) id_of(byte_level(std::string(1, static_cast<char>(b))));

    std::map<std::string, int> counts;
    for (const auto& w : training_words()) ++counts[w];
    std::vector<std::pair<std::vector<int32_t>, int>> words;
    for (const auto& [w, n] : counts) {
        std::vector<int32_t> symbols;
        for (const char c : w) symbols.push_back(id_of(byte_level(std::string(1, c))));
        words.emplace_back(std::move(symbols), n);
    }
    for (int m = 0; m < kBpeMerges; ++m) {
        std::unordered_map<uint64_t, int> pairs;
        for (const auto& [symbols, n] : words)
            for (size_t i = 1; i < symbols.size(); ++i)
                pairs[(uint64_t(uint32_t(symbols[i - 1])) << 32) | uint32_t(symbols[i])] += n;
        uint64_t best = 0;
        int best_count = 0;
        auto text = [&](uint64_t key) {
            return std::make_pair(out.tokens[key >> 32], out.tokens[key & 0xFFFFFFFF]);
        };
        for (const auto& [key, n] : pairs) {
            if (n > best_count || (n == best_count && text(key) < text(best))) {
                best = key;
                best_count = n;
            }
        }
        if (best_count == 0) break;  // every word is a single symbol
        const auto [left, right] = text(best);
        out.merges.push_back(left + " " + right);
        const int32_t merged = id_of(left + right);
        const auto l = static_cast<int32_t>(best >> 32);
        const auto r = static_cast<int32_t>(best & 0xFFFFFFFF);
        for (auto& [symbols, n] : words) {
            std::vector<int32_t> next;
            for (size_t i = 0; i < symbols.size(); ++i) {
                if (i + 1 < symbols.size() && symbols[i] == l && symbols[i + 1] == r) {
                    next.push_back(merged);
                    ++i;
                } else {
                    next.push_back(symbols[i]);
                }
            }
            symbols.swap(next);
        }
    }
    return out;
}

void set_tokens(GgufWriter& w, const std::vector<std::string>& tokens,
                const std::vector<int32_t>& types) {
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
}

// Metadata common to both vocabularies; llama.cpp needs no hyperparameters or tensors to load a
// vocabulary alone.
GgufWriter base_writer(const char* name) {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_string("general.name", name);
    return w;
}

int32_t index_of(const std::vector<std::string>& tokens, std::string_view text) {
    return static_cast<int32_t>(std::find(tokens.begin(), tokens.end(), text) - tokens.begin());
}

}  // namespace

GgufWriter make_bpe_vocab(const std::string& pre) {
    const BpeTraining training = train_bpe();
    std::vector<std::string> tokens = training.tokens;
    std::vector<std::string> merges = training.merges;
    // A merge whose result is not a token (llama.cpp then falls back to one-byte tokens), and a
    // whole word that only a pre-tokenizer with ignore_merges (Llama 3) can produce.
    merges.push_back("x y");
    tokens.push_back(byte_level(" supercalifragilistic"));
    std::vector<int32_t> types(tokens.size(), 1);
    for (const char* control : {"<|endoftext|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>",
                                "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}) {
        tokens.push_back(control);
        types.push_back(3);
    }
    tokens.push_back("<tool>");  // user-defined: split out even without parse_special
    types.push_back(4);

    GgufWriter w = base_writer("sparkv-test-bpe");
    w.set_string("tokenizer.ggml.model", "gpt2");
    if (!pre.empty()) w.set_string("tokenizer.ggml.pre", pre);
    set_tokens(w, tokens, types);
    w.set_string_array("tokenizer.ggml.merges", merges);
    w.set_u32("tokenizer.ggml.bos_token_id", index_of(tokens, "<|begin_of_text|>"));
    w.set_u32("tokenizer.ggml.eos_token_id", index_of(tokens, "<|endoftext|>"));
    return w;
}

GgufWriter make_spm_vocab() {
    // Count "▁word" pieces (spaces become U+2581), then every substring of 2..10 characters.
    const std::string space = "\xE2\x96\x81";
    std::map<std::string, int> word_counts;
    for (const auto& w : training_words()) {
        std::string piece;
        for (const char c : w) piece += (c == ' ') ? space : std::string(1, c);
        if (piece.find('\n') == std::string::npos) ++word_counts[piece];
    }
    std::map<std::string, long> substrings;
    std::map<std::string, int> characters;
    for (const auto& [word, n] : word_counts) {
        std::vector<size_t> starts;
        for (size_t i = 0; i < word.size(); i += unicode::sequence_length(uint8_t(word[i])))
            starts.push_back(i);
        starts.push_back(word.size());
        for (size_t a = 0; a + 1 < starts.size(); ++a) {
            characters[word.substr(starts[a], starts[a + 1] - starts[a])] += n;
            for (size_t b = a + 2; b < starts.size() && b - a <= 10; ++b)
                substrings[word.substr(starts[a], starts[b] - starts[a])] += n * long(b - a - 1);
        }
    }
    std::vector<std::pair<long, std::string>> ranked;
    for (const auto& [s, weight] : substrings) ranked.emplace_back(-weight, s);
    std::sort(ranked.begin(), ranked.end());
    if (ranked.size() > size_t(kSpmPieces)) ranked.resize(kSpmPieces);

    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<int32_t> types = {2, 3, 3};
    std::vector<float> scores = {0, 0, 0};
    for (int b = 0; b < 256; ++b) {
        tokens.push_back(fmt::format("<0x{:02X}>", b));
        types.push_back(6);
        scores.push_back(0);
    }
    for (size_t i = 0; i < ranked.size(); ++i) {
        tokens.push_back(ranked[i].second);
        types.push_back(1);
        scores.push_back(-static_cast<float>(i));
    }
    int k = 0;
    for (const auto& [c, n] : characters) {
        if (std::find(tokens.begin(), tokens.end(), c) != tokens.end()) continue;
        tokens.push_back(c);
        types.push_back(1);
        scores.push_back(-1000.0f - static_cast<float>(k++));
    }
    tokens.push_back("<tool>");
    types.push_back(4);
    scores.push_back(0);

    GgufWriter w = base_writer("sparkv-test-spm");
    w.set_string("tokenizer.ggml.model", "llama");
    set_tokens(w, tokens, types);
    w.set_f32_array("tokenizer.ggml.scores", scores);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    return w;
}

std::vector<TestVocab> all_test_vocabs() {
    std::vector<TestVocab> out;
    for (const char* pre : {"llama-bpe", "qwen2", "gpt-2", "smollm", "default"})
        out.push_back({std::string("bpe-") + pre, make_bpe_vocab(pre)});
    out.push_back({"bpe-nopre", make_bpe_vocab("")});
    out.push_back({"spm", make_spm_vocab()});
    return out;
}

}  // namespace sparkv::testing
