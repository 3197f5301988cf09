// The attention-mass kernel (what saliency ranks) against a plain double-precision softmax, on a
// two-thread pool: its own binary so the ThreadSanitizer run covers the per-head split.
#include "engine/attention_mass.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "common/fp16.h"

namespace sparkv {
namespace {

TEST(AttentionMass, MatchesAPlainSoftmaxInDoublePrecision) {
    const AttentionMassShape s{4, 2, 8, 16};  // 4 query heads sharing 2 KV heads
    const int64_t pos0 = 5, n_q = 3;
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0.0f, 1.5f);
    std::vector<uint16_t> keys(static_cast<size_t>(s.n_kv_head * s.kv_capacity * s.head_dim));
    for (auto& k : keys) k = fp32_to_fp16(g(rng));
    const int64_t ldq = s.n_head * s.head_dim + 3;  // a padded row stride
    std::vector<float> q(static_cast<size_t>(n_q * ldq));
    for (auto& x : q) x = g(rng);
    std::vector<float> mass(pos0 + n_q + 2, 0.5f);  // adds to what is there; longer is fine
    ThreadPool pool(2);
    add_attention_mass(s, q.data(), ldq, n_q, pos0, keys.data(), mass, pool);

    std::vector<double> want(mass.size(), 0.5);
    for (int h = 0; h < s.n_head; ++h)
        for (int64_t i = 0; i < n_q; ++i) {
            const int kv = h / 2;
            std::vector<double> w;
            for (int64_t p = 0; p <= pos0 + i; ++p) {
                double dot = 0;
                for (int d = 0; d < s.head_dim; ++d)
                    dot += q[i * ldq + h * s.head_dim + d] *
                           fp16_to_fp32(keys[(kv * s.kv_capacity + p) * s.head_dim + d]);
                w.push_back(dot / std::sqrt(8.0));
            }
            const double top = *std::max_element(w.begin(), w.end());
            double sum = 0;
            for (double& x : w) sum += (x = std::exp(x - top));
            for (size_t p = 0; p < w.size(); ++p) want[p] += w[p] / sum;
        }
    for (size_t p = 0; p < mass.size(); ++p) EXPECT_NEAR(mass[p], want[p], 1e-5) << p;

    std::vector<float> short_mass(pos0 + n_q - 1);
    EXPECT_THROW(add_attention_mass(s, q.data(), ldq, n_q, pos0, keys.data(), short_mass, pool),
                 Error);
}

}  // namespace
}  // namespace sparkv
