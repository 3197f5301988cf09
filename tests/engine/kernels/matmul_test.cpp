// Every ISA's matmul against the reference, for every weight type and awkward shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/matmul_driver.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

using testing::make_matrix;
using testing::random_floats;

class MatmulIsa : public ::testing::TestWithParam<Isa> {
  protected:
    const detail::KernelTable& table() const { return detail::kernel_table(GetParam()); }
};

// Both sides encode the activations identically (checked below), so they differ only in float
// summation order: fp32 accumulation of up to a few thousand terms against double. The bound is
// relative to sum |w| |x| of the terms, which covers cancellation.
void expect_matches_reference(const detail::KernelTable& kt, GgmlType type, int64_t rows,
                              int64_t cols, int64_t tokens, ThreadPool& pool, uint32_t seed) {
    const auto w = make_matrix(type, rows, cols, seed);
    const int64_t ldx = cols + 3, ldy = rows + 5;  // strides that are not the row lengths
    const auto x = random_floats(tokens * ldx, seed + 1);
    std::vector<float> got(tokens * ldy, -1.0f), want(tokens * ldy, -1.0f), magnitude(tokens * ldy);
    detail::matmul_with(kt, w.m, x.data(), ldx, tokens, got.data(), ldy, pool);
    ref::matmul(w.m, x.data(), ldx, tokens, want.data(), ldy);
    // |W| |x| for the bound.
    std::vector<float> abs_row(cols);
    for (int64_t r = 0; r < rows; ++r) {
        ref::dequantize_row(type, w.m.data + r * w.m.row_bytes, abs_row.data(), cols);
        for (int64_t t = 0; t < tokens; ++t) {
            double m = 0;
            for (int64_t c = 0; c < cols; ++c) m += std::fabs(abs_row[c] * x[t * ldx + c]);
            magnitude[t * ldy + r] = static_cast<float>(m);
        }
    }
    int failures = 0;
    for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            const float g = got[t * ldy + r], e = want[t * ldy + r];
            const float tol = 2e-6f * std::sqrt(float(cols)) * magnitude[t * ldy + r] + 1e-6f;
            if (!(std::fabs(g - e) <= tol) && failures++ < 5) {
                ADD_FAILURE() << ggml_traits(type).name << " " << rows << "x" << cols << " tokens "
                              << tokens << ": y[" << t << "][" << r << "] = " << g << ", reference "
                              << e << " (tolerance " << tol << ")";
            }
        }
        // Padding between rows of y stays untouched.
        for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(got[t * ldy + r], -1.0f);
    }
}

TEST_P(MatmulIsa, EveryTypeOddShapes) {
    ThreadPool pool(3);
    for (GgmlType type : testing::kWeightTypes) {
        const int64_t block = std::max<int64_t>(32, ggml_traits(type).block_elements);
        for (int64_t tokens : {1, 3, 17}) {
            expect_matches_reference(table(), type, 37, 2 * block, tokens, pool, 100 + tokens);
        }
        expect_matches_reference(table(), type, 19, 3 * 256, 64, pool, 7);
    }
}

TEST_P(MatmulIsa, FloatTypesWithColumnTail) {
    // Float weights have no blocks: columns that are not a multiple of the vector width.
    ThreadPool pool(2);
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
        expect_matches_reference(table(), type, 5, 37, 3, pool, 9);
        expect_matches_reference(table(), type, 9, 13, 1, pool, 10);
    }
}

TEST_P(MatmulIsa, SmolLmShapesManyTokens) {
    // The reference model's projection shapes with a prefill-sized token count, for the types
    // it uses; 1024 tokens in the optimised paths only (the portable one is slow).
    ThreadPool pool(2);
    const int64_t tokens = GetParam() == Isa::portable ? 64 : 1000;
    expect_matches_reference(table(), GgmlType::Q4_1, 192, 576, tokens, pool, 3);
    expect_matches_reference(table(), GgmlType::Q4_1, 77, 1536, tokens, pool, 4);
    expect_matches_reference(table(), GgmlType::Q8_0, 130, 576, tokens / 4, pool, 5);
    expect_matches_reference(table(), GgmlType::Q4_K, 50, 1536, tokens / 4, pool, 6);
}

TEST_P(MatmulIsa, QwenShapesEveryTypeOfItsFile) {
    // Qwen2.5-0.5B's Q4_K_M file mixes Q5_0 and Q8_0 (896-wide rows, not a multiple of 256)
    // with Q4_K and Q6_K (the 4864-wide FFN down projection); prefill-sized and single tokens.
    ThreadPool pool(2);
    const int64_t tokens = GetParam() == Isa::portable ? 16 : 200;
    for (GgmlType type : {GgmlType::Q5_0, GgmlType::Q8_0}) {
        expect_matches_reference(table(), type, 136, 896, tokens, pool, 21);
        expect_matches_reference(table(), type, 136, 896, 1, pool, 22);
    }
    for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K}) {
        expect_matches_reference(table(), type, 40, 4864, tokens / 4, pool, 23);
        expect_matches_reference(table(), type, 40, 4864, 1, pool, 24);
    }
}

