// AVX2 GEMM over the memory-mapped GGUF weight blocks (no repacking).
//
// A micro-kernel computes R weight rows x T tokens at once: each weight block is unpacked once
// into a register and multiplied with the T tokens' int8 activations (maddubs + madd), so the
// unpack cost is shared by T tokens and every activation load by R rows. Partial sums are kept
// as 8-lane fp32 accumulators scaled per block (FMA) and reduced once at the end. The offset
// terms (Q4_1's min, Q4_0's -8, the K quants' mins and -32) are dot products of per-block
// weight factors with per-block activation sums, done as separate 8-wide FMAs into the same
// accumulators.
//
// Loop nest per task: 16-row weight panel (its block scales converted to fp32 once) x token
// tiles of 4 x row pairs. The panel's weight bytes and the tile's activations stay in L1.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

constexpr int kMaxR = 4;

// Everything a micro-kernel needs for its R x T rectangle.
struct Tile {
    const uint8_t* rows[kMaxR];  // weight rows
    const float* wd[kMaxR];      // legacy types: per-block fp32 scale of each row
    const float* woff[kMaxR];    // legacy types: per-block offset factor of each row
    const PackedActivations* a;
    int64_t t;  // first token
    int64_t r;  // first row
    float* y;
    int64_t ldy;
};

template <int R, int T>
inline void store_tile(const Tile& tile, __m256 (&acc)[R][T]) {
    SPARKV_UNROLL
    for (int j = 0; j < T; ++j) {
        SPARKV_UNROLL
        for (int i = 0; i < R; ++i) tile.y[(tile.t + j) * tile.ldy + tile.r + i] = hsum(acc[i][j]);
    }
}

template <int R, int T>
inline void zero(__m256 (&acc)[R][T]) {
    SPARKV_UNROLL
    for (int i = 0; i < R; ++i) {
        SPARKV_UNROLL
        for (int j = 0; j < T; ++j) acc[i][j] = _mm256_setzero_ps();
    }
}

// ---- Q4_0 / Q4_1 / Q8_0 (32-element blocks, activations Q8_0 / Q8_1) ----

template <GgmlType kType>
struct Legacy {
    static constexpr size_t kBlockBytes = kType == GgmlType::Q4_1   ? sizeof(BlockQ4_1)
                                          : kType == GgmlType::Q4_0 ? sizeof(BlockQ4_0)
                                                                    : sizeof(BlockQ8_0);
    static constexpr size_t kQuantOffset = kType == GgmlType::Q4_1 ? 4 : 2;
    static constexpr bool kHasOffset = kType != GgmlType::Q8_0;

    // fp32 block scale and offset factor: Q4_0 stores q + 8, so its offset factor is -8 d.
    // One scalar F16C conversion per field: gathering eight fields into a vector first costs a
    // store-forwarding stall per group (measured: the slowest step of decode).
    static void convert_scales(const uint8_t* row, int64_t nb, int64_t nb_pad, float* wd,
                               float* woff) {
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = row + b * kBlockBytes;
            const float d = half_at(blk);
            wd[b] = d;
            woff[b] = kType == GgmlType::Q4_1 ? half_at(blk + 2) : -8.0f * d;
        }
        for (int64_t b = nb; b < nb_pad; ++b) wd[b] = woff[b] = 0.0f;  // kernels read 8 at a time
    }

    static float half_at(const uint8_t* p) {  // block fields are not 2-byte aligned
        uint16_t h;
        std::memcpy(&h, p, 2);
        return half_to_float(h);
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
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        __m256 acc[R][T];
        zero(acc);
        for (int64_t b = 0; b < nb; ++b) {
            __m256i w[R], wsign[R];
            __m256 dw[R];
            SPARKV_UNROLL
            for (int i = 0; i < R; ++i) {
                const uint8_t* q = tile.rows[i] + b * kBlockBytes + kQuantOffset;
                if constexpr (kType == GgmlType::Q8_0) {
                    wsign[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
                    w[i] = _mm256_sign_epi8(wsign[i], wsign[i]);  // |w|; the sign moves to x
                } else {
                    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
                    w[i] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), low4);
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
                    if constexpr (kType == GgmlType::Q8_0) {
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

// ---- K quants (256-element super-blocks, activations Q8_K) ----

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
            SPARKV_UNROLL
            for (int j = 0; j < T; ++j) {
                const float da = a.d[(tile.t + j) * a.d_stride + sb];
                const float* off = a.off16 + (tile.t + j) * a.off16_stride + 16 * sb;
                const __m256 off0 = _mm256_loadu_ps(off), off1 = _mm256_loadu_ps(off + 8);
                SPARKV_UNROLL
                for (int i = 0; i < R; ++i) {
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]),
                                                _mm256_set1_ps(dw[i] * da), acc[i][j]);
                    acc[i][j] = _mm256_fnmadd_ps(woff[i][0], off0, acc[i][j]);
                    acc[i][j] = _mm256_fnmadd_ps(woff[i][1], off1, acc[i][j]);
                }
            }
        }
        store_tile(tile, acc);
    }
};

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

