// Choosing the next token from logits: greedy, or temperature with top-k / top-p (nucleus).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace sparkv {

struct SamplingParams {
    float temperature = 0.0f;  // 0 = greedy
    float top_p = 1.0f;        // keep the smallest set of tokens whose probability reaches top_p
    int top_k = 0;             // 0 = no limit
    uint64_t seed = 0;
};

int32_t argmax(std::span<const float> logits);

class Sampler {
  public:
    explicit Sampler(SamplingParams params);
    int32_t sample(std::span<const float> logits);

  private:
    SamplingParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> candidates_;  // reused between calls
};

// log-softmax of the logits, evaluated at `token` (for perplexity and KL measurements).
double log_probability(std::span<const float> logits, int32_t token);

}  // namespace sparkv
