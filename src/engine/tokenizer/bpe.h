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
    // Open-addressing hash table from a symbol pair to its merge: one probe sequence in one
    // flat array, which matters because the lookup is the hot spot of encoding.
    class MergeTable {
      public:
        struct Entry {
            uint64_t key;  // kEmpty if unused
            int32_t rank;
            int32_t result;
        };
        static constexpr uint64_t kEmpty = ~uint64_t{0};

        void reserve(size_t n);
        // Keeps the first entry of a key (the best rank).
        void insert(uint64_t key, int32_t rank, int32_t result);
        const Entry* find(uint64_t key) const {
            for (size_t i = slot(key);; i = (i + 1) & mask_) {
                const Entry& e = entries_[i];
                if (e.key == key) return &e;
                if (e.key == kEmpty) return nullptr;
            }
        }

      private:
        size_t slot(uint64_t key) const {
            return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
        }
        std::vector<Entry> entries_;
        size_t mask_ = 0;
        int shift_ = 64;
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
    MergeTable merges_;
};

// Appends the byte-level (GPT-2) spelling of raw bytes to `out`.
void append_byte_level(std::string_view bytes, std::string& out);

// SentencePiece BPE (tokenizer.ggml.model "llama"): merges any adjacent pair whose concatenation
// is a token, highest score first; leftovers fall back to <0xXX> byte tokens.
// `text` has its spaces already replaced by U+2581.
void encode_sentencepiece(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out,
                          MergeScratch& scratch);

}  // namespace sparkv::tok
