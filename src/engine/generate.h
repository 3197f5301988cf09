// Plain text generation on top of the layer-granular engine: chunked prefill, then decode.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/sampling.h"

namespace sparkv {

struct GenerateOptions {
    int n_predict = 32;
    SamplingParams sampling;
    int64_t prefill_chunk = 1024;  // tokens per prefill step (bounds activation memory)
    bool stop_at_end_of_generation = true;
    std::function<void(int32_t token)> on_token;  // called as each token is sampled
};

struct GenerateResult {
    std::vector<int32_t> tokens;      // generated ids
    std::vector<float> first_logits;  // logits that chose the first generated token
    double prefill_seconds = 0;
    double decode_seconds = 0;
    int64_t prompt_tokens = 0;
    int64_t decode_steps = 0;
};

// Generates after `prompt`, starting with an empty cache at position 0.
GenerateResult generate(Engine& engine, std::span<const int32_t> prompt,
                        const GenerateOptions& options);

// Continues from logits that were produced for position `next_pos - 1` (e.g. after a SparKV
// context load and query prefill).
GenerateResult generate_from(Engine& engine, std::vector<float> logits, int64_t next_pos,
                             const GenerateOptions& options);

}  // namespace sparkv
