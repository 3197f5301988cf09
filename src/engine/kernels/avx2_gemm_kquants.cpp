// AVX2 GEMM / GEMV kernels for the 256-element super-block types on the mapped GGUF blocks:
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS (activations Q8_K). See avx2_gemm_tile.h for the
// tiling. Sub-block scales multiply the integer sums (madd); the min / bias terms are dot
// products with the activations' 16- or 32-element sums.
#include <immintrin.h>

#include <type_traits>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_gemm_tile.h"
#include "engine/kernels/avx2_kernels.h"
#include "engine/kernels/reference_blocks.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

// The eight 6-bit sub-block scales and mins of a Q4_K / Q5_K super-block.
inline void k_scales(const uint8_t* s, int16_t* scale, float* min) {
    for (int j = 0; j < 4; ++j) {
        scale[j] = static_cast<int16_t>(s[j] & 63);
        min[j] = static_cast<float>(s[j + 4] & 63);
        scale[j + 4] = static_cast<int16_t>((s[j + 8] & 0x0f) | ((s[j] >> 6) << 4));
        min[j + 4] = static_cast<float>((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

template <GgmlType kType>
struct KAffine {  // Q4_K and Q5_K: x = d * scale_j * q - dmin * min_j
    using Block = std::conditional_t<kType == GgmlType::Q4_K, BlockQ4_K, BlockQ5_K>;

    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const int64_t nsb = a.cols / 256;
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        const __m256i bit0 = _mm256_set1_epi8(0x01);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const Block* blk[R];
            alignas(32) int16_t scale[R][8];
            __m256 mins[R];
            float dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                blk[i] = reinterpret_cast<const Block*>(tile.rows[i]) + sb;
                alignas(32) float m[8];
                k_scales(blk[i]->scales, scale[i], m);
                mins[i] =
                    _mm256_mul_ps(_mm256_set1_ps(half_to_float(blk[i]->dmin)), _mm256_load_ps(m));
                dw[i] = half_to_float(blk[i]->d);
            }
            __m256i isum[R][T];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) isum[i][j] = _mm256_setzero_si256();
            }
            SPARKV_UNROLL
            for (int c = 0; c < 4; ++c) {  // 64 elements: sub-block 2c in low nibbles, 2c+1 high
                __m256i lo[R], hi[R], slo[R], shi[R];
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    const __m256i q =
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i]->qs + 32 * c));
                    lo[i] = _mm256_and_si256(q, low4);
                    hi[i] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
                    if constexpr (kType == GgmlType::Q5_K) {
                        const __m256i qh =
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i]->qh));
                        const __m256i hb_lo = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), bit0);
                        const __m256i hb_hi =
                            _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), bit0);
                        lo[i] = _mm256_or_si256(lo[i], _mm256_slli_epi16(hb_lo, 4));
                        hi[i] = _mm256_or_si256(hi[i], _mm256_slli_epi16(hb_hi, 4));
                    }
                    slo[i] = _mm256_set1_epi16(scale[i][2 * c]);
                    shi[i] = _mm256_set1_epi16(scale[i][2 * c + 1]);
                }
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) {
                    const int8_t* x = a.qs + (tile.t + j) * a.cols + 256 * sb + 64 * c;
                    const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
                    const __m256i xhi =
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32));
                    SPARKV_UNROLL
                    for (int i = 0; i < R; ++i) {
                        const __m256i plo =
                            _mm256_madd_epi16(_mm256_maddubs_epi16(lo[i], xlo), slo[i]);
                        const __m256i phi =
                            _mm256_madd_epi16(_mm256_maddubs_epi16(hi[i], xhi), shi[i]);
                        isum[i][j] = _mm256_add_epi32(isum[i][j], _mm256_add_epi32(plo, phi));
                    }
                }
            }
            SPARKV_UNROLL
            for (int j = 0; j < T; ++j) {
                const float da = a.d[(tile.t + j) * a.d_stride + sb];
                const __m256 off = _mm256_loadu_ps(a.off + (tile.t + j) * a.off_stride + 8 * sb);
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]),
                                                _mm256_set1_ps(dw[i] * da), acc[i][j]);
                    acc[i][j] = _mm256_fnmadd_ps(mins[i], off, acc[i][j]);
                }
            }
        }
        store_tile(tile, acc);
    }
};

