#include "engine/sampling.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sparkv {

int32_t argmax(std::span<const float> logits) {
    if (logits.empty()) fail("argmax of empty logits");
    // Lowest index wins ties, as llama.cpp's greedy sampler does.
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(SamplingParams params) : params_(params), rng_(params.seed) {
    if (!(params.temperature >= 0)) fail("temperature must be >= 0, got {}", params.temperature);
    if (!(params.top_p > 0 && params.top_p <= 1))
        fail("top-p must be in (0, 1], got {}", params.top_p);
    if (params.top_k < 0) fail("top-k must be >= 0, got {}", params.top_k);
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (params_.temperature == 0.0f) return argmax(logits);
    candidates_.clear();
    for (size_t i = 0; i < logits.size(); ++i)
        candidates_.emplace_back(logits[i] / params_.temperature, static_cast<int32_t>(i));
    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
    size_t keep = candidates_.size();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
        keep = static_cast<size_t>(params_.top_k);
        std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<long>(keep),
                          candidates_.end(), by_logit);
    } else {
        std::sort(candidates_.begin(), candidates_.end(), by_logit);
    }
    const float max_logit = candidates_.front().first;
    double total = 0;
    for (size_t i = 0; i < keep; ++i) {
        candidates_[i].first = std::exp(candidates_[i].first - max_logit);
        total += candidates_[i].first;
    }
    if (params_.top_p < 1.0f) {
        double cumulative = 0;
        size_t cut = keep;
        for (size_t i = 0; i < keep; ++i) {
            cumulative += candidates_[i].first / total;
            if (cumulative >= params_.top_p) {
                cut = i + 1;
                break;
            }
        }
        keep = cut;
        total = 0;
        for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
    }
    std::uniform_real_distribution<double> uniform(0.0, total);
    double r = uniform(rng_);
    for (size_t i = 0; i < keep; ++i) {
        r -= candidates_[i].first;
        if (r <= 0) return candidates_[i].second;
    }
    return candidates_[keep - 1].second;
}

double log_probability(std::span<const float> logits, int32_t token) {
    const float max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float x : logits) sum += std::exp(static_cast<double>(x - max_logit));
    return static_cast<double>(logits[static_cast<size_t>(token)] - max_logit) - std::log(sum);
}

}  // namespace sparkv