TEST_P(MatmulIsa, DecodeSizedProductsOnThePool) {
    // One token against matrices large enough to be split over the threads (GEMV path).
    ThreadPool pool(2);
    expect_matches_reference(table(), GgmlType::Q4_1, 576, 576, 1, pool, 11);
    expect_matches_reference(table(), GgmlType::Q8_0, 4099, 576, 1, pool, 12);
    expect_matches_reference(table(), GgmlType::Q4_K, 1030, 512, 2, pool, 13);
    for (GgmlType type : {GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q2_K,
                          GgmlType::Q3_K, GgmlType::IQ4_XS})
        expect_matches_reference(table(), type, 1030, 512, 1, pool, 14);
}

TEST_P(MatmulIsa, ActivationPackingMatchesReferenceEncoding) {
    ThreadPool pool(1);
    const int64_t cols = 768, tokens = 3;
    auto x = random_floats(tokens * cols, 77);
    x[5] = 0.0f;
    std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero super-block
    x[600] = 1e-3f;
    for (GgmlType act : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K}) {
        detail::ActivationBuffers buf(act, cols, tokens);
        detail::pack_activations(table(), x.data(), cols, buf.packed, pool);
        const auto& p = buf.packed;
        for (int64_t t = 0; t < tokens; ++t) {
            std::vector<uint8_t> enc(ggml_row_bytes(act, cols));
            ref::quantize_row(act, x.data() + t * cols, enc.data(), cols);
            if (act == GgmlType::Q8_K) {
                for (int64_t sb = 0; sb < cols / 256; ++sb) {
                    const auto& b = reinterpret_cast<const BlockQ8_K*>(enc.data())[sb];
                    ASSERT_EQ(std::memcmp(b.qs, p.qs + t * cols + 256 * sb, 256), 0);
                    ASSERT_EQ(b.d, p.d[t * p.d_stride + sb]);
                    for (int g = 0; g < 16; ++g)
                        ASSERT_EQ(b.d * b.bsums[g], p.off16[t * p.off16_stride + 16 * sb + g]);
                }
                continue;
            }
            for (int64_t blk = 0; blk < cols / 32; ++blk) {
                const uint8_t* raw = enc.data() + blk * ggml_traits(act).block_bytes;
                uint16_t d;
                std::memcpy(&d, raw, 2);
                const auto* qs =
                    reinterpret_cast<const int8_t*>(raw + (act == GgmlType::Q8_1 ? 4 : 2));
                ASSERT_EQ(std::memcmp(qs, p.qs + t * cols + 32 * blk, 32), 0)
                    << ggml_traits(act).name;
                ASSERT_EQ(fp16_to_fp32(d), p.d[t * p.d_stride + blk]);
                if (act == GgmlType::Q8_1) {
                    uint16_t s;
                    std::memcpy(&s, raw + 2, 2);
                    ASSERT_EQ(fp16_to_fp32(s), p.off[t * p.off_stride + blk]);
                }
            }
        }
    }
}

TEST_P(MatmulIsa, RejectsBadMatrices) {
    ThreadPool pool(1);
    auto w = make_matrix(GgmlType::Q4_0, 4, 64, 1);
    std::vector<float> x(64), y(4);
    Matrix bad = w.m;
    bad.cols = 48;
    EXPECT_THROW(detail::matmul_with(table(), bad, x.data(), 64, 1, y.data(), 4, pool), Error);
    bad = w.m;
    bad.type = GgmlType::Q8_K;  // an activation encoding, never a weight
    EXPECT_THROW(detail::matmul_with(table(), bad, x.data(), 64, 1, y.data(), 4, pool), Error);
    bad = w.m;
    bad.row_bytes = 10;
    EXPECT_THROW(detail::matmul_with(table(), bad, x.data(), 64, 1, y.data(), 4, pool), Error);
    std::vector<float> x2(128), y2(8);  // two tokens with overlapping rows
    EXPECT_THROW(detail::matmul_with(table(), w.m, x2.data(), 32, 2, y2.data(), 4, pool), Error);
    EXPECT_THROW(detail::matmul_with(table(), w.m, x2.data(), 64, 2, y2.data(), 3, pool), Error);
}

INSTANTIATE_TEST_SUITE_P(Isa, MatmulIsa, ::testing::ValuesIn(testing::runnable_isas()),
                         testing::isa_param_name);

}  // namespace
}  // namespace sparkv::kernels