// ---- tiling ----

template <typename K, int R, int T>
void call_tile(const Tile& tile) {
    K::template run<R, T>(tile);
}

// Micro-kernel shapes: 2 rows x up to 4 tokens for GEMM; 4 rows x 1 token for GEMV, where
// there is no token reuse and more rows in flight hide the memory latency.
template <typename K>
void run_tile(int nr, int nt, const Tile& tile) {
    using Fn = void (*)(const Tile&);
    static constexpr Fn kGemm[2][4] = {
        {call_tile<K, 1, 1>, call_tile<K, 1, 2>, call_tile<K, 1, 3>, call_tile<K, 1, 4>},
        {call_tile<K, 2, 1>, call_tile<K, 2, 2>, call_tile<K, 2, 3>, call_tile<K, 2, 4>}};
    static constexpr Fn kGemv[4] = {call_tile<K, 1, 1>, call_tile<K, 2, 1>, call_tile<K, 3, 1>,
                                    call_tile<K, 4, 1>};
    if (nt == 1) {
        kGemv[nr - 1](tile);
    } else {
        kGemm[nr - 1][nt - 1](tile);
    }
}

constexpr int kTileTokens = 4;

// Legacy types convert each panel's block scales to fp32 first; other types pass through.
template <typename K, bool kLegacy>
void gemm_type(const GemmTask& task) {
    const Matrix& w = *task.w;
    const int64_t nb = w.cols / 32;
    const int64_t nb_pad = (nb + 7) / 8 * 8;
    const bool gemv = task.t1 - task.t0 == 1;
    const int64_t row_step = gemv ? 4 : 2;
    Tile tile{};
    tile.a = task.a;
    tile.y = task.y;
    tile.ldy = task.ldy;
    for (int64_t p0 = task.r0; p0 < task.r1; p0 += kGemmPanelRows) {
        const int64_t p1 = std::min(task.r1, p0 + kGemmPanelRows);
        float* wd = task.scratch;
        float* woff = task.scratch + kGemmPanelRows * nb_pad;
        if constexpr (kLegacy) {
            for (int64_t r = p0; r < p1; ++r) {
                K::convert_scales(w.data + r * w.row_bytes, nb, nb_pad, wd + (r - p0) * nb_pad,
                                  woff + (r - p0) * nb_pad);
            }
        }
        for (int64_t t = task.t0; t < task.t1; t += kTileTokens) {
            const int nt = static_cast<int>(std::min<int64_t>(kTileTokens, task.t1 - t));
            tile.t = t;
            for (int64_t r = p0; r < p1; r += row_step) {
                const int nr = static_cast<int>(std::min(row_step, p1 - r));
                tile.r = r;
                for (int i = 0; i < nr; ++i) {
                    tile.rows[i] = w.data + (r + i) * w.row_bytes;
                    tile.wd[i] = wd + (r + i - p0) * nb_pad;
                    tile.woff[i] = woff + (r + i - p0) * nb_pad;
                }
                run_tile<K>(nr, nt, tile);
            }
        }
    }
}

}  // namespace

void gemm(const GemmTask& task) {
    if (gemm_panel(task)) return;
    switch (task.w->type) {
        case GgmlType::Q4_0:
            return gemm_type<Legacy<GgmlType::Q4_0>, true>(task);
        case GgmlType::Q4_1:
            return gemm_type<Legacy<GgmlType::Q4_1>, true>(task);
        case GgmlType::Q8_0:
            return gemm_type<Legacy<GgmlType::Q8_0>, true>(task);
        case GgmlType::Q4_K:
            return gemm_type<KAffine<GgmlType::Q4_K>, false>(task);
        case GgmlType::Q5_K:
            return gemm_type<KAffine<GgmlType::Q5_K>, false>(task);
        case GgmlType::Q6_K:
            return gemm_type<Q6K, false>(task);
        case GgmlType::F16:
            return gemm_type<FloatWeights<GgmlType::F16>, false>(task);
        case GgmlType::BF16:
            return gemm_type<FloatWeights<GgmlType::BF16>, false>(task);
        default:
            return gemm_type<FloatWeights<GgmlType::F32>, false>(task);
    }
}

}  // namespace sparkv::kernels::detail::avx2
