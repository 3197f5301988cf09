// The public entry points of kernels.h run the selected ISA's kernels (SPARKV_ISA can lower it;
// CTest runs this file once more with SPARKV_ISA=portable) and agree with the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <numeric>

#include "common/error.h"
#include "common/fp16.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

using testing::make_matrix;
using testing::random_floats;

TEST(PublicApi, ActiveIsaFollowsTheEnvironment) {
    const Isa expected = resolve_isa(std::getenv("SPARKV_ISA"), cpu_isa());
    EXPECT_STREQ(active_isa(), isa_name(expected));
}

TEST(PublicApi, MatmulMatchesReference) {
    ThreadPool pool(2);
    for (GgmlType type : {GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q6_K, GgmlType::F16}) {
        const int64_t rows = 40, cols = 512, tokens = 20;
        const auto w = make_matrix(type, rows, cols, 3);
        const auto x = random_floats(tokens * cols, 4);
        std::vector<float> got(tokens * rows), want(tokens * rows);
        matmul(w.m, x.data(), cols, tokens, got.data(), rows, pool);
        ref::matmul(w.m, x.data(), cols, tokens, want.data(), rows);
        for (size_t i = 0; i < got.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i])))
                << ggml_traits(type).name;
    }
}

TEST(PublicApi, AttentionMatchesReference) {
    ThreadPool pool(2);
    AttentionShape s{9, 3, 64, 400, 0.125f};
    const int64_t n_q = 70;
    const auto q = random_floats(n_q * 576, 5);
    const auto kv = random_floats(3 * 400 * 64, 6);
    std::vector<uint16_t> k(kv.size()), v(kv.size());
    for (size_t i = 0; i < kv.size(); ++i) {
        k[i] = fp32_to_fp16(kv[i]);
        v[i] = fp32_to_fp16(-kv[kv.size() - 1 - i]);
    }
    std::vector<int32_t> pos(n_q);
    std::iota(pos.begin(), pos.end(), 300);
    std::vector<float> got(q.size()), want(q.size());
    attention(s, q.data(), 576, n_q, pos.data(), k.data(), v.data(), got.data(), 576, pool);
    ref::attention(s, q.data(), 576, n_q, pos.data(), k.data(), v.data(), want.data(), 576);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f);
}

TEST(PublicApi, ElementwiseAndConversions) {
    const auto x = random_floats(576, 7);
    const auto w = random_floats(576, 8);
    std::vector<float> got(576), want(576);
    rms_norm(x.data(), w.data(), got.data(), 576, 1e-5f);
    ref::rms_norm(x.data(), w.data(), want.data(), 576, 1e-5f);
    for (int i = 0; i < 576; ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i])));
    swiglu(x.data(), w.data(), got.data(), 576);
    ref::swiglu(x.data(), w.data(), want.data(), 576);
    for (int i = 0; i < 576; ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i])));
    std::vector<uint16_t> h(576);
    fp32_to_fp16_row(x.data(), h.data(), 576);
    fp16_to_fp32_row(h.data(), got.data(), 576);
    for (int i = 0; i < 576; ++i) ASSERT_EQ(got[i], fp16_to_fp32(fp32_to_fp16(x[i])));
    // rope rejects an odd or oversized rotation instead of writing out of bounds.
    std::vector<float> v(64);
    const int32_t p = 1;
    RopeParams bad;
    bad.n_rot = 65;
    EXPECT_THROW(rope(v.data(), 1, 1, 64, &p, bad), Error);
}

}  // namespace
}  // namespace sparkv::kernels
