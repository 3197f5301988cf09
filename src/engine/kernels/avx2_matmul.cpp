// AVX2 GEMM for float weights (F32, F16, BF16; activations rounded to the same type, fp32 FMA)
// and the AVX2 gemm entry point, which hands each weight type to its kernel family.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_gemm_tile.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

// ---- F32 / F16 / BF16 weights (activations rounded to the same type, fp32 FMA) ----

template <GgmlType kType>
struct FloatWeights {
    static __m256 load8(const uint8_t* row, int64_t c) {
        if constexpr (kType == GgmlType::F32) {
            return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
        } else {
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c));
            if constexpr (kType == GgmlType::F16) return _mm256_cvtph_ps(h);
            return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        }
    }
    static float load1(const uint8_t* row, int64_t c) {
        if constexpr (kType == GgmlType::F32) return reinterpret_cast<const float*>(row)[c];
        uint16_t h;
        std::memcpy(&h, row + 2 * c, 2);
        if constexpr (kType == GgmlType::F16) return half_to_float(h);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }

    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const float* x[T];
        SPARKV_UNROLL
        for (int j = 0; j < T; ++j) x[j] = a.values + (tile.t + j) * a.cols;
        __m256 acc[R][T];
        zero(acc);
        int64_t c = 0;
        for (; c + 8 <= a.cols; c += 8) {
            __m256 w[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) w[i] = load8(tile.rows[i], c);
            SPARKV_UNROLL
            for (int j = 0; j < T; ++j) {
                const __m256 xv = _mm256_loadu_ps(x[j] + c);
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(w[i], xv, acc[i][j]);
            }
        }
        SPARKV_UNROLL
        for (int j = 0; j < T; ++j) {
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                float tail = 0.0f;
                for (int64_t k = c; k < a.cols; ++k) tail += load1(tile.rows[i], k) * x[j][k];
                tile.y[(tile.t + j) * tile.ldy + tile.r + i] = hsum(acc[i][j]) + tail;
            }
        }
    }
};

}  // namespace

void gemm(const GemmTask& task) {
    if (gemm_panel(task) || gemm_legacy(task) || gemm_kquant(task)) return;
    switch (task.w->type) {
        case GgmlType::F16:
            return gemm_type<FloatWeights<GgmlType::F16>, false>(task);
        case GgmlType::BF16:
            return gemm_type<FloatWeights<GgmlType::BF16>, false>(task);
        case GgmlType::F32:
            return gemm_type<FloatWeights<GgmlType::F32>, false>(task);
        default:
            break;
    }
    // matmul's validation admits only types some kernel above handles.
    std::abort();
}

}  // namespace sparkv::kernels::detail::avx2
