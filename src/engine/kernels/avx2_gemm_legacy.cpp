// AVX2 GEMM / GEMV kernels for the 32-element block types on the mapped GGUF blocks: Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, IQ4_NL (activations Q8_0, or Q8_1 for Q4_1 / Q5_1). See avx2_gemm_tile.h
// for the tiling.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_gemm_tile.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

// Byte i of the result is 0x10 when bit i of the 32-bit field at p is set (Q5's fifth bits).
inline __m256i q5_high_bits(const uint8_t* p) {
    uint32_t bits;
    std::memcpy(&bits, p, 4);
    // Low 128-bit lane: elements 0..15 read bytes 0 and 1; high lane: 16..31 read bytes 2, 3.
    const __m256i select = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), select);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Elements 0..31 of a 32-element nibble block (low nibbles are 0..15, high nibbles 16..31).
inline __m256i nibbles(const uint8_t* qs) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0f));
}

template <GgmlType kType>
struct Legacy {
    using Block = std::conditional_t<
        kType == GgmlType::Q4_0, BlockQ4_0,
        std::conditional_t<
            kType == GgmlType::Q4_1, BlockQ4_1,
            std::conditional_t<kType == GgmlType::Q5_0, BlockQ5_0,
                               std::conditional_t<kType == GgmlType::Q5_1, BlockQ5_1,
                                                  std::conditional_t<kType == GgmlType::Q8_0,
                                                                     BlockQ8_0, BlockIQ4_NL>>>>>;
    static constexpr size_t kBlockBytes = sizeof(Block);
    static constexpr bool kAffine = kType == GgmlType::Q4_1 || kType == GgmlType::Q5_1;
    // Signed weights (Q8_0, IQ4_NL's levels) go through maddubs as |w| with w's sign moved onto
    // the activations; the others are unsigned quants with an offset term.
    static constexpr bool kSigned = kType == GgmlType::Q8_0 || kType == GgmlType::IQ4_NL;
    static constexpr bool kHasOffset = !kSigned;
    static constexpr float kBias = kType == GgmlType::Q4_0 ? 8.0f : 16.0f;  // Q4_0 / Q5_0

    // fp32 block scale and offset factor (Q4_1 / Q5_1: m; Q4_0 / Q5_0: -bias * d). One scalar
    // F16C conversion per field: gathering eight fields into a vector first costs a
    // store-forwarding stall per group (measured: the slowest step of decode).
    static void convert_scales(const uint8_t* row, int64_t nb, int64_t nb_pad, float* wd,
                               float* woff) {
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = row + b * kBlockBytes;
            const float d = half_at(blk);
            wd[b] = d;
            if constexpr (kAffine) {
                woff[b] = half_at(blk + 2);
            } else if constexpr (kHasOffset) {
                woff[b] = -kBias * d;
            }
        }
        for (int64_t b = nb; b < nb_pad; ++b) wd[b] = woff[b] = 0.0f;  // kernels read 8 at a time
    }

    static float half_at(const uint8_t* p) {  // block fields are not 2-byte aligned
        uint16_t h;
        std::memcpy(&h, p, 2);
        return half_to_float(h);
    }

    // The block's 32 quants as bytes in element order (signed levels for kSigned types).
    static __m256i weights(const uint8_t* blk) {
        const auto* b = reinterpret_cast<const Block*>(blk);
        if constexpr (kType == GgmlType::Q8_0) {
            return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
        } else if constexpr (kType == GgmlType::IQ4_NL) {
            const __m256i table = _mm256_broadcastsi128_si256(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
            return _mm256_shuffle_epi8(table, nibbles(b->qs));
        } else if constexpr (kType == GgmlType::Q5_0 || kType == GgmlType::Q5_1) {
            return _mm256_or_si256(nibbles(b->qs), q5_high_bits(b->qh));
        } else {
            return nibbles(b->qs);
        }
    }

    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const int64_t nb = a.cols / 32;
        const int8_t* aq[T];
        const float* ad[T];
        SPARKV_UNROLL
        for (int j = 0; j < T; ++j) {
            aq[j] = a.qs + (tile.t + j) * a.cols;
            ad[j] = a.d + (tile.t + j) * a.d_stride;
        }
        const __m256i ones = _mm256_set1_epi16(1);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t b = 0; b < nb; ++b) {
            __m256i w[R], wsign[R];
            __m256 dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                const __m256i q = weights(tile.rows[i] + b * kBlockBytes);
                if constexpr (kSigned) {
                    wsign[i] = q;
                    w[i] = _mm256_sign_epi8(q, q);  // |w|; the sign moves to x
                } else {
                    w[i] = q;
                }
                dw[i] = _mm256_broadcast_ss(tile.wd[i] + b);
            }
            SPARKV_UNROLL
            for (int j = 0; j < T; ++j) {
                const __m256i x =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(aq[j] + 32 * b));
                const __m256 dx = _mm256_broadcast_ss(ad[j] + b);
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    __m256i p;
                    if constexpr (kSigned) {
                        p = _mm256_maddubs_epi16(w[i], _mm256_sign_epi8(x, wsign[i]));
                    } else {
                        p = _mm256_maddubs_epi16(w[i], x);
                    }
                    const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                    acc[i][j] = _mm256_fmadd_ps(f, _mm256_mul_ps(dw[i], dx), acc[i][j]);
                }
            }
        }
        if constexpr (kHasOffset) {
            for (int64_t b = 0; b < nb; b += 8) {  // arrays are zero-padded to 8
                __m256 wo[R];
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) wo[i] = _mm256_loadu_ps(tile.woff[i] + b);
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) {
                    const __m256 ao = _mm256_loadu_ps(a.off + (tile.t + j) * a.off_stride + b);
                    SPARKV_UNROLL
                    for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(wo[i], ao, acc[i][j]);
                }
            }
        }
        store_tile(tile, acc);
    }
};

}  // namespace

bool gemm_legacy(const GemmTask& task) {
    switch (task.w->type) {
        case GgmlType::Q4_0:
            gemm_type<Legacy<GgmlType::Q4_0>, true>(task);
            return true;
        case GgmlType::Q4_1:
            gemm_type<Legacy<GgmlType::Q4_1>, true>(task);
            return true;
        case GgmlType::Q5_0:
            gemm_type<Legacy<GgmlType::Q5_0>, true>(task);
            return true;
        case GgmlType::Q5_1:
            gemm_type<Legacy<GgmlType::Q5_1>, true>(task);
            return true;
        case GgmlType::Q8_0:
            gemm_type<Legacy<GgmlType::Q8_0>, true>(task);
            return true;
        case GgmlType::IQ4_NL:
            gemm_type<Legacy<GgmlType::IQ4_NL>, true>(task);
            return true;
        default:
            return false;
    }
}

}  // namespace sparkv::kernels::detail::avx2
