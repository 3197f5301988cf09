#include "engine/tokenizer/bpe.h"

#include <algorithm>

#include "engine/tokenizer/unicode.h"

namespace sparkv::tok {

namespace {

// Heap orders: std::push_heap keeps the "largest" on top, so these say which candidate loses.
bool rank_loses(const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

bool score_loses(const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
}

bool is_stale(const std::vector<Symbol>& symbols, const Candidate& c) {
    const Symbol& l = symbols[c.left];
    const Symbol& r = symbols[c.right];
    // A symbol only grows by absorbing its right neighbour, so equal sizes mean unchanged.
    return l.size == 0 || r.size == 0 || l.size + r.size != c.size;
}

// Cuts text into characters by their lead bytes (no validation), linked left to right.
void split_characters(std::string_view text, std::vector<Symbol>& symbols) {
    symbols.clear();
    size_t at = 0;
    while (at < text.size()) {
        const size_t size =
            std::min(unicode::sequence_length(static_cast<uint8_t>(text[at])), text.size() - at);
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back(Symbol{-1, index - 1, at + size < text.size() ? index + 1 : -1,
                                 static_cast<uint32_t>(at), static_cast<uint32_t>(size)});
        at += size;
    }
}

// Merges symbols[c.right] into symbols[c.left].
void merge(std::vector<Symbol>& symbols, const Candidate& c) {
    Symbol& l = symbols[c.left];
    Symbol& r = symbols[c.right];
    l.size += r.size;
    l.next = r.next;
    r.size = 0;
    if (l.next >= 0) symbols[l.next].prev = c.left;
}

}  // namespace

void BytePairMerges::MergeTable::reserve(size_t n) {
    size_t capacity = 16;
    int bits = 4;
    while (capacity < 2 * n + 1) {  // load factor at most 1/2
        capacity *= 2;
        ++bits;
    }
    entries_.assign(capacity, Entry{kEmpty, 0, 0});
    mask_ = capacity - 1;
    shift_ = 64 - bits;
}

void BytePairMerges::MergeTable::insert(uint64_t key, int32_t rank, int32_t result) {
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
        Entry& e = entries_[i];
        if (e.key == key) return;
        if (e.key == kEmpty) {
            e = Entry{key, rank, result};
            return;
        }
    }
}

void append_byte_level(std::string_view bytes, std::string& out) {
    for (const char c : bytes)
        unicode::append_utf8(unicode::byte_to_code_point(static_cast<uint8_t>(c)), out);
}

BytePairMerges::BytePairMerges(const Vocab& vocab, const std::vector<std::string_view>& merges)
    : n_vocab_(vocab.size()) {
    std::unordered_map<std::string, int32_t> extra_ids;
    auto symbol_id = [&](const std::string& text) {
        if (const int32_t id = vocab.find(text); id >= 0) return id;
        const auto [it, added] =
            extra_ids.emplace(text, n_vocab_ + static_cast<int32_t>(extra_ids.size()));
        return it->second;
    };
    merges_.reserve(merges.size());
    std::string left;
    std::string right;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        // "left right"; the separator is the first space after the first byte (as in llama.cpp),
        // so a left part may itself start with a space.
        const std::string_view line = merges[rank];
        const size_t space = line.size() > 1 ? line.find(' ', 1) : std::string_view::npos;
        if (space == std::string_view::npos) continue;
        left.assign(line.substr(0, space));
        right.assign(line.substr(space + 1));
        if (right.empty()) continue;
        const int32_t l = symbol_id(left);
        const int32_t r = symbol_id(right);
        const int32_t result = symbol_id(left + right);
        // The first occurrence of a pair keeps its rank.
        merges_.insert(pair_key(l, r), static_cast<int32_t>(rank), result);
    }
    std::string one;
    for (int b = 0; b < 256; ++b) {
        one.clear();
        unicode::append_utf8(unicode::byte_to_code_point(static_cast<uint8_t>(b)), one);
        const int32_t id = vocab.find(one);
        const auto extra = extra_ids.find(one);
        byte_symbols_[b] = id >= 0 ? id : (extra != extra_ids.end() ? extra->second : -1);
    }
}

void BytePairMerges::push_candidate(MergeScratch& scratch, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const Symbol& l = scratch.symbols[left];
    const Symbol& r = scratch.symbols[right];
    if (l.id < 0 || r.id < 0) return;
    const auto* merge = merges_.find(pair_key(l.id, r.id));
    if (!merge) return;
    scratch.heap.push_back(
        Candidate{merge->rank, 0.0f, left, right, merge->result, l.size + r.size});
    std::push_heap(scratch.heap.begin(), scratch.heap.end(), rank_loses);
}

