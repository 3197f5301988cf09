#include "engine/attention_mass.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "engine/kernels/kernels.h"

namespace sparkv {

namespace {

// Eight independent partial sums, so the compiler can keep them in one vector register.
float dot(const float* a, const float* b, int n) {
    float acc[8] = {};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    float sum = 0;
    for (; i < n; ++i) sum += a[i] * b[i];
    for (float x : acc) sum += x;
    return sum;
}

}  // namespace

void add_attention_mass(const AttentionMassShape& s, const float* q, int64_t ldq, int64_t n_q,
                        int64_t pos0, const uint16_t* keys, std::span<float> mass,
                        ThreadPool& pool) {
    const int64_t n_keys = pos0 + n_q;
    if (n_q <= 0) return;
    if (s.n_kv_head < 1 || s.n_head % s.n_kv_head != 0 || n_keys > s.kv_capacity ||
        static_cast<int64_t>(mass.size()) < n_keys)
        fail("attention mass: {} positions do not fit (capacity {}, {} mass entries)", n_keys,
             s.kv_capacity, mass.size());
    const int group = s.n_head / s.n_kv_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    const size_t d = static_cast<size_t>(s.head_dim);
    // One row of partial sums per query head, added up at the end: no shared writes.
    std::vector<float> partial(static_cast<size_t>(s.n_head) * static_cast<size_t>(n_keys), 0.0f);
    pool.parallel_for(s.n_head, [&](int64_t head, int) {
        const int kv_head = static_cast<int>(head) / group;
        std::vector<float> k(static_cast<size_t>(n_keys) * d);
        kernels::fp16_to_fp32_row(keys + static_cast<size_t>(kv_head) * s.kv_capacity * d, k.data(),
                                  static_cast<int64_t>(k.size()));
        std::vector<float> w(static_cast<size_t>(n_keys));
        float* out = partial.data() + static_cast<size_t>(head) * static_cast<size_t>(n_keys);
        for (int64_t i = 0; i < n_q; ++i) {
            const float* qi = q + i * ldq + static_cast<size_t>(head) * d;
            const int64_t visible = pos0 + i + 1;
            float top = -INFINITY;
            for (int64_t p = 0; p < visible; ++p) {
                w[p] = dot(qi, k.data() + static_cast<size_t>(p) * d, s.head_dim) * scale;
                top = std::max(top, w[p]);
            }
            float sum = 0;
            for (int64_t p = 0; p < visible; ++p) sum += (w[p] = std::exp(w[p] - top));
            const float norm = 1.0f / sum;
            for (int64_t p = 0; p < visible; ++p) out[p] += w[p] * norm;
        }
    });
    for (int h = 0; h < s.n_head; ++h)
        for (int64_t p = 0; p < n_keys; ++p)
            mass[p] += partial[static_cast<size_t>(h) * static_cast<size_t>(n_keys) + p];
}

}  // namespace sparkv
