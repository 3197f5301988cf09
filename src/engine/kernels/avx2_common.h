// Small AVX2 helpers shared by the AVX2 (and AVX-512) translation units. Everything here is
// static inline inside an ISA-named namespace, so no copy compiled with AVX can be picked by the
// linker for portable code.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "engine/ggml_types.h"
#include "engine/kernels/kernels.h"

// Fully unrolls a loop with a compile-time trip count. Without it GCC keeps arrays of vector
// accumulators in memory and stores them on every iteration, which halves the FMA rate.
#define SPARKV_UNROLL _Pragma("GCC unroll 16")

namespace sparkv::kernels::detail::avx2 {

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float half_to_float(uint16_t h) {
    return _cvtsh_ss(h);
}

// Transposes 8 vectors of 8 int32 (rows x groups) into groups x rows.
static inline void transpose8(__m256i (&v)[8]) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(v[i]);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    v[0] = _mm256_castps_si256(_mm256_permute2f128_ps(s0, s4, 0x20));
    v[1] = _mm256_castps_si256(_mm256_permute2f128_ps(s1, s5, 0x20));
    v[2] = _mm256_castps_si256(_mm256_permute2f128_ps(s2, s6, 0x20));
    v[3] = _mm256_castps_si256(_mm256_permute2f128_ps(s3, s7, 0x20));
    v[4] = _mm256_castps_si256(_mm256_permute2f128_ps(s0, s4, 0x31));
    v[5] = _mm256_castps_si256(_mm256_permute2f128_ps(s1, s5, 0x31));
    v[6] = _mm256_castps_si256(_mm256_permute2f128_ps(s2, s6, 0x31));
    v[7] = _mm256_castps_si256(_mm256_permute2f128_ps(s3, s7, 0x31));
}

// Block b of up to 8 consecutive Q4_0 / Q4_1 rows from r0, unpacked to bytes and transposed so
// that lane r of q[g] holds row r's elements 4g..4g+3; d and off receive each row's scale and
// offset factor (Q4_1: m; Q4_0: -8 d, since it stores q + 8). Missing rows are zero.
template <GgmlType kType>
static inline void unpack_q4_rows8(const Matrix& w, int64_t r0, int64_t n_rows, int64_t b,
                                   __m256i* q, float* d, float* off) {
    constexpr size_t kBlockBytes = kType == GgmlType::Q4_1 ? sizeof(BlockQ4_1) : sizeof(BlockQ4_0);
    constexpr size_t kQuantOffset = kType == GgmlType::Q4_1 ? 4 : 2;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256i v[8];
    for (int r = 0; r < 8; ++r) {
        if (r >= n_rows) {
            v[r] = _mm256_setzero_si256();
            d[r] = off[r] = 0.0f;
            continue;
        }
        const uint8_t* blk = w.data + (r0 + r) * w.row_bytes + b * kBlockBytes;
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQuantOffset));
        v[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), low4);
        uint16_t h;
        std::memcpy(&h, blk, 2);
        d[r] = half_to_float(h);
        if constexpr (kType == GgmlType::Q4_1) {
            std::memcpy(&h, blk + 2, 2);
            off[r] = half_to_float(h);
        } else {
            off[r] = -8.0f * d[r];
        }
    }
    transpose8(v);
    for (int g = 0; g < 8; ++g) q[g] = v[g];
}

// e^r for the reduced argument r in [-ln2/2, ln2/2]: minimax polynomial (Cephes coefficients).
static inline __m256 exp_reduced_ps(__m256 r) {
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
}

// e^x for fp32 lanes, within 2 ulp on [-87, 88.7]; below gives 0 (also for -inf), above is
// clamped to e^88.7; NaN stays NaN.
static inline __m256 exp_ps(__m256 x) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f);
    const __m256 ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    x = _mm256_min_ps(_mm256_set1_ps(88.7228391f), x);  // NaN in x passes through
    const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365448f), _CMP_LT_OQ);
    const __m256 n =
        _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, x);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);
    const __m256 p = exp_reduced_ps(r);
    // Scale by 2^n through the exponent bits; n is at most 128 here, so split to stay finite.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half_n = _mm256_srai_epi32(ni, 1);
    const __m256 s1 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(half_n, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(ni, half_n), _mm256_set1_epi32(127)), 23));
    const __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_andnot_ps(too_small, result);
}

// e^x for x <= 0 (softmax weights), within 2 ulp down to -87.3, 0 below (also for -inf):
// exp_ps without the overflow handling.
static inline __m256 exp_nonpositive_ps(__m256 x) {
    const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365448f), _CMP_LT_OQ);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    const __m256 p = exp_reduced_ps(r);
    // n >= -126 here, so 2^n is a normal float built directly in the exponent bits.
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(too_small, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

}  // namespace sparkv::kernels::detail::avx2