void BytePairMerges::encode_word(const Vocab& vocab, std::string_view word,
                                 std::vector<int32_t>& out, MergeScratch& scratch) const {
    if (word.empty()) return;
    if (vocab.pre.ignore_merges) {
        scratch.text.clear();
        append_byte_level(word, scratch.text);
        if (const int32_t id = vocab.find(scratch.text); id >= 0) {
            out.push_back(id);
            return;
        }
    }
    // Every byte is one character of the byte-level alphabet.
    auto& symbols = scratch.symbols;
    symbols.clear();
    const auto n = static_cast<int32_t>(word.size());
    for (int32_t i = 0; i < n; ++i) {
        symbols.push_back(Symbol{byte_symbols_[static_cast<uint8_t>(word[i])], i - 1,
                                 i + 1 < n ? i + 1 : -1, static_cast<uint32_t>(i), 1});
    }
    auto& heap = scratch.heap;
    heap.clear();
    for (int32_t i = 1; i < n; ++i) push_candidate(scratch, i - 1, i);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), rank_loses);
        const Candidate c = heap.back();
        heap.pop_back();
        if (is_stale(symbols, c)) continue;
        merge(symbols, c);
        symbols[c.left].id = c.result;
        push_candidate(scratch, symbols[c.left].prev, c.left);
        push_candidate(scratch, c.left, symbols[c.left].next);
    }
    for (int32_t i = 0; i >= 0; i = symbols[i].next)
        emit_symbol(vocab, word, symbols[i], out, scratch.text);
}

void BytePairMerges::emit_symbol(const Vocab& vocab, std::string_view word, const Symbol& symbol,
                                 std::vector<int32_t>& out, std::string& buffer) const {
    if (symbol.id >= 0 && symbol.id < n_vocab_) {
        out.push_back(symbol.id);
        return;
    }
    // Not a token (an incomplete vocabulary). llama.cpp then looks up every byte of the
    // symbol's byte-level spelling as a one-byte token and drops the bytes that are none; only
    // printable ASCII can match, so the rest of the text is lost, as it is there.
    buffer.clear();
    append_byte_level(word.substr(symbol.start, symbol.size), buffer);
    for (const char c : buffer) {
        if (const int32_t id = vocab.find(std::string_view(&c, 1)); id >= 0) out.push_back(id);
    }
}

void encode_sentencepiece(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out,
                          MergeScratch& scratch) {
    auto& symbols = scratch.symbols;
    auto& heap = scratch.heap;
    split_characters(text, symbols);
    if (symbols.empty()) return;
    heap.clear();
    auto push = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const uint32_t size = symbols[left].size + symbols[right].size;
        const int32_t id = vocab.find(text.substr(symbols[left].start, size));
        if (id < 0) return;
        heap.push_back(Candidate{0, vocab.scores[id], left, right, id, size});
        std::push_heap(heap.begin(), heap.end(), score_loses);
    };
    for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) push(i - 1, i);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), score_loses);
        const Candidate c = heap.back();
        heap.pop_back();
        if (is_stale(symbols, c)) continue;
        merge(symbols, c);
        push(symbols[c.left].prev, c.left);
        push(c.left, symbols[c.left].next);
    }
    char hex[7] = {'<', '0', 'x', 0, 0, '>', 0};
    constexpr char kDigits[] = "0123456789ABCDEF";
    for (int32_t i = 0; i >= 0; i = symbols[i].next) {
        const std::string_view piece = text.substr(symbols[i].start, symbols[i].size);
        if (const int32_t id = vocab.find(piece); id >= 0) {
            out.push_back(id);
            continue;
        }
        // Byte fallback: <0xXX>, else the byte itself as a token. llama.cpp throws when neither
        // exists; we use the unknown token, or drop the byte if there is none.
        for (const char ch : piece) {
            const auto b = static_cast<uint8_t>(ch);
            hex[3] = kDigits[b >> 4];
            hex[4] = kDigits[b & 15];
            int32_t id = vocab.find(std::string_view(hex, 6));
            if (id < 0) id = vocab.find(std::string_view(&ch, 1));
            if (id < 0) id = vocab.unk;
            if (id >= 0) out.push_back(id);
        }
    }
}

}  // namespace sparkv::tok
