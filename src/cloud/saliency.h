// Salient tokens of a context: per layer, the tokens its last queries attend to most. A
// calibrated codec level with salient tokens (codec profile version 3) keeps their K and V at a
// wider width. Measured on the reference model (src/codec/README.md): the 3 % of tokens that the
// context's last 64 queries attend to most, kept at 8 bits, halve the KL of `c5` at equal size
// on held-out text. The ranking needs only the context, so the server computes it at ingest.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "codec/profile.h"
#include "engine/engine.h"

namespace sparkv {

// Per layer, the attention mass of every position of the context: the engine must hold the KV of
// all of `tokens` (positions 0..n-1, after a prefill). Runs the last `queries` tokens through the
// stack again over the cached KV (a small fraction of a prefill) and sums, per layer, the dense
// attention weights they pay each position over query heads and tokens. [layer][position].
std::vector<std::vector<float>> attention_mass(Engine& engine, std::span<const int32_t> tokens,
                                               int64_t queries);

// The ceil(per_mille / 1000 * (n - skip)) positions in [skip, n) with the largest mass, in
// ascending order (ties: the earlier position). skip: the sink tokens, stored exact anyway.
std::vector<uint32_t> top_positions(std::span<const float> mass, uint32_t per_mille, uint32_t skip);

// Per layer, the salient positions of one calibrated level of `profile` (top_positions of each
// layer's mass, past the profile's sink tokens); empty lists when the level keeps none.
std::vector<std::vector<uint32_t>> salient_positions(const codec::CodecProfile& profile,
                                                     codec::Level level,
                                                     const std::vector<std::vector<float>>& mass);

// The positions in [first, first + n) of an ascending list, as indices within that chunk.
std::vector<uint32_t> rows_in_chunk(std::span<const uint32_t> positions, uint32_t first,
                                    uint32_t n);

}  // namespace sparkv
