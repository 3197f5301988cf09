// KV-like test tensors and the per-element error bound that uniform quantisation implies.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "codec/codec.h"
#include "common/fp16.h"

namespace sparkv::codec::testing {

struct KvPair {
    std::vector<uint16_t> k, v;
};

// Keys: per-channel offsets, a few channels ~10x larger; values: gaussian with per-token scale.
inline KvPair make_kv(const UnitShape& s, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    KvPair kv{std::vector<uint16_t>(s.elements()), std::vector<uint16_t>(s.elements())};
    for (size_t h = 0; h < s.n_kv_heads; ++h) {
        std::vector<float> offset(s.head_dim), spread(s.head_dim, 1.0f);
        for (auto& o : offset) o = 0.5f * normal(rng);
        spread[rng() % s.head_dim] = 10.0f;
        for (size_t t = 0; t < s.n_tokens; ++t) {
            const float token_scale = std::exp(0.3f * normal(rng));
            for (size_t d = 0; d < s.head_dim; ++d) {
                const size_t i = (h * s.n_tokens + t) * s.head_dim + d;
                kv.k[i] = fp32_to_fp16(offset[d] + spread[d] * normal(rng));
                kv.v[i] = fp32_to_fp16(token_scale * normal(rng));
            }
        }
    }
    return kv;
}

// Largest |x - y| allowed for quantising x at `bits` with groups per channel (per_channel) or per
// token and head, computed from the data alone: half the exact step, widened by the fp16 rounding
// of the stored step (2^-10 relative) and of the output (half an fp16 ulp of the value).
inline void expect_within_quantisation_bound(const std::vector<uint16_t>& x,
                                             const std::vector<uint16_t>& y, const UnitShape& s,
                                             int bits, bool per_channel, const char* what) {
    const int qmax = (1 << bits) - 1;
    const size_t groups_per_head = per_channel ? s.head_dim : s.n_tokens;
    std::vector<double> lo(groups_per_head * s.n_kv_heads, INFINITY),
        hi(groups_per_head * s.n_kv_heads, -INFINITY);
    auto group_of = [&](size_t h, size_t t, size_t d) {
        return h * groups_per_head + (per_channel ? d : t);
    };
    for (size_t h = 0; h < s.n_kv_heads; ++h)
        for (size_t t = 0; t < s.n_tokens; ++t)
            for (size_t d = 0; d < s.head_dim; ++d) {
                const double v = fp16_to_fp32(x[(h * s.n_tokens + t) * s.head_dim + d]);
                const size_t g = group_of(h, t, d);
                lo[g] = std::min(lo[g], v);
                hi[g] = std::max(hi[g], v);
            }
    size_t failures = 0;
    for (size_t h = 0; h < s.n_kv_heads; ++h)
        for (size_t t = 0; t < s.n_tokens; ++t)
            for (size_t d = 0; d < s.head_dim; ++d) {
                const size_t i = (h * s.n_tokens + t) * s.head_dim + d;
                const size_t g = group_of(h, t, d);
                const double a = fp16_to_fp32(x[i]), b = fp16_to_fp32(y[i]);
                const double step = (hi[g] - lo[g]) / qmax;
                const double bound =
                    0.5 * step * (1.0 + 1.0 / 512) + std::abs(a) * std::ldexp(1.0, -11) + 6e-8;
                if (!(std::abs(a - b) <= bound) && failures++ < 5) {
                    ADD_FAILURE() << what << " element (" << h << ", " << t << ", " << d
                                  << "): " << a << " decoded as " << b << ", bound " << bound;
                }
            }
    EXPECT_EQ(failures, 0u) << what;
}

}  // namespace sparkv::codec::testing
