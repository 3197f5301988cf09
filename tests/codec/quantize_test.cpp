#include "codec/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/fp16.h"

namespace sparkv::codec {
namespace {

std::vector<uint16_t> random_halves(size_t n, uint32_t seed, float scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<uint16_t> x(n);
    for (auto& h : x) h = fp32_to_fp16(normal(rng));
    return x;
}

TEST(GroupParams, StepIsRoundedUpSoTheRangeIsCovered) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uniform(-100.0f, 100.0f);
    for (int trial = 0; trial < 10000; ++trial) {
        float a = fp16_to_fp32(fp32_to_fp16(uniform(rng))),
              b = fp16_to_fp32(fp32_to_fp16(uniform(rng)));
        if (a > b) std::swap(a, b);
        for (int qmax : {3, 7, 31, 255}) {
            const GroupParams p = group_params(a, b, qmax);
            const double min = fp16_to_fp32(p.min_bits), step = fp16_to_fp32(p.step_bits);
            ASSERT_EQ(min, a);
            ASSERT_GE(min + qmax * step, b);
            ASSERT_LE(step, (b - a) / qmax * (1 + 1.0 / 1024) + 6e-8);
        }
    }
}

TEST(GroupParams, ConstantGroupHasZeroStep) {
    const GroupParams p = group_params(1.5f, 1.5f, 31);
    EXPECT_EQ(fp16_to_fp32(p.step_bits), 0.0f);
    EXPECT_EQ(fp16_to_fp32(p.min_bits), 1.5f);
}

TEST(GroupParams, ExtremeRangeAtTwoBitsStaysFinite) {
    const GroupParams p = group_params(-65504.0f, 65504.0f, 3);
    EXPECT_TRUE(std::isfinite(fp16_to_fp32(p.step_bits)));
}

TEST(QuantKernels, AllFinite) {
    std::vector<uint16_t> x = random_halves(1000, 2, 1.0f);
    EXPECT_TRUE(all_finite(x.data(), x.size()));
    x[999] = 0x7c00;  // +inf
    EXPECT_FALSE(all_finite(x.data(), x.size()));
    x[999] = 0xfe01;  // NaN
    EXPECT_FALSE(all_finite(x.data(), x.size()));
    EXPECT_TRUE(all_finite(x.data(), 999));
}

TEST(QuantKernels, SplitAndMergeBytes) {
    const std::vector<uint16_t> x = random_halves(777, 3, 10.0f);
    std::vector<uint8_t> hi(x.size()), lo(x.size());
    split_bytes(x.data(), x.size(), hi.data(), lo.data());
    std::vector<uint16_t> y(x.size());
    merge_bytes(hi.data(), lo.data(), x.size(), y.data());
    EXPECT_EQ(x, y);
}

// The AVX2 kernels must match the scalar reference bit for bit, for every shape remainder.
TEST(QuantKernels, Avx2MatchesScalarExactly) {
    const QuantKernels* fast = avx2_quant_kernels();
    if (!fast) GTEST_SKIP() << "CPU lacks AVX2 + F16C";
    const QuantKernels& ref = scalar_quant_kernels();
    for (int64_t cols : {1, 3, 7, 8, 9, 16, 63, 64, 65}) {
        for (int64_t rows : {0, 1, 2, 5, 33}) {
            const size_t n = static_cast<size_t>(rows * cols);
            std::vector<uint16_t> x =
                random_halves(n, static_cast<uint32_t>(rows * 100 + cols), 3.0f);
            if (n > 4) {  // awkward values: extremes, subnormals, signed zeros
                x[0] = 0x7bff;
                x[1] = 0x0001;
                x[2] = 0x8000;
                x[3] = 0xfbff;
            }
            for (bool per_col : {true, false}) {
                const size_t groups = static_cast<size_t>(per_col ? cols : rows);
                std::vector<float> mins_a(groups), maxs_a(groups), mins_b(groups), maxs_b(groups);
                (per_col ? ref.minmax_per_col : ref.minmax_per_row)(x.data(), rows, cols,
                                                                    mins_a.data(), maxs_a.data());
                (per_col ? fast->minmax_per_col : fast->minmax_per_row)(
                    x.data(), rows, cols, mins_b.data(), maxs_b.data());
                ASSERT_EQ(mins_a, mins_b);
                ASSERT_EQ(maxs_a, maxs_b);
                for (int bits : {2, 5, 8}) {
                    const int qmax = (1 << bits) - 1;
                    std::vector<float> mins(groups), steps(groups), inv(groups);
                    for (size_t g = 0; g < groups; ++g) {
                        const GroupParams p = group_params(mins_a[g], maxs_a[g], qmax);
                        mins[g] = fp16_to_fp32(p.min_bits);
                        steps[g] = fp16_to_fp32(p.step_bits);
                        inv[g] = steps[g] > 0 ? 1.0f / steps[g] : 0.0f;
                    }
                    std::vector<uint8_t> sa(n), sb(n);
                    (per_col ? ref.quantize_per_col : ref.quantize_per_row)(
                        x.data(), rows, cols, mins.data(), inv.data(), qmax, sa.data());
                    (per_col ? fast->quantize_per_col : fast->quantize_per_row)(
                        x.data(), rows, cols, mins.data(), inv.data(), qmax, sb.data());
                    ASSERT_EQ(sa, sb) << "cols " << cols << " rows " << rows << " bits " << bits;
                    std::vector<uint16_t> ya(n), yb(n);
                    (per_col ? ref.dequantize_per_col : ref.dequantize_per_row)(
                        sa.data(), rows, cols, mins.data(), steps.data(), ya.data());
                    (per_col ? fast->dequantize_per_col : fast->dequantize_per_row)(
                        sa.data(), rows, cols, mins.data(), steps.data(), yb.data());
                    ASSERT_EQ(ya, yb) << "cols " << cols << " rows " << rows << " bits " << bits;
                }
            }
        }
    }
}

TEST(QuantKernels, DequantizeSaturatesInsteadOfOverflowing) {
    for (const QuantKernels* k : {&scalar_quant_kernels(), avx2_quant_kernels()}) {
        if (!k) continue;
        const uint8_t symbols[9] = {3, 3, 3, 3, 3, 3, 3, 3, 3};
        const float mins[1] = {-65504.0f}, steps[1] = {43680.0f};  // top level would be 65536
        uint16_t out[9];
        k->dequantize_per_row(symbols, 1, 9, mins, steps, out);
        for (uint16_t h : out) EXPECT_EQ(h, 0x7bff) << k->name;  // 65504, not inf
    }
}

}  // namespace
}  // namespace sparkv::codec
