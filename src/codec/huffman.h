// Canonical, length-limited Huffman coding of byte symbols (alphabets up to 256), built for fast
// table-driven decoding.
//
// A coded block is split into kStreams streams, each covering a contiguous quarter of the
// symbols, so the decoder can run the streams' dependency chains side by side. Bits are written
// LSB-first and codes bit-reversed, so the next code always sits in the low bits of a 64-bit
// load. Codes are at most kMaxCodeLength bits: one lookup in a 2^kMaxCodeLength table decodes a
// code, and the decode table also pairs codes so one lookup usually yields two symbols.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sparkv::codec::huffman {

constexpr int kMaxCodeLength = 11;
constexpr int kTableSize = 1 << kMaxCodeLength;
constexpr int kStreams = 4;
constexpr int kMaxSymbols = 256;

// A prefix code over an alphabet of up to 256 byte symbols. Valid codes are complete (Kraft sum
// exactly 1, lengths 1..kMaxCodeLength) or have exactly one symbol, which then costs zero bits.
using CodeLengths = std::array<uint8_t, kMaxSymbols>;
struct Code {
    CodeLengths lengths{};  // per symbol, 0 = absent
    int single = -1;        // >= 0: the only symbol (all lengths 0)
};

// Optimal Huffman code for the counts, limited to kMaxCodeLength (counts are halved and the code
// rebuilt until it fits, which costs a tiny fraction of a bit in the rare skewed case). All-zero
// counts give the single-symbol code for symbol 0.
Code build_code(const uint32_t* counts, int n_symbols);

// True if `code` is valid for an alphabet of n_symbols.
bool code_valid(const Code& code, int n_symbols);

// Serialised as one mode byte, then the single symbol or the 4-bit lengths of all n_symbols.
void write_code(const Code& code, int n_symbols, std::vector<uint8_t>& out);
// Reads what write_code wrote from data[pos, size) and advances pos. False if truncated or
// invalid.
bool read_code(const uint8_t* data, size_t size, size_t& pos, int n_symbols, Code& code);

// Expected size in bits of coding `counts` with `code` (for tests and level planning).
uint64_t coded_bits(const Code& code, const uint32_t* counts, int n_symbols);

struct EncodeTable {
    std::array<uint16_t, kMaxSymbols> code{};  // bit-reversed canonical code
    std::array<uint8_t, kMaxSymbols> length{};
};
EncodeTable build_encode_table(const Code& code);

// Appends the kStreams stream byte sizes (uint32 LE each) then the streams to `out`.
void encode_streams(const uint8_t* symbols, size_t n, const EncodeTable& table,
                    std::vector<uint8_t>& out);

struct DecodeTable {
    // Pair entry: sym0 | sym1 << 8 | total bits << 16 | symbol count (1 or 2) << 24.
    std::array<uint32_t, kTableSize> pair;
    // One-code entry: sym | bits << 8 (used near the end of a stream).
    std::array<uint16_t, kTableSize> one;
    int single = -1;  // >= 0 when the code has one zero-bit symbol
};
// `code` must be valid.
void build_decode_table(const Code& code, DecodeTable& table);

// Decodes n symbols from the kStreams streams stored at data[pos, size) (sizes first, as
// encode_streams wrote them) into out; advances pos past the streams. Returns false on
// truncated or corrupt input; never reads outside data[0, size) nor writes outside out[0, n).
bool decode_streams(const uint8_t* data, size_t size, size_t& pos, const DecodeTable& table,
                    uint8_t* out, size_t n);

// Counts of each byte value in symbols[0, n).
void histogram(const uint8_t* symbols, size_t n, uint32_t* counts /* [256] */);

}  // namespace sparkv::codec::huffman
