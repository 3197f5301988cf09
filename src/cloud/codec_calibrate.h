// Calibration of the codec's calibrated levels (c4, c5, c6, c8) for one model: measures how much
// each layer's K and V can take, then picks every layer's K and V bit widths by dynamic
// programming under each level's byte budget. The result is a codec::CodecProfile.
//
// Measurement, per calibration document (text disjoint from any evaluation text):
//   1. prefill the context and keep its exact fp16 KV, score the real continuation;
//   2. for every layer l, tensor X in {K, V} and probe width p (2 and 3 bits by default): quantise
//      only X of layer l at p bits (all chunks, sink tokens exact as in the format), score again:
//      KL_probe(l, X, p) = mean next-token KL(exact || probed) over the continuation;
//   3. encode every unit with X at each width b in 2..8 (the other tensor at 8): the bytes the
//      codec really spends, and the squared error sum SSE(l, X, b).
// With per_head, steps 2 and 3 are done for each KV head h of X alone, (l, h, X), and each head
// gets its own widths.
// Model: KL(l, X, b) ~= KL_probe(l, X, p) * SSE(l, X, b) / SSE(l, X, p) with p the widest probe
// <= b (the damage scales with the quantisation noise power; at 2 bits it does not, keys fall off
// a cliff there, hence a probe of its own), and KL adds up over layers and tensors (small,
// independent perturbations). allocate_bits() then minimises the summed KL under the byte budget.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "codec/profile.h"
#include "engine/model.h"

namespace sparkv {

struct CalibrateOptions {
    int64_t context_tokens = 2048;
    int64_t continuation_tokens = 128;
    int32_t chunk_tokens = 1024;
    std::vector<int> probe_bits = {2, 3};
    uint32_t sink_tokens = 4;
    // Probe and allocate every KV head on its own (profile version 2 head_bits) instead of each
    // layer's heads together. Off by default: on the reference model it did not beat per-layer
    // widths on held-out text at equal size (src/codec/README.md).
    bool per_head = false;
    // Salient tokens (codec profile version 3): this many per mille of the context's tokens per
    // layer, those its last saliency_queries queries attend to most, kept at 8 bits in every
    // level. Their bytes come out of the level's budget: the other tokens' widths are allocated
    // under what is left. 0: none (the widths of profile version 2).
    uint32_t salient_per_mille = 0;
    uint32_t saliency_queries = 64;
    int threads = 0;
    std::vector<codec::Level> levels = {codec::Level::c4, codec::Level::c5, codec::Level::c6,
                                        codec::Level::c8};
    std::function<void(const std::string& stage)> on_stage;
};

// Calibrates on `measure_model` (e.g. an F32 copy, whose fp32 activations show the codec's own
// effect rather than rounding flips) and writes the profile for `fingerprint` (the deployed model).
codec::CodecProfile calibrate_codec(const Model& measure_model, uint64_t fingerprint,
                                    const std::vector<std::vector<int32_t>>& docs,
                                    const CalibrateOptions& options);

// Multiple-choice knapsack: item i takes exactly one choice j, costing cost[i][j] bytes and adding
// distortion[i][j]; returns the choice per item minimising the summed distortion with summed cost
// <= budget (costs are rounded up to budget / resolution, so the result never exceeds the budget).
// Throws Error if even the cheapest choices do not fit.
struct AllocItem {
    std::vector<double> cost;
    std::vector<double> distortion;
};
std::vector<int> allocate_bits(const std::vector<AllocItem>& items, double budget,
                               int resolution = 8192);

}  // namespace sparkv