// Adds one super-block of a 16-element-sub-block type: the integer sums (already weighted by the
// sub-block scales) times d * d_x, minus woff . (d_x * bsum16) for the 16 sub-blocks.
template <int R, int T>
inline void finish_16(const Tile& tile, int64_t sb, const float (&dw)[R],
                      const __m256 (&woff)[R][2], const __m256i (&isum)[R][T],
                      __m256 (&acc)[R][T]) {
    const PackedActivations& a = *tile.a;
    SPARKV_UNROLL
    for (int j = 0; j < T; ++j) {
        const float da = a.d[(tile.t + j) * a.d_stride + sb];
        const float* off = a.off16 + (tile.t + j) * a.off16_stride + 16 * sb;
        const __m256 off0 = _mm256_loadu_ps(off), off1 = _mm256_loadu_ps(off + 8);
        SPARKV_UNROLL
        for (int i = 0; i < R; ++i) {
            acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]), _mm256_set1_ps(dw[i] * da),
                                        acc[i][j]);
            acc[i][j] = _mm256_fnmadd_ps(woff[i][0], off0, acc[i][j]);
            acc[i][j] = _mm256_fnmadd_ps(woff[i][1], off1, acc[i][j]);
        }
    }
}

struct Q6K {  // x = d * scale_j * (q - 32), 16-element sub-blocks with int8 scales
    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const int64_t nsb = a.cols / 256;
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        const __m256i low2 = _mm256_set1_epi8(0x03);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const BlockQ6_K* blk[R];
            __m256 woff[R][2];  // 32 * d * scale_j: the -32 offset against the 16-element sums
            float dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                blk[i] = reinterpret_cast<const BlockQ6_K*>(tile.rows[i]) + sb;
                dw[i] = half_to_float(blk[i]->d);
                const __m128i sc8 =
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[i]->scales));
                const __m256 f = _mm256_set1_ps(32.0f * dw[i]);
                woff[i][0] = _mm256_mul_ps(f, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8)));
                woff[i][1] = _mm256_mul_ps(
                    f, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8))));
            }
            __m256i isum[R][T];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) isum[i][j] = _mm256_setzero_si256();
            }
            SPARKV_UNROLL
            for (int h = 0; h < 2; ++h) {
                SPARKV_UNROLL
                for (int k = 0; k < 4; ++k) {  // 32 elements 128h + 32k .. +31
                    __m256i w[R], sc[R];
                    SPARKV_UNROLL
                    for (int i = 0; i < R; ++i) {
                        const uint8_t* ql = blk[i]->ql + 64 * h + 32 * (k & 1);
                        const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
                        const __m256i lo = k < 2 ? _mm256_and_si256(l, low4)
                                                 : _mm256_and_si256(_mm256_srli_epi16(l, 4), low4);
                        const __m256i qh = _mm256_loadu_si256(
                            reinterpret_cast<const __m256i*>(blk[i]->qh + 32 * h));
                        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), low2);
                        w[i] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
                        const int s = 8 * h + 2 * k;
                        sc[i] = _mm256_set_m128i(_mm_set1_epi16(blk[i]->scales[s + 1]),
                                                 _mm_set1_epi16(blk[i]->scales[s]));
                    }
                    SPARKV_UNROLL
                    for (int j = 0; j < T; ++j) {
                        const int8_t* x =
                            a.qs + (tile.t + j) * a.cols + 256 * sb + 128 * h + 32 * k;
                        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
                        SPARKV_UNROLL
                        for (int i = 0; i < R; ++i) {
                            const __m256i p =
                                _mm256_madd_epi16(_mm256_maddubs_epi16(w[i], xv), sc[i]);
                            isum[i][j] = _mm256_add_epi32(isum[i][j], p);
                        }
                    }
                }
            }
            finish_16<R, T>(tile, sb, dw, woff, isum, acc);
        }
        store_tile(tile, acc);
    }
};

