// The reference kernels against hand-computed values and rigorous error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "common/fp16.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

using testing::make_matrix;
using testing::random_floats;

TEST(RefRmsNorm, HandComputed) {
    const float x[2] = {3.0f, 4.0f};
    const float w[2] = {1.0f, 2.0f};
    float out[2];
    ref::rms_norm(x, w, out, 2, 0.0f);
    const float rms = std::sqrt(12.5f);
    EXPECT_FLOAT_EQ(out[0], 3.0f / rms);
    EXPECT_FLOAT_EQ(out[1], 8.0f / rms);
}

TEST(RefSwiglu, HandComputed) {
    const float gate[3] = {0.0f, 1.0f, -2.0f};
    const float up[3] = {5.0f, 2.0f, 1.0f};
    float out[3];
    ref::swiglu(gate, up, out, 3);
    EXPECT_FLOAT_EQ(out[0], 0.0f);
    EXPECT_FLOAT_EQ(out[1], 2.0f * 0.7310585786f);
    EXPECT_FLOAT_EQ(out[2], -2.0f * 0.1192029220f);
}

TEST(RefRope, NormalPairsRotateAdjacentElements) {
    // head_dim 4, n_rot 4: pairs (0,1) with theta = pos, (2,3) with theta = pos / base^(1/2).
    float x[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    const int32_t pos = 3;
    RopeParams p;
    p.n_rot = 4;
    p.freq_base = 100.0f;
    ref::rope(x, 1, 1, 4, &pos, p);
    EXPECT_NEAR(x[0], std::cos(3.0), 1e-6);
    EXPECT_NEAR(x[1], std::sin(3.0), 1e-6);
    EXPECT_NEAR(x[2], -std::sin(0.3), 1e-6);
    EXPECT_NEAR(x[3], std::cos(0.3), 1e-6);
}

TEST(RefRope, NeoxPairsHalvesAndScalesFrequencies) {
    // Pairs (0,2) and (1,3); freq_scale halves the angle, freq_factors divide it further.
    float x[6] = {1.0f, 1.0f, 0.0f, 0.0f, 9.0f, 9.0f};  // dims 4, 5 do not rotate (n_rot 4)
    const int32_t pos = 2;
    const float factors[2] = {1.0f, 4.0f};
    RopeParams p;
    p.n_rot = 4;
    p.freq_base = 100.0f;
    p.freq_scale = 0.5f;
    p.neox = true;
    p.freq_factors = factors;
    ref::rope(x, 1, 1, 6, &pos, p);
    const double t0 = 2 * 0.5, t1 = 2 * 0.5 * 0.1 / 4;
    EXPECT_NEAR(x[0], std::cos(t0), 1e-6);
    EXPECT_NEAR(x[2], std::sin(t0), 1e-6);
    EXPECT_NEAR(x[1], std::cos(t1), 1e-6);
    EXPECT_NEAR(x[3], std::sin(t1), 1e-6);
    EXPECT_EQ(x[4], 9.0f);
    EXPECT_EQ(x[5], 9.0f);
}

TEST(RefAttention, SingleKeyReturnsItsValue) {
    AttentionShape s{2, 1, 2, 4, 1.0f};
    const float q[4] = {1, 2, 3, 4};
    uint16_t k[8] = {}, v[8] = {};
    v[0] = fp32_to_fp16(0.5f);
    v[1] = fp32_to_fp16(-1.5f);
    const int32_t pos = 0;
    float out[4];
    ref::attention(s, q, 4, 1, &pos, k, v, out, 4);
    EXPECT_EQ(out[0], 0.5f);
    EXPECT_EQ(out[1], -1.5f);
    EXPECT_EQ(out[2], 0.5f);  // both heads share the single KV head
    EXPECT_EQ(out[3], -1.5f);
}

TEST(RefAttention, SoftmaxWeightsByScore) {
    // One head, head_dim 1, two keys with scores 0 and log(3): weights 1/4 and 3/4.
    AttentionShape s{1, 1, 1, 2, 1.0f};
    const float q[1] = {static_cast<float>(std::log(3.0))};
    const uint16_t k[2] = {fp32_to_fp16(0.0f), fp32_to_fp16(1.0f)};
    const uint16_t v[2] = {fp32_to_fp16(4.0f), fp32_to_fp16(8.0f)};
    const int32_t pos = 1;
    float out[1];
    ref::attention(s, q, 1, 1, &pos, k, v, out, 1);
    EXPECT_NEAR(out[0], 0.25 * 4 + 0.75 * 8, 2e-3);  // q*k rounds log(3) only via fp16 k = 1
    // Causality: at position 0 only the first key is visible.
    const int32_t pos0 = 0;
    ref::attention(s, q, 1, 1, &pos0, k, v, out, 1);
    EXPECT_EQ(out[0], 4.0f);
}

TEST(RefAttention, RoundsQueriesToFp16OnRequest) {
    // head_dim 1, keys 1 and 0 with values 1 and 0: out = e^q / (e^q + 1). q = 1.0001 is not a
    // half; rounded it becomes 1.
    AttentionShape s{1, 1, 1, 2, 1.0f};
    const uint16_t k[2] = {fp32_to_fp16(1.0f), fp32_to_fp16(0.0f)};
    const uint16_t v[2] = {fp32_to_fp16(1.0f), fp32_to_fp16(0.0f)};
    const int32_t pos = 1;
    const float q = 1.0001f, one = 1.0f;
    float exact, rounded, at_one;
    ref::attention(s, &q, 1, 1, &pos, k, v, &exact, 1);
    ref::attention(s, &one, 1, 1, &pos, k, v, &at_one, 1);
    s.round_q_to_fp16 = true;
    ref::attention(s, &q, 1, 1, &pos, k, v, &rounded, 1);
    EXPECT_EQ(rounded, at_one);
    EXPECT_NE(exact, at_one);
    EXPECT_NEAR(exact, std::exp(1.0001) / (std::exp(1.0001) + 1), 1e-6);
}

TEST(RefFp16Rows, EveryHalf) {
    std::vector<uint16_t> h(65536);
    for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
    std::vector<float> f(65536);
    ref::fp16_to_fp32_row(h.data(), f.data(), 65536);
    std::vector<uint16_t> back(65536);
    ref::fp32_to_fp16_row(f.data(), back.data(), 65536);
    for (uint32_t i = 0; i < 65536; ++i) {
        if (std::isnan(f[i])) continue;
        ASSERT_EQ(back[i], h[i]) << i;
    }
}

// The quantised product differs from the exact one only through the activation encoding.
// For Q8_0 / Q8_1 / Q8_K every activation moves by at most half a step (amax_block / 254),
// for F16 by 2^-11 relative, BF16 2^-8; the error of y[t][r] is bounded by
// sum_c |w[r][c]| * that step, plus float accumulation slack.
double activation_step(GgmlType act, const float* x, int64_t c, int64_t cols) {
    if (act == GgmlType::F32) return 0.0;
    if (act == GgmlType::F16) return std::fabs(x[c]) / 2048.0;
    if (act == GgmlType::BF16) return std::fabs(x[c]) / 256.0;
    const int64_t block = ggml_traits(act).block_elements;
    const int64_t b0 = c / block * block;
    double amax = 0;
    for (int64_t i = b0; i < std::min(cols, b0 + block); ++i)
        amax = std::max(amax, double(std::fabs(x[i])));
    return amax / 254.0 * 1.0001;
}

TEST(RefMatmul, QuantisedProductWithinActivationErrorBound) {
    const int64_t rows = 13, cols = 512, tokens = 3;
    const auto x = random_floats(tokens * cols, 21);
    for (GgmlType type : testing::kWeightTypes) {
        const auto w = make_matrix(type, rows, cols, 5);
        std::vector<float> y(tokens * rows), exact(tokens * rows), wrow(cols);
        ref::matmul(w.m, x.data(), cols, tokens, y.data(), rows);
        ref::matmul_exact(w.m, x.data(), cols, tokens, exact.data(), rows);
        const GgmlType act = ref::activation_type(type);
        for (int64_t r = 0; r < rows; ++r) {
            ref::dequantize_row(type, w.m.data + r * w.m.row_bytes, wrow.data(), cols);
            for (int64_t t = 0; t < tokens; ++t) {
                double bound = 0, mag = 0;
                for (int64_t c = 0; c < cols; ++c) {
                    bound +=
                        std::fabs(wrow[c]) * activation_step(act, x.data() + t * cols, c, cols);
                    mag += std::fabs(wrow[c] * x[t * cols + c]);
                }
                // Q8_1's fp16 block sum adds up to 2^-11 of |m| * |block sum|.
                if (act == GgmlType::Q8_1) bound += mag / 1024.0;
                EXPECT_NEAR(y[t * rows + r], exact[t * rows + r], bound + 1e-6 * mag)
                    << ggml_traits(type).name << " r=" << r << " t=" << t;
            }
        }
    }
}

}  // namespace
}  // namespace sparkv::kernels
