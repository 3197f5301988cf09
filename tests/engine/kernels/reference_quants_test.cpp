// The reference (de)quantisation against hand-computed blocks and error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/fp16.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

using testing::random_floats;

std::vector<float> decode(GgmlType type, const void* block, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    ref::dequantize_row(type, block, out.data(), n);
    return out;
}

TEST(RefDequantize, Q4_0KnownBlock) {
    BlockQ4_0 b{};
    b.d = fp32_to_fp16(0.5f);
    b.qs[0] = 0x9f;  // element 0: 15 - 8 = 7; element 16: 9 - 8 = 1
    b.qs[3] = 0x08;  // element 3: 0; element 19: -8
    const auto y = decode(GgmlType::Q4_0, &b, 32);
    EXPECT_EQ(y[0], 3.5f);
    EXPECT_EQ(y[16], 0.5f);
    EXPECT_EQ(y[3], 0.0f);
    EXPECT_EQ(y[19], -4.0f);
    EXPECT_EQ(y[1], -4.0f);  // qs[1] == 0 -> -8 * 0.5
}

TEST(RefDequantize, Q4_1KnownBlock) {
    BlockQ4_1 b{};
    b.d = fp32_to_fp16(0.25f);
    b.m = fp32_to_fp16(-1.0f);
    b.qs[2] = 0xf4;  // element 2: 4, element 18: 15
    const auto y = decode(GgmlType::Q4_1, &b, 32);
    EXPECT_EQ(y[2], 0.0f);
    EXPECT_EQ(y[18], 2.75f);
    EXPECT_EQ(y[0], -1.0f);
}

TEST(RefDequantize, Q8_0KnownBlock) {
    BlockQ8_0 b{};
    b.d = fp32_to_fp16(2.0f);
    b.qs[5] = -7;
    b.qs[31] = 127;
    const auto y = decode(GgmlType::Q8_0, &b, 32);
    EXPECT_EQ(y[5], -14.0f);
    EXPECT_EQ(y[31], 254.0f);
}

TEST(RefDequantize, Q4_KKnownBlock) {
    BlockQ4_K b{};
    b.d = fp32_to_fp16(0.5f);
    b.dmin = fp32_to_fp16(0.25f);
    // Sub-block 1 (elements 32..63, high nibbles of qs[0..31]): scale 3, min 4.
    b.scales[1] = 3;
    b.scales[5] = 4;
    // Sub-block 5 (elements 160..191, high nibbles of qs[64..95]): scale 37 = 0b10'0101,
    // min 50 = 0b11'0010. Low 4 bits live in scales[9], the top 2 bits in scales[1] / scales[5].
    b.scales[9] = static_cast<uint8_t>(0x5 | (0x2 << 4));
    b.scales[1] |= 0x2 << 6;
    b.scales[5] |= 0x3 << 6;
    b.qs[7] = 0x90;   // element 39 = 9
    b.qs[70] = 0xc0;  // element 166 = 12
    const auto y = decode(GgmlType::Q4_K, &b, 256);
    EXPECT_EQ(y[39], 0.5f * 3 * 9 - 0.25f * 4);
    EXPECT_EQ(y[166], 0.5f * 37 * 12 - 0.25f * 50);
    EXPECT_EQ(y[160], -0.25f * 50);
}

TEST(RefDequantize, Q5_KKnownBlock) {
    BlockQ5_K b{};
    b.d = fp32_to_fp16(1.0f);
    b.dmin = fp32_to_fp16(1.0f);
    b.scales[2] = 2;  // sub-block 2 (elements 64..95, low nibbles of qs[32..63]): scale 2, min 1
    b.scales[6] = 1;
    b.qs[32 + 10] = 0x07;  // element 74: low bits 7
    b.qh[10] = 1 << 2;     // element 74: high bit (bit 2 = sub-block 2)
    const auto y = decode(GgmlType::Q5_K, &b, 256);
    EXPECT_EQ(y[74], 2.0f * (7 + 16) - 1.0f);
    EXPECT_EQ(y[75], -1.0f);
}