struct Q2K {  // x = d * (sc_j & 15) * q - dmin * (sc_j >> 4), 16-element sub-blocks j
    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const int64_t nsb = a.cols / 256;
        const __m256i low2 = _mm256_set1_epi8(0x03);
        const __m128i low4 = _mm_set1_epi8(0x0f);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const BlockQ2_K* blk[R];
            __m256 wmin[R][2];  // dmin * min_j
            float dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                blk[i] = reinterpret_cast<const BlockQ2_K*>(tile.rows[i]) + sb;
                dw[i] = half_to_float(blk[i]->d);
                const __m128i m8 = _mm_and_si128(
                    _mm_srli_epi16(
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[i]->scales)), 4),
                    low4);
                const __m256 f = _mm256_set1_ps(half_to_float(blk[i]->dmin));
                wmin[i][0] = _mm256_mul_ps(f, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m8)));
                wmin[i][1] = _mm256_mul_ps(
                    f, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(m8, 8))));
            }
            __m256i isum[R][T];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) isum[i][j] = _mm256_setzero_si256();
            }
            SPARKV_UNROLL
            for (int k = 0; k < 8; ++k) {  // 32 elements 32k .. 32k + 31: sub-blocks 2k, 2k + 1
                __m256i w[R], sc[R];
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    const __m256i q = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(blk[i]->qs + 32 * (k / 4)));
                    w[i] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (k % 4)), low2);
                    sc[i] = _mm256_set_m128i(_mm_set1_epi16(blk[i]->scales[2 * k + 1] & 15),
                                             _mm_set1_epi16(blk[i]->scales[2 * k] & 15));
                }
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) {
                    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                        a.qs + (tile.t + j) * a.cols + 256 * sb + 32 * k));
                    SPARKV_UNROLL
                    for (int i = 0; i < R; ++i) {
                        isum[i][j] = _mm256_add_epi32(
                            isum[i][j], _mm256_madd_epi16(_mm256_maddubs_epi16(w[i], x), sc[i]));
                    }
                }
            }
            finish_16<R, T>(tile, sb, dw, wmin, isum, acc);
        }
        store_tile(tile, acc);
    }
};

struct Q3K {  // x = d * (sc_j - 32) * (u - 4), u = 2 low bits | hmask bit << 2, 16-element j
    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const int64_t nsb = a.cols / 256;
        const __m256i low2 = _mm256_set1_epi8(0x03);
        const __m256i bit0 = _mm256_set1_epi8(0x01);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const BlockQ3_K* blk[R];
            alignas(32) int16_t scale[R][16];
            __m256 woff[R][2];  // 4 * d * scale_j: the -4 offset against the 16-element sums
            float dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                blk[i] = reinterpret_cast<const BlockQ3_K*>(tile.rows[i]) + sb;
                dw[i] = half_to_float(blk[i]->d);
                for (int s = 0; s < 16; ++s)
                    scale[i][s] = static_cast<int16_t>(blocks::q3_k_scale(*blk[i], s));
                const __m256i s16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(scale[i]));
                const __m256 f = _mm256_set1_ps(4.0f * dw[i]);
                woff[i][0] = _mm256_mul_ps(
                    f, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(s16))));
                woff[i][1] = _mm256_mul_ps(
                    f, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(s16, 1))));
            }
            __m256i isum[R][T];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) isum[i][j] = _mm256_setzero_si256();
            }
            SPARKV_UNROLL
            for (int k = 0; k < 8; ++k) {
                __m256i w[R], sc[R];
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    const __m256i q = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(blk[i]->qs + 32 * (k / 4)));
                    const __m256i hm =
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i]->hmask));
                    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, k), bit0);
                    w[i] =
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * (k % 4)), low2),
                                        _mm256_slli_epi16(high, 2));
                    sc[i] = _mm256_set_m128i(_mm_set1_epi16(scale[i][2 * k + 1]),
                                             _mm_set1_epi16(scale[i][2 * k]));
                }
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) {
                    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                        a.qs + (tile.t + j) * a.cols + 256 * sb + 32 * k));
                    SPARKV_UNROLL
                    for (int i = 0; i < R; ++i) {
                        isum[i][j] = _mm256_add_epi32(
                            isum[i][j], _mm256_madd_epi16(_mm256_maddubs_epi16(w[i], x), sc[i]));
                    }
                }
            }
            finish_16<R, T>(tile, sb, dw, woff, isum, acc);
        }
        store_tile(tile, acc);
    }
};

