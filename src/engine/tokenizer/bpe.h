// Merge loops of the two BPE flavours. Both work on one piece of text at a time, keep the
// candidate pairs in a binary heap, and skip stale candidates lazily, so a long word costs
// O(n log n), never O(n^2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/vocab.h"

namespace sparkv::tok {

// A symbol in a word being merged: a byte range of the word and its doubly linked neighbours.
struct Symbol {
    int32_t id;  // symbol id (byte-level BPE) or unused (SentencePiece)
    int32_t prev;
    int32_t next;
    uint32_t start;
    uint32_t size;  // 0 once merged into its left neighbour
};

// A candidate merge of symbols[left] and symbols[right].
struct Candidate {
    int32_t rank;  // merge rank (byte-level BPE): lower merges first
    float score;   // token score (SentencePiece): higher merges first
    int32_t left;
    int32_t right;
    int32_t result;  // merged symbol id (byte-level BPE)
    uint32_t size;   // bytes of the merged symbol, to recognise stale candidates
};

// Buffers reused across the words of one encode call.
struct MergeScratch {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    std::string text;
};

// Byte-level BPE (tokenizer.ggml.model "gpt2"): merge ranks from tokenizer.ggml.merges.
class BytePairMerges {
public:
    // `merges` are "left right" strings in the byte-level alphabet, best first.
    BytePairMerges(const Vocab& vocab, const std::vector<std::string_view>& merges);

    // Appends the tokens of one pre-tokenized word given as raw bytes.
    void encode_word(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out,
                     MergeScratch& scratch) const;

private:
    struct Merge {
        int32_t rank;
        int32_t result;
    };
    static uint64_t pair_key(int32_t left, int32_t right) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
               static_cast<uint32_t>(right);
    }
    void push_candidate(MergeScratch& scratch, int32_t left, int32_t right) const;
    void emit_symbol(const Vocab& vocab, std::string_view word, const Symbol& symbol,
                     std::vector<int32_t>& out, std::string& buffer) const;

    // Symbol ids are token ids for strings in the vocabulary and ids from n_vocab_ up for merge
    // parts that are not tokens; -1 for a byte that takes part in no merge and is no token.
    int32_t n_vocab_ = 0;
    int32_t byte_symbols_[256] = {};
    std::unordered_map<uint64_t, Merge> merges_;
};

// Appends the byte-level (GPT-2) spelling of raw bytes to `out`.
void append_byte_level(std::string_view bytes, std::string& out);

// SentencePiece BPE (tokenizer.ggml.model "llama"): merges any adjacent pair whose concatenation
// is a token, highest score first; leftovers fall back to <0xXX> byte tokens.
// `text` has its spaces already replaced by U+2581.
void encode_sentencepiece(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out,
                          MergeScratch& scratch);

}  // namespace sparkv::tok
