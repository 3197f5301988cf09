// Every ISA's flash attention against the naive softmax reference.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/attention_driver.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

using testing::random_floats;

class AttentionIsa : public ::testing::TestWithParam<Isa> {
  protected:
    const detail::KernelTable& table() const { return detail::kernel_table(GetParam()); }

    // Fills a cache of `capacity` positions with random fp16 keys and values; queries at the
    // given positions. Outputs are weighted means of values ~N(0, 1): the fast path (fp32,
    // polynomial exp, different summation order) must agree with the double reference to 2e-5
    // absolute, a few hundred fp32 ulps of the output scale.
    void check(int n_head, int n_kv_head, int head_dim, int64_t capacity,
               const std::vector<int32_t>& positions, int threads, uint32_t seed,
               bool round_q = false) {
        AttentionShape s{n_head, n_kv_head, head_dim, capacity, 1.0f / std::sqrt(float(head_dim))};
        s.round_q_to_fp16 = round_q;
        const int64_t n_q = static_cast<int64_t>(positions.size());
        const int64_t ld = int64_t(n_head) * head_dim + 4;
        const auto q = random_floats(n_q * ld, seed, 1.5f);
        const auto kf = random_floats(n_kv_head * capacity * head_dim, seed + 1, 1.5f);
        const auto vf = random_floats(n_kv_head * capacity * head_dim, seed + 2);
        std::vector<uint16_t> k(kf.size()), v(vf.size());
        for (size_t i = 0; i < kf.size(); ++i) {
            k[i] = fp32_to_fp16(kf[i]);
            v[i] = fp32_to_fp16(vf[i]);
        }
        std::vector<float> got(n_q * ld, 7.0f), want(n_q * ld, 7.0f);
        ThreadPool pool(threads);
        detail::attention_with(table(), s, q.data(), ld, n_q, positions.data(), k.data(), v.data(),
                               got.data(), ld, pool);
        ref::attention(s, q.data(), ld, n_q, positions.data(), k.data(), v.data(), want.data(), ld);
        int failures = 0;
        for (int64_t i = 0; i < n_q; ++i) {
            for (int64_t c = 0; c < ld; ++c) {
                const float g = got[i * ld + c], e = want[i * ld + c];
                if (!(std::fabs(g - e) <= 2e-5f) && failures++ < 5) {
                    ADD_FAILURE() << "heads " << n_head << "/" << n_kv_head << " dim " << head_dim
                                  << " query " << i << " (pos " << positions[i] << ") col " << c
                                  << ": " << g << " vs reference " << e;
                }
            }
        }
    }
};

std::vector<int32_t> run_of_positions(int64_t n, int32_t first) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    std::iota(p.begin(), p.end(), first);
    return p;
}

TEST_P(AttentionIsa, PrefillFromZero) {
    check(9, 3, 64, 300, run_of_positions(300, 0), 2, 1);
}

TEST_P(AttentionIsa, ChunkDeepInTheCache) {
    // Queries at positions 2500.. of a 3000-position cache: the tail of the cache
    // (positions after the last query) must be ignored.
    check(9, 3, 64, 3000, run_of_positions(45, 2500), 2, 2);
}

TEST_P(AttentionIsa, QueriesInTheMiddleOfTheCache) {
    check(9, 3, 64, 2000, run_of_positions(40, 900), 3, 3);
}

TEST_P(AttentionIsa, SingleQueryDecodeSplitsKeys) {
    for (int32_t pos : {0, 1, 63, 64, 65, 1999}) check(9, 3, 64, 2000, {pos}, 2, 4 + pos);
}

TEST_P(AttentionIsa, SmallBatchesAndUnsortedPositions) {
    for (int64_t n : {1, 2, 5, 16, 17}) check(9, 3, 64, 600, run_of_positions(n, 500), 2, 10 + n);
    check(9, 3, 64, 600, {599, 3, 250, 0, 17, 17, 400}, 2, 30);
}

TEST_P(AttentionIsa, OtherHeadLayouts) {
    check(4, 4, 32, 200, run_of_positions(50, 100), 2, 40);   // no grouping
    check(8, 2, 128, 300, run_of_positions(33, 200), 2, 41);  // group 4, wide heads
    check(8, 1, 16, 150, run_of_positions(20, 120), 1, 42);   // multi-query, narrow heads
    check(6, 3, 20, 100, run_of_positions(9, 50), 2, 43);     // head_dim not a multiple of 8
}

TEST_P(AttentionIsa, QueriesRoundedToFp16LikeGgml) {
    check(9, 3, 64, 500, run_of_positions(40, 400), 2, 50, true);  // tiled kernel
    check(9, 3, 64, 500, {123}, 1, 51, true);                      // few-query kernel
}

TEST_P(AttentionIsa, RejectsBadShapes) {
    ThreadPool pool(1);
    std::vector<float> q(64), out(64);
    std::vector<uint16_t> kv(64 * 4);
    const int32_t pos = 4;  // outside a 4-position cache
    AttentionShape s{1, 1, 64, 4, 0.125f};
    EXPECT_THROW(detail::attention_with(table(), s, q.data(), 64, 1, &pos, kv.data(), kv.data(),
                                        out.data(), 64, pool),
                 Error);
    std::vector<float> q2(128), out2(128);
    const int32_t two[2] = {0, 1};
    EXPECT_THROW(detail::attention_with(table(), s, q2.data(), 32, 2, two, kv.data(), kv.data(),
                                        out2.data(), 64, pool),
                 Error);
    AttentionShape ungrouped{3, 2, 64, 8, 0.125f};
    const int32_t ok = 0;
    EXPECT_THROW(detail::attention_with(table(), ungrouped, q.data(), 64, 1, &ok, kv.data(),
                                        kv.data(), out.data(), 64, pool),
                 Error);
}

INSTANTIATE_TEST_SUITE_P(Isa, AttentionIsa, ::testing::ValuesIn(testing::runnable_isas()),
                         testing::isa_param_name);

}  // namespace
}  // namespace sparkv::kernels