struct IQ4XS {  // x = d * (ls_j - 32) * level, 32-element sub-blocks j
    template <int R, int T>
    static void run(const Tile& tile) {
        const PackedActivations& a = *tile.a;
        const int64_t nsb = a.cols / 256;
        const __m256i table = _mm256_broadcastsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const BlockIQ4_XS* blk[R];
            float dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                blk[i] = reinterpret_cast<const BlockIQ4_XS*>(tile.rows[i]) + sb;
                dw[i] = half_to_float(blk[i]->d);
            }
            __m256i isum[R][T];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) isum[i][j] = _mm256_setzero_si256();
            }
            SPARKV_UNROLL
            for (int k = 0; k < 8; ++k) {
                __m256i w[R], wsign[R], sc[R];
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    const __m128i b =
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[i]->qs + 16 * k));
                    const __m256i nib =
                        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), low4);
                    wsign[i] = _mm256_shuffle_epi8(table, nib);
                    w[i] = _mm256_sign_epi8(wsign[i], wsign[i]);
                    sc[i] =
                        _mm256_set1_epi16(static_cast<int16_t>(blocks::iq4_xs_scale(*blk[i], k)));
                }
                SPARKV_UNROLL
                for (int j = 0; j < T; ++j) {
                    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                        a.qs + (tile.t + j) * a.cols + 256 * sb + 32 * k));
                    SPARKV_UNROLL
                    for (int i = 0; i < R; ++i) {
                        const __m256i p = _mm256_maddubs_epi16(w[i], _mm256_sign_epi8(x, wsign[i]));
                        isum[i][j] = _mm256_add_epi32(isum[i][j], _mm256_madd_epi16(p, sc[i]));
                    }
                }
            }
            SPARKV_UNROLL
            for (int j = 0; j < T; ++j) {
                const float da = a.d[(tile.t + j) * a.d_stride + sb];
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]),
                                                _mm256_set1_ps(dw[i] * da), acc[i][j]);
                }
            }
        }
        store_tile(tile, acc);
    }
};

}  // namespace

bool gemm_kquant(const GemmTask& task) {
    switch (task.w->type) {
        case GgmlType::Q2_K:
            gemm_type<Q2K, false>(task);
            return true;
        case GgmlType::Q3_K:
            gemm_type<Q3K, false>(task);
            return true;
        case GgmlType::Q4_K:
            gemm_type<KAffine<GgmlType::Q4_K>, false>(task);
            return true;
        case GgmlType::Q5_K:
            gemm_type<KAffine<GgmlType::Q5_K>, false>(task);
            return true;
        case GgmlType::Q6_K:
            gemm_type<Q6K, false>(task);
            return true;
        case GgmlType::IQ4_XS:
            gemm_type<IQ4XS, false>(task);
            return true;
        default:
            return false;
    }
}

}  // namespace sparkv::kernels::detail::avx2
