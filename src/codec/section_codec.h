// Encoding and decoding of one section of a unit's payload: the K or the V tensor.
//
// Both kinds store blocks of halves the same way ("halves"): a mode byte, then either the raw
// halves (mode 0) or, when that is smaller, the Huffman-coded high bytes (sign, exponent, top
// mantissa bits: few distinct values) followed by the raw low bytes (mode 1: code of 256 symbols,
// streams, low bytes). The encoder picks whichever is smaller.
//
// Quantised section (all lossy levels):
//   params   halves: n_groups mins, then n_groups steps (fp16)
//            groups: per channel = [head][dim], per token and head = [head][token]
//   code     Huffman code of the 2^bits symbols (huffman::write_code)
//   streams  the symbols in [head][token][dim] order, as huffman::encode_streams wrote them
// fp16 section (lossless):
//   data     halves: the tensor in [head][token][dim] order
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/huffman.h"
#include "codec/quantize.h"
#include "codec/unit_format.h"

namespace sparkv::codec {

// Reusable buffers; vectors only ever grow, so steady-state decoding does not allocate.
struct SectionScratch {
    std::vector<uint8_t> symbols;
    std::vector<uint16_t> params;
    std::vector<float> mins, maxs, steps, inv_steps;
    huffman::DecodeTable table;
    // Salient rows (format version 3): the row list and the rows' K and V before they are
    // scattered to their places, [head][row][dim].
    std::vector<uint32_t> rows;
    std::vector<uint16_t> salient_k, salient_v;
};

// head_bits: one width per KV head; the alphabet is the widest head's (2^max symbols). A narrower
// head's levels sit in the middle of that alphabet (its min is moved down by whole steps), so the
// heads' symbol distributions overlap and one Huffman code serves them all. The decoder needs no
// per-head information: each group's min and step say everything.
void encode_quantized_section(ConstKvView x, const UnitShape& shape, Grouping grouping,
                              std::span<const uint8_t> head_bits, const QuantKernels& kernels,
                              SectionScratch& scratch, std::vector<uint8_t>& out);
void encode_fp16_section(ConstKvView x, const UnitShape& shape, SectionScratch& scratch,
                         std::vector<uint8_t>& out);

// Decode the section at payload[pos, size) into out and advance pos. Throw Error naming `where`
// (e.g. "unit (3, 17): K section: corrupt entropy-coded data") on malformed input.
void decode_quantized_section(const uint8_t* payload, size_t size, size_t& pos,
                              const UnitShape& shape, Grouping grouping, int bits,
                              const QuantKernels& kernels, SectionScratch& scratch, KvView out,
                              Where where);
void decode_fp16_section(const uint8_t* payload, size_t size, size_t& pos, const UnitShape& shape,
                         SectionScratch& scratch, KvView out, Where where);

}  // namespace sparkv::codec
