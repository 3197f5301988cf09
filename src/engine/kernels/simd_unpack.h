// One 32-element block of a weight row, unpacked for integer dot products with u8 x s8
// instructions (vpdpbusd, vpmaddubsw): the 32 quants as unsigned bytes u in element order, plus
// per-row float factors such that the block's dot product with Q8 activations x is
//   sum over scale groups g:  scale[g] * d_x * sum_{i in g} u_i x_i  +  off[g] * xoff_g
// where xoff_g is the activation's (scale x quant sum) over the group: Q8_0 / Q8_1's off, Q8_K's
// off (per 32) or off16 (per 16). Symmetric types store u = value + bias and fold the bias into
// off = -bias * scale; affine types (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) put their min there.
//
// Groups: 1 per block, except the 16-element sub-block types (Q2_K, Q3_K, Q6_K) with 2.
// Written with AVX2 intrinsics; included by the AVX-512 translation units (internal linkage).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "engine/ggml_types.h"
#include "engine/kernels/avx2_common.h"
#include "engine/kernels/reference_blocks.h"

namespace sparkv::kernels::detail::simd {

namespace {

inline float half_at(const void* p) {  // block fields are not 2-byte aligned
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// Elements 0..31 of a 32-element nibble block (low nibbles are 0..15, high nibbles 16..31).
inline __m256i nibbles32(const uint8_t* qs) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0f));
}

// Byte i is 0x10 when bit i of the little-endian 32-bit field at p is set (Q5's fifth bits).
inline __m256i fifth_bits(const uint8_t* p) {
    uint32_t bits;
    std::memcpy(&bits, p, 4);
    const __m256i select = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), select);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit),
                            _mm256_set1_epi8(0x10));
}

// The IQ4_NL levels + 128, as unsigned bytes.
inline __m256i iq4_levels_u8() {
    alignas(16) uint8_t shifted[16];
    for (int i = 0; i < 16; ++i) shifted[i] = static_cast<uint8_t>(kIq4nlValues[i] + 128);
    return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(shifted)));
}

template <GgmlType kType>
struct Unpack;

// The quants of block b alone; the scale work block() also does is dead code once inlined.
template <GgmlType kType>
inline __m256i unpack_quants(const uint8_t* row, int64_t b) {
    float scale[2], off[2];
    return Unpack<kType>::block(row, b, scale, off);
}

// ---- 32-element blocks ----

template <>
struct Unpack<GgmlType::Q4_0> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
        scale[0] = half_at(&blk->d);
        off[0] = -8.0f * scale[0];
        return nibbles32(blk->qs);
    }
};

template <>
struct Unpack<GgmlType::Q4_1> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ4_1*>(row) + b;
        scale[0] = half_at(&blk->d);
        off[0] = half_at(&blk->m);
        return nibbles32(blk->qs);
    }
};

template <>
struct Unpack<GgmlType::Q5_0> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ5_0*>(row) + b;
        scale[0] = half_at(&blk->d);
        off[0] = -16.0f * scale[0];
        return _mm256_or_si256(nibbles32(blk->qs), fifth_bits(blk->qh));
    }
};

template <>
struct Unpack<GgmlType::Q5_1> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ5_1*>(row) + b;
        scale[0] = half_at(&blk->d);
        off[0] = half_at(&blk->m);
        return _mm256_or_si256(nibbles32(blk->qs), fifth_bits(blk->qh));
    }
};

template <>
struct Unpack<GgmlType::Q8_0> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
        scale[0] = half_at(&blk->d);
        off[0] = -128.0f * scale[0];
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs));
        return _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));  // q + 128
    }
};

template <>
struct Unpack<GgmlType::IQ4_NL> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockIQ4_NL*>(row) + b;
        scale[0] = half_at(&blk->d);
        off[0] = -128.0f * scale[0];
        return _mm256_shuffle_epi8(iq4_levels_u8(), nibbles32(blk->qs));
    }
};

// ---- 256-element super-blocks: block b is sub-block b % 8 of super-block b / 8 ----

// Q4_K / Q5_K: 64-element chunk c = k / 2 holds sub-block k in the low (k even) or high nibbles.
inline __m256i k_nibbles(const uint8_t* qs, int k) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (k / 2)));
    return _mm256_and_si256(k % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0f));
}