TEST(RefDequantize, Q6_KKnownBlock) {
    BlockQ6_K b{};
    b.d = fp32_to_fp16(0.5f);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j - 8);
    // Element 200 = second half (128..255), r = 72: quarter 2 (high nibble of ql[64 + 8]),
    // high bits at qh[32 + 8] bits 4..5; sub-block 200 / 16 = 12 -> scale 4.
    b.ql[64 + 8] = 0xa0;      // low 4 bits: 10
    b.qh[32 + 8] = 0x2 << 4;  // high 2 bits: 2 -> q = 10 + 32 - 32 = 10
    // Element 40: quarter 1 (low nibble of ql[32 + 8]), high bits at qh[8] bits 2..3; scale -6.
    b.ql[32 + 8] = 0x03;
    b.qh[8] = 0x1 << 2;  // q = 3 + 16 - 32 = -13
    const auto y = decode(GgmlType::Q6_K, &b, 256);
    EXPECT_EQ(y[200], 0.5f * 4 * 10);
    EXPECT_EQ(y[40], 0.5f * -6 * -13);
    EXPECT_EQ(y[0], 0.5f * -8 * -32);  // all-zero bits decode to -32
}

TEST(RefDequantize, Q5_0KnownBlock) {
    BlockQ5_0 b{};
    b.d = fp32_to_fp16(0.5f);
    b.qs[0] = 0x3a;   // element 0: low bits 10; element 16: 3
    b.qh[0] = 0x01;   // element 0: fifth bit
    b.qh[2] = 0x01;   // element 16: fifth bit
    b.qs[15] = 0xf0;  // element 31: low bits 15
    b.qh[3] = 0x80;   // element 31: fifth bit
    const auto y = decode(GgmlType::Q5_0, &b, 32);
    EXPECT_EQ(y[0], 0.5f * (26 - 16));
    EXPECT_EQ(y[16], 0.5f * (19 - 16));
    EXPECT_EQ(y[1], 0.5f * -16);
    EXPECT_EQ(y[31], 0.5f * 15);
}

TEST(RefDequantize, Q5_1KnownBlock) {
    BlockQ5_1 b{};
    b.d = fp32_to_fp16(0.25f);
    b.m = fp32_to_fp16(-1.0f);
    b.qs[2] = 0x1f;  // element 2: 15; element 18: low bits 1
    b.qh[2] = 0x04;  // element 18: fifth bit
    const auto y = decode(GgmlType::Q5_1, &b, 32);
    EXPECT_EQ(y[2], 0.25f * 15 - 1.0f);
    EXPECT_EQ(y[18], 0.25f * 17 - 1.0f);
    EXPECT_EQ(y[0], -1.0f);
}

TEST(RefDequantize, IQ4_NLKnownBlock) {
    BlockIQ4_NL b{};
    b.d = fp32_to_fp16(2.0f);
    b.qs[0] = 0x0f;  // element 0: level 15 = 113; element 16: level 0 = -127
    b.qs[5] = 0x87;  // element 5: level 7 = -10; element 21: level 8 = 1
    const auto y = decode(GgmlType::IQ4_NL, &b, 32);
    EXPECT_EQ(y[0], 226.0f);
    EXPECT_EQ(y[16], -254.0f);
    EXPECT_EQ(y[5], -20.0f);
    EXPECT_EQ(y[21], 2.0f);
}

TEST(RefDequantize, Q2_KKnownBlock) {
    BlockQ2_K b{};
    b.d = fp32_to_fp16(0.5f);
    b.dmin = fp32_to_fp16(0.25f);
    // Element 200: second 128 (bytes 32..63), quarter 2 (bits 4..5) of byte 32 + 8;
    // sub-block 12: scale 5, min 3.
    b.qs[40] = 0x3 << 4;
    b.scales[12] = 0x35;
    // Element 8: byte 8, bits 0..1; sub-block 0: scale 2, min 1.
    b.qs[8] = 0x02;
    b.scales[0] = 0x12;
    // Element 168: byte 40, bits 2..3 (zero); sub-block 10: scale 0, min 4.
    b.scales[10] = 0x40;
    const auto y = decode(GgmlType::Q2_K, &b, 256);
    EXPECT_EQ(y[200], 0.5f * 5 * 3 - 0.25f * 3);
    EXPECT_EQ(y[8], 0.5f * 2 * 2 - 0.25f * 1);
    EXPECT_EQ(y[168], -0.25f * 4);
}

