// Every ISA's element-wise kernels against the reference and the formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/fp16.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

using testing::random_floats;

class ElementwiseIsa : public ::testing::TestWithParam<Isa> {
  protected:
    const detail::KernelTable& table() const { return detail::kernel_table(GetParam()); }
};

TEST_P(ElementwiseIsa, RmsNorm) {
    for (int64_t n : {1, 7, 576, 1003}) {
        const auto x = random_floats(n, 1 + n, 3.0f);
        const auto w = random_floats(n, 2 + n);
        std::vector<float> got(n), want(n);
        table().rms_norm(x.data(), w.data(), got.data(), n, 1e-5f);
        ref::rms_norm(x.data(), w.data(), want.data(), n, 1e-5f);
        for (int64_t i = 0; i < n; ++i)
            ASSERT_NEAR(got[i], want[i], 1e-6f * (1 + std::fabs(want[i]))) << n;
    }
}

TEST_P(ElementwiseIsa, Swiglu) {
    auto gate = random_floats(1003, 3, 4.0f);
    gate[0] = -100.0f;  // silu -> -0
    gate[1] = 100.0f;   // silu -> x
    gate[2] = 0.0f;
    const auto up = random_floats(1003, 4);
    std::vector<float> got(1003), want(1003);
    table().swiglu(gate.data(), up.data(), got.data(), 1003);
    ref::swiglu(gate.data(), up.data(), want.data(), 1003);
    for (int i = 0; i < 1003; ++i)
        ASSERT_NEAR(got[i], want[i], 2e-6f * (1 + std::fabs(want[i]))) << i;
}

// ggml computes the angles with a float recurrence theta_i = pos * theta_scale^i; against the
// exact formula the angle error grows like pos * i * 2^-24, bounded here by pos * 2e-7 rad.
void check_rope(const detail::KernelTable& kt, RopeParams p, int n_heads, int head_dim,
                const std::vector<int32_t>& pos) {
    const int64_t n = static_cast<int64_t>(pos.size());
    auto x = random_floats(n * n_heads * head_dim, 5);
    auto want = x;
    kt.rope(x.data(), n, n_heads, head_dim, pos.data(), p);
    ref::rope(want.data(), n, n_heads, head_dim, pos.data(), p);
    for (int64_t t = 0; t < n; ++t) {
        const float tol = 4e-6f + 2e-7f * std::fabs(float(pos[t])) * 3.0f;
        for (int64_t i = 0; i < n_heads * head_dim; ++i) {
            const int64_t k = t * n_heads * head_dim + i;
            ASSERT_NEAR(x[k], want[k], tol) << "pos " << pos[t] << " element " << i;
        }
    }
}

TEST_P(ElementwiseIsa, RopeNormalAndNeox) {
    const std::vector<int32_t> pos = {0, 1, 2, 17, 1000, 8191, 30000};
    RopeParams p;
    p.n_rot = 64;
    p.freq_base = 10000.0f;
    check_rope(table(), p, 3, 64, pos);
    p.neox = true;
    check_rope(table(), p, 3, 64, pos);
}

TEST_P(ElementwiseIsa, RopePartialRotationScaleAndFactors) {
    const std::vector<int32_t> pos = {5, 300, 4000};
    std::vector<float> factors(24);
    for (int i = 0; i < 24; ++i) factors[i] = 1.0f + 0.5f * i;
    for (bool neox : {false, true}) {
        RopeParams p;
        p.n_rot = 48;  // of 80 dims: the last 32 stay as they are
        p.freq_base = 500000.0f;
        p.freq_scale = 0.25f;
        p.neox = neox;
        p.freq_factors = factors.data();
        check_rope(table(), p, 2, 80, pos);
    }
}

TEST_P(ElementwiseIsa, Fp16RowsEveryHalf) {
    std::vector<uint16_t> h(65536 + 5);
    for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
    std::vector<float> f(h.size());
    table().fp16_to_fp32_row(h.data(), f.data(), static_cast<int64_t>(h.size()));
    for (size_t i = 0; i < h.size(); ++i) {
        const float want = fp16_to_fp32(h[i]);
        if (std::isnan(want)) {
            ASSERT_TRUE(std::isnan(f[i]));
        } else {
            ASSERT_EQ(f[i], want) << i;
        }
    }
    // Every half's value, its neighbours' midpoints (ties round to even) and points in between.
    std::vector<float> src;
    for (uint32_t i = 0; i < 0x7c00; ++i) {
        const float a = fp16_to_fp32(static_cast<uint16_t>(i));
        const float b = fp16_to_fp32(static_cast<uint16_t>(i + 1));
        for (float v : {a, (a + b) / 2, a + (b - a) * 0.3f}) {
            src.push_back(v);
            src.push_back(-v);
        }
    }
    src.push_back(1e9f);
    src.push_back(-std::numeric_limits<float>::infinity());
    std::vector<uint16_t> got(src.size());
    table().fp32_to_fp16_row(src.data(), got.data(), static_cast<int64_t>(src.size()));
    for (size_t i = 0; i < src.size(); ++i) ASSERT_EQ(got[i], fp32_to_fp16(src[i])) << src[i];
}

INSTANTIATE_TEST_SUITE_P(Isa, ElementwiseIsa, ::testing::ValuesIn(testing::runnable_isas()),
                         testing::isa_param_name);

TEST(IsaSelection, OverrideOnlyLowers) {
    EXPECT_EQ(resolve_isa(nullptr, Isa::avx2), Isa::avx2);
    EXPECT_EQ(resolve_isa("", Isa::avx2), Isa::avx2);
    EXPECT_EQ(resolve_isa("portable", Isa::avx2), Isa::portable);
    EXPECT_EQ(resolve_isa("avx512", Isa::avx2), Isa::avx2);
    EXPECT_EQ(resolve_isa("avx2", Isa::avx512), Isa::avx2);
    EXPECT_EQ(resolve_isa("avx2", Isa::portable), Isa::portable);
    EXPECT_THROW(resolve_isa("sse9", Isa::avx2), Error);
}

TEST(IsaSelection, ActiveIsaNamesTheSelectedTable) {
    EXPECT_STREQ(active_isa(), isa_name(detail::active_kernels().isa));
    EXPECT_LE(static_cast<int>(selected_isa()), static_cast<int>(cpu_isa()));
}

}  // namespace
}  // namespace sparkv::kernels
