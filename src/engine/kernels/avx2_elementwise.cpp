// AVX2 activation encoding, normalisation, rotary embedding, SwiGLU and fp16 rows.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

// Q8_0 / Q8_1 exactly as ggml's AVX2 quantize_row_q8_0/_1: scale amax / 127, multiply by
// 127 / amax, round half to even, saturate.
void pack_q8_blocks(const float* x, int64_t cols, bool q8_1, int8_t* qs, float* d, float* off) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < cols / 32; ++b, x += 32) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 amax = _mm256_max_ps(_mm256_andnot_ps(sign_bit, v0), _mm256_andnot_ps(sign_bit, v1));
        amax = _mm256_max_ps(
            amax, _mm256_max_ps(_mm256_andnot_ps(sign_bit, v2), _mm256_andnot_ps(sign_bit, v3)));
        const float max_scalar = hmax(amax);
        const float scale = max_scalar / 127.0f;
        const __m256 mul = _mm256_set1_ps(max_scalar != 0.0f ? 127.0f / max_scalar : 0.0f);
        constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), kRound));
        const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), kRound));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), kRound));
        const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), kRound));
        const __m256i sum4 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum4), _mm256_extracti128_si256(sum4, 1));
        s = _mm_hadd_epi32(s, s);
        s = _mm_hadd_epi32(s, s);
        const int sum = _mm_cvtsi128_si32(s);
        // Pack to int8; the pack instructions interleave 128-bit lanes, the permute restores order.
        const __m256i p =
            _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        const __m256i ordered =
            _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + 32 * b), ordered);
        d[b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
        off[b] =
            q8_1 ? _cvtsh_ss(_cvtss_sh(scale * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT))
                 : d[b] * static_cast<float>(sum);
    }
}

// Q8_K as ggml's quantize_row_q8_K_ref: the first element of largest magnitude maps to -127.
void pack_q8_k(const float* x, int64_t cols, int8_t* qs, float* d, float* off32, float* off16) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int64_t sb = 0; sb < cols / 256; ++sb, x += 256, qs += 256) {
        __m256 amax_v = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8)
            amax_v = _mm256_max_ps(amax_v, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(x + j)));
        const float amax = hmax(amax_v);
        if (amax == 0.0f) {
            std::memset(qs, 0, 256);
            d[sb] = 0.0f;
            for (int j = 0; j < 8; ++j) off32[8 * sb + j] = 0.0f;
            for (int j = 0; j < 16; ++j) off16[16 * sb + j] = 0.0f;
            continue;
        }
        int first = 0;
        while (std::fabs(x[first]) != amax) ++first;
        const float iscale = -127.0f / x[first];
        const __m256 mul = _mm256_set1_ps(iscale);
        const __m256i max127 = _mm256_set1_epi32(127);
        for (int j = 0; j < 256; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), mul);
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(v), max127);  // cvtps rounds to even
            }
            const __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256(
                reinterpret_cast<__m256i*>(qs + j),
                _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
        const float scale = 1.0f / iscale;
        d[sb] = scale;
        int bsum[16];
        for (int g = 0; g < 16; ++g) {
            // Sum of 16 int8: widen to int16, madd with ones, reduce.
            const __m256i w = _mm256_cvtepi8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * g)));
            const __m256i s32 = _mm256_madd_epi16(w, _mm256_set1_epi16(1));
            __m128i s =
                _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            s = _mm_hadd_epi32(s, s);
            s = _mm_hadd_epi32(s, s);
            bsum[g] = _mm_cvtsi128_si32(s);
            off16[16 * sb + g] = scale * static_cast<float>(bsum[g]);
        }
        for (int j = 0; j < 8; ++j)
            off32[8 * sb + j] = scale * static_cast<float>(bsum[2 * j] + bsum[2 * j + 1]);
    }
}

void round_f16(const float* x, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) out[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void round_bf16(const float* x, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        uint32_t u;
        std::memcpy(&u, &x[i], 4);
        uint32_t r;
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            r = (u | 0x00400000u) & 0xffff0000u;  // quiet NaN, as ggml's conversion
        } else {
            r = ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16;
        }
        std::memcpy(&out[i], &r, 4);
    }
}

}  // namespace

void pack_activations(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                      const PackedActivations& a) {
    for (int64_t t = t0; t < t1; ++t) {
        const float* xt = x + t * ldx;
        switch (a.type) {
            case GgmlType::Q8_0:
            case GgmlType::Q8_1:
                pack_q8_blocks(xt, a.cols, a.type == GgmlType::Q8_1, a.qs + t * a.cols,
                               a.d + t * a.d_stride, a.off + t * a.off_stride);
                break;
            case GgmlType::Q8_K:
                pack_q8_k(xt, a.cols, a.qs + t * a.cols, a.d + t * a.d_stride,
                          a.off + t * a.off_stride, a.off16 + t * a.off16_stride);
                break;
            case GgmlType::F16:
                round_f16(xt, a.values + t * a.cols, a.cols);
                break;
            case GgmlType::BF16:
                round_bf16(xt, a.values + t * a.cols, a.cols);
                break;
            default:
                std::memcpy(a.values + t * a.cols, xt, sizeof(float) * a.cols);
                break;
        }
    }
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
    // Squares in float, sum in double, like ggml (which sums sequentially; the order only moves
    // the double's last bits).
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 sq = _mm256_mul_ps(v, v);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; ++i) sum += double(x[i] * x[i]);
    const float mean = static_cast<float>(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(v, _mm256_loadu_ps(weight + i)));
    }
    for (; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& p) {
    alignas(32) float cache[kMaxRopeDims];
    alignas(32) float cos_v[kMaxRopeDims / 2], sin_v[kMaxRopeDims / 2];
    const int half = p.n_rot / 2;
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    for (int64_t t = 0; t < n_tokens; ++t) {
        rope_cache(positions[t], p, theta_scale, cache);
        for (int i = 0; i < half; ++i) {
            cos_v[i] = cache[2 * i];
            sin_v[i] = cache[2 * i + 1];
        }
        for (int h = 0; h < n_heads; ++h) {
            float* v = x + (t * n_heads + h) * head_dim;
            int i = 0;
            if (p.neox) {  // pairs (i, i + half): two contiguous halves
                for (; i + 8 <= half; i += 8) {
                    const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
                    const __m256 c = _mm256_load_ps(cos_v + i), s = _mm256_load_ps(sin_v + i);
                    _mm256_storeu_ps(v + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
                    _mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
                }
            } else {  // pairs (2i, 2i + 1): four pairs per vector, cache is interleaved the same
                      // way
                for (; i + 4 <= half; i += 4) {
                    const __m256 xv = _mm256_loadu_ps(v + 2 * i);
                    const __m256 cs = _mm256_load_ps(cache + 2 * i);
                    const __m256 c = _mm256_moveldup_ps(cs), s = _mm256_movehdup_ps(cs);
                    const __m256 swapped = _mm256_permute_ps(xv, 0xb1);  // (b, a) per pair
                    // even lanes a*c - b*s, odd lanes b*c + a*s
                    _mm256_storeu_ps(v + 2 * i,
                                     _mm256_fmaddsub_ps(xv, c, _mm256_mul_ps(swapped, s)));
                }
            }
            for (; i < half; ++i) {
                const int a = p.neox ? i : 2 * i;
                const int b = p.neox ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * cos_v[i] - x1 * sin_v[i];
                v[b] = x0 * sin_v[i] + x1 * cos_v[i];
            }
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
        const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(
            dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
    for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

}  // namespace sparkv::kernels::detail::avx2