TEST(RefDequantize, Q3_KKnownBlock) {
    BlockQ3_K b{};
    b.d = fp32_to_fp16(1.0f);
    // Sub-block 4: stored scale 37 (low 4 bits 5 in scales[4], top bits 2 in scales[8] bits
    // 2..3) -> 37 - 32 = 5. Element 70: byte 6, bits 4..5 = 2, hmask[6] bit 2 set -> 2.
    b.scales[4] = 0x05;
    b.scales[8] = 0x2 << 2;
    b.qs[6] = 0x2 << 4;
    b.hmask[6] = 0x1 << 2;
    // Sub-block 12: low 4 bits 3 in the high nibble of scales[4], top bits 1 in scales[8] bits
    // 6..7 -> 19 - 32 = -13. Element 200: byte 40, bits 4..5 = 1, hmask[8] bit 6 set -> 1.
    b.scales[4] |= 0x3 << 4;
    b.scales[8] |= 0x1 << 6;
    b.qs[40] = 0x1 << 4;
    b.hmask[8] = 0x1 << 6;
    const auto y = decode(GgmlType::Q3_K, &b, 256);
    EXPECT_EQ(y[70], 5.0f * 2);
    EXPECT_EQ(y[71], 5.0f * -4);  // no hmask bit: minus 4
    EXPECT_EQ(y[200], -13.0f * 1);
    EXPECT_EQ(y[0], -32.0f * -4);  // all-zero bits: scale -32, value -4
}

TEST(RefDequantize, IQ4_XSKnownBlock) {
    BlockIQ4_XS b{};
    b.d = fp32_to_fp16(0.5f);
    // Sub-block 3: scale 40 (low 4 bits 8 in the high nibble of scales_l[1], top bits 2 in
    // scales_h bits 6..7) -> 40 - 32 = 8. Its 16 bytes start at qs[48]; element 116 = 96 + 20 is
    // the high nibble of qs[52], element 100 the low one.
    b.scales_l[1] = 0x80;
    b.scales_h = 0x2 << 6;
    b.qs[52] = 0xe0;  // level 14 = 89 (element 116), level 0 = -127 (element 100)
    const auto y = decode(GgmlType::IQ4_XS, &b, 256);
    EXPECT_EQ(y[116], 0.5f * 8 * 89);
    EXPECT_EQ(y[100], 0.5f * 8 * -127);
    EXPECT_EQ(y[0], 0.5f * -32 * -127);  // sub-block 0: scale bits 0 -> -32
}

TEST(RefDequantize, FloatTypes) {
    const uint16_t h[2] = {0x3c00, 0xc000};
    auto y = decode(GgmlType::F16, h, 2);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], -2.0f);
    const uint16_t bf[2] = {0x3f80, 0x4049};
    y = decode(GgmlType::BF16, bf, 2);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], 3.140625f);
}

TEST(RefQuantize, Q8_0RoundsHalfToEvenLikeGgmlX86) {
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f;  // amax 127 -> multiplier exactly 1
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = -0.5f;
    BlockQ8_0 b{};
    ref::quantize_row(GgmlType::Q8_0, x.data(), &b, 32);
    EXPECT_EQ(b.d, fp32_to_fp16(1.0f));
    EXPECT_EQ(b.qs[0], 127);
    EXPECT_EQ(b.qs[1], 2);
    EXPECT_EQ(b.qs[2], 4);
    EXPECT_EQ(b.qs[3], -2);
    EXPECT_EQ(b.qs[4], 0);
}