template <>
struct Unpack<GgmlType::Q4_K> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ4_K*>(row) + b / 8;
        const int k = static_cast<int>(b % 8);
        int sc, m;
        blocks::k_scale_min(blk->scales, k, sc, m);
        scale[0] = half_at(&blk->d) * static_cast<float>(sc);
        off[0] = -half_at(&blk->dmin) * static_cast<float>(m);
        return k_nibbles(blk->qs, k);
    }
};

template <>
struct Unpack<GgmlType::Q5_K> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ5_K*>(row) + b / 8;
        const int k = static_cast<int>(b % 8);
        int sc, m;
        blocks::k_scale_min(blk->scales, k, sc, m);
        scale[0] = half_at(&blk->d) * static_cast<float>(sc);
        off[0] = -half_at(&blk->dmin) * static_cast<float>(m);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qh));
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, k), _mm256_set1_epi8(0x01));
        return _mm256_or_si256(k_nibbles(blk->qs, k), _mm256_slli_epi16(high, 4));
    }
};

template <>
struct Unpack<GgmlType::IQ4_XS> {
    static constexpr int kGroups = 1;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockIQ4_XS*>(row) + b / 8;
        const int k = static_cast<int>(b % 8);
        scale[0] = half_at(&blk->d) * static_cast<float>(blocks::iq4_xs_scale(*blk, k));
        off[0] = -128.0f * scale[0];
        return _mm256_shuffle_epi8(iq4_levels_u8(), nibbles32(blk->qs + 16 * k));
    }
};

// Q2_K / Q3_K: the 2 low bits of elements 32k .. 32k + 31.
inline __m256i k_low2(const uint8_t* qs, int k) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (k / 4)));
    return _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_set1_epi32(2 * (k % 4))),
                            _mm256_set1_epi8(0x03));
}

template <>
struct Unpack<GgmlType::Q2_K> {
    static constexpr int kGroups = 2;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ2_K*>(row) + b / 8;
        const int k = static_cast<int>(b % 8);
        const float d = half_at(&blk->d), dmin = half_at(&blk->dmin);
        for (int g = 0; g < 2; ++g) {
            scale[g] = d * static_cast<float>(blocks::q2_k_scale(*blk, 2 * k + g));
            off[g] = -dmin * static_cast<float>(blocks::q2_k_min(*blk, 2 * k + g));
        }
        return k_low2(blk->qs, k);
    }
};

template <>
struct Unpack<GgmlType::Q3_K> {
    static constexpr int kGroups = 2;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ3_K*>(row) + b / 8;
        const int k = static_cast<int>(b % 8);
        const float d = half_at(&blk->d);
        for (int g = 0; g < 2; ++g) {
            scale[g] = d * static_cast<float>(blocks::q3_k_scale(*blk, 2 * k + g));
            off[g] = -4.0f * scale[g];  // u = value + 4
        }
        const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->hmask));
        const __m256i high =
            _mm256_and_si256(_mm256_srlv_epi32(hm, _mm256_set1_epi32(k)), _mm256_set1_epi8(0x01));
        return _mm256_or_si256(k_low2(blk->qs, k), _mm256_slli_epi16(high, 2));
    }
};

template <>
struct Unpack<GgmlType::Q6_K> {
    static constexpr int kGroups = 2;
    static __m256i block(const uint8_t* row, int64_t b, float* scale, float* off) {
        const auto* blk = reinterpret_cast<const BlockQ6_K*>(row) + b / 8;
        const int k = static_cast<int>(b % 8);  // elements 128h + 32q .. + 31
        const int h = k / 4, q = k % 4;
        const float d = half_at(&blk->d);
        for (int g = 0; g < 2; ++g) {
            scale[g] = d * static_cast<float>(blk->scales[2 * k + g]);
            off[g] = -32.0f * scale[g];  // the stored 6-bit value is value + 32
        }
        const __m256i l =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->ql + 64 * h + 32 * (q & 1)));
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        const __m256i lo =
            q < 2 ? _mm256_and_si256(l, low4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low4);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qh + 32 * h));
        const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(qh, _mm256_set1_epi32(2 * q)),
                                            _mm256_set1_epi8(0x03));
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
};

}  // namespace

}  // namespace sparkv::kernels::detail::simd