TEST(RefQuantize, Q8_0UsesMultiplierNotDivision) {
    // ggml's x86 path multiplies by 127/amax; for amax = 3 the element 1.0 becomes
    // 1 * (127/3) = 42.333 -> 42, and the scale is fp16(3/127).
    std::vector<float> x(32, 0.0f);
    x[7] = -3.0f;
    x[8] = 1.0f;
    BlockQ8_0 b{};
    ref::quantize_row(GgmlType::Q8_0, x.data(), &b, 32);
    EXPECT_EQ(b.d, fp32_to_fp16(3.0f / 127.0f));
    EXPECT_EQ(b.qs[7], -127);
    EXPECT_EQ(b.qs[8], 42);
}

TEST(RefQuantize, Q8_1StoresScaledSum) {
    const auto x = random_floats(64, 7);
    BlockQ8_1 b[2];
    ref::quantize_row(GgmlType::Q8_1, x.data(), b, 64);
    for (const auto& blk : b) {
        int sum = 0;
        for (int8_t q : blk.qs) sum += q;
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[(&blk - b) * 32 + j]));
        EXPECT_EQ(blk.s, fp32_to_fp16(amax / 127.0f * static_cast<float>(sum)));
    }
    // Its quants equal Q8_0's.
    BlockQ8_0 c[2];
    ref::quantize_row(GgmlType::Q8_0, x.data(), c, 64);
    EXPECT_EQ(std::memcmp(b[1].qs, c[1].qs, 32), 0);
    EXPECT_EQ(b[1].d, c[1].d);
}

TEST(RefQuantize, Q8_KMatchesGgmlRecipe) {
    std::vector<float> x(256, 0.0f);
    x[0] = -127.0f;  // first largest magnitude, negative -> iscale = -127 / -127 = 1
    x[1] = 127.0f;   // same magnitude, not strictly larger: stays 127
    x[2] = 2.5f;
    x[3] = -3.5f;
    x[17] = 5.0f;
    BlockQ8_K b{};
    ref::quantize_row(GgmlType::Q8_K, x.data(), &b, 256);
    EXPECT_EQ(b.d, 1.0f);
    EXPECT_EQ(b.qs[0], -127);
    EXPECT_EQ(b.qs[1], 127);
    EXPECT_EQ(b.qs[2], 2);
    EXPECT_EQ(b.qs[3], -4);
    EXPECT_EQ(b.bsums[0], -127 + 127 + 2 - 4);
    EXPECT_EQ(b.bsums[1], 5);
    // Sign of the scale follows the largest element: positive max -> negative iscale.
    std::vector<float> z(256, 0.0f);
    ref::quantize_row(GgmlType::Q8_K, z.data(), &b, 256);
    EXPECT_EQ(b.d, 0.0f);
    z[9] = 4.0f;
    ref::quantize_row(GgmlType::Q8_K, z.data(), &b, 256);
    EXPECT_FLOAT_EQ(b.d, -4.0f / 127.0f);
    EXPECT_EQ(b.qs[9], -127);
}

// Round trip error relative to the signal, per type: a loose bound that still catches any
// layout mistake (a wrong nibble or scale gives errors of the order of the signal).
struct RoundTripCase {
    GgmlType type;
    double max_relative_rms;
};

class RefRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RefRoundTrip, ErrorIsSmall) {
    const auto [type, bound] = GetParam();
    const int64_t n = 1024;
    auto x = random_floats(n, 11);
    x[5] = 7.0f;  // an outlier
    std::vector<uint8_t> enc(ggml_row_bytes(type, n));
    ref::quantize_row(type, x.data(), enc.data(), n);
    const auto y = decode(type, enc.data(), n);
    double err = 0, sig = 0;
    for (int64_t i = 0; i < n; ++i) {
        err += (y[i] - x[i]) * (y[i] - x[i]);
        sig += x[i] * x[i];
    }
    EXPECT_LT(std::sqrt(err / sig), bound) << ggml_traits(type).name;
    // Re-encoding the decoded row must not drift far (the format is stable).
    std::vector<uint8_t> enc2(enc.size());
    ref::quantize_row(type, y.data(), enc2.data(), n);
    const auto y2 = decode(type, enc2.data(), n);
    double drift = 0;
    for (int64_t i = 0; i < n; ++i) drift += (y2[i] - y[i]) * (y2[i] - y[i]);
    EXPECT_LT(std::sqrt(drift / sig), bound) << ggml_traits(type).name;
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, RefRoundTrip,
    ::testing::Values(RoundTripCase{GgmlType::F32, 1e-9}, RoundTripCase{GgmlType::F16, 1e-3},
                      RoundTripCase{GgmlType::BF16, 5e-3}, RoundTripCase{GgmlType::Q8_0, 0.01},
                      RoundTripCase{GgmlType::Q8_1, 0.01}, RoundTripCase{GgmlType::Q8_K, 0.02},
                      RoundTripCase{GgmlType::Q4_0, 0.15}, RoundTripCase{GgmlType::Q4_1, 0.12},
                      RoundTripCase{GgmlType::Q5_0, 0.08}, RoundTripCase{GgmlType::Q5_1, 0.06},
                      RoundTripCase{GgmlType::IQ4_NL, 0.15}, RoundTripCase{GgmlType::Q2_K, 0.45},
                      RoundTripCase{GgmlType::Q3_K, 0.25}, RoundTripCase{GgmlType::Q4_K, 0.15},
                      RoundTripCase{GgmlType::Q5_K, 0.07}, RoundTripCase{GgmlType::Q6_K, 0.04},
                      RoundTripCase{GgmlType::IQ4_XS, 0.15}),
    [](const auto& param_info) { return std::string(ggml_traits(param_info.param.type).name); });

TEST(RefQuantize, RejectsPartialBlocks) {
    std::vector<float> x(40);
    std::vector<uint8_t> out(64);
    EXPECT_THROW(ref::quantize_row(GgmlType::Q4_0, x.data(), out.data(), 40), Error);
    EXPECT_THROW(ref::dequantize_row(GgmlType::Q4_K, out.data(), x.data(), 32), Error);
    EXPECT_THROW(ref::dequantize_row(GgmlType::Q2_K, out.data(), x.data(), 32), Error);
    // A type the format defines but SparKV has no kernels for.
    EXPECT_THROW(ref::dequantize_row(static_cast<GgmlType>(16), out.data(), x.data(), 256), Error);
}

// vec_dot's integer formulation must equal the dot product of the decoded rows.
TEST(RefVecDot, MatchesDecodedDotProduct) {
    const int64_t n = 512;
    for (GgmlType type : testing::kWeightTypes) {
        const GgmlType act = ref::activation_type(type);
        const auto w = random_floats(n, 3);
        const auto a = random_floats(n, 4);
        std::vector<uint8_t> we(ggml_row_bytes(type, n)), ae(ggml_row_bytes(act, n));
        ref::quantize_row(type, w.data(), we.data(), n);
        ref::quantize_row(act, a.data(), ae.data(), n);
        const auto wd = decode(type, we.data(), n);
        const auto ad = decode(act, ae.data(), n);
        double expect = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
            expect += double(wd[i]) * ad[i];
            mag += std::fabs(double(wd[i]) * ad[i]);
        }
        double tolerance = 1e-6 * mag;
        if (act == GgmlType::Q8_1) {
            // ggml stores s = d * sum(q) rounded to fp16: allow that rounding on the m * s term.
            // m sits right after d in both Q4_1 and Q5_1.
            const auto* ab = reinterpret_cast<const BlockQ8_1*>(ae.data());
            const size_t block_bytes = ggml_traits(type).block_bytes;
            for (int64_t b = 0; b < n / 32; ++b) {
                uint16_t m;
                std::memcpy(&m, we.data() + b * block_bytes + 2, 2);
                tolerance += std::fabs(fp16_to_fp32(m) * fp16_to_fp32(ab[b].s)) / 1024.0;
            }
        }
        EXPECT_NEAR(ref::vec_dot(type, we.data(), ae.data(), n), expect, tolerance)
            << ggml_traits(type).name;
    }
}

}  // namespace
}  // namespace sparkv::kernels
