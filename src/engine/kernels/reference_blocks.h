// Element access into the GGML block formats of ggml_types.h: where the bits of element e and
// the scale of its sub-block live. The reference (de)quantisers and dot products and the portable
// kernels read blocks through these, so each layout is spelled out once; the SIMD kernels unpack
// whole vectors at a time and are tested against code built on these.
#pragma once

#include <cstdint>

#include "engine/ggml_types.h"

namespace sparkv::kernels::blocks {

// ---- 32-element blocks (element j: low nibble of qs[j % 16] for j < 16, high nibble above) ----

static inline int nibble(const uint8_t* qs, int j) {
    return j < kQK / 2 ? (qs[j] & 0x0f) : (qs[j - kQK / 2] >> 4);
}

// Bit j of the 32-bit little-endian high-bit field of Q5_0 / Q5_1.
static inline int q5_high_bit(const uint8_t* qh, int j) {
    return (qh[j / 8] >> (j % 8)) & 1;
}

static inline int q4_0_value(const BlockQ4_0& b, int j) {  // -8..7
    return nibble(b.qs, j) - 8;
}
static inline int q4_1_quant(const BlockQ4_1& b, int j) {  // 0..15, x = d q + m
    return nibble(b.qs, j);
}
static inline int q5_0_value(const BlockQ5_0& b, int j) {  // -16..15
    return (nibble(b.qs, j) | (q5_high_bit(b.qh, j) << 4)) - 16;
}
static inline int q5_1_quant(const BlockQ5_1& b, int j) {  // 0..31, x = d q + m
    return nibble(b.qs, j) | (q5_high_bit(b.qh, j) << 4);
}
static inline int iq4_nl_value(const BlockIQ4_NL& b, int j) {  // a level of kIq4nlValues
    return kIq4nlValues[nibble(b.qs, j)];
}

// ---- K quants (256-element super-blocks) ----

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
static inline void k_scale_min(const uint8_t* s, int j, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K / Q5_K: sub-blocks of 32; 64-element chunk c holds sub-block 2c in the low nibbles of
// qs[32c .. 32c + 31] and sub-block 2c + 1 in the high nibbles; Q5_K's fifth bit of element e is
// bit e / 32 of qh[e % 32].
static inline int q4_k_quant(const BlockQ4_K& b, int e) {  // 0..15
    const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? (byte & 0x0f) : (byte >> 4);
}
static inline int q5_k_quant(const BlockQ5_K& b, int e) {  // 0..31
    const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
    const int low = (e % 64) < 32 ? (byte & 0x0f) : (byte >> 4);
    return low | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
}

// Q6_K: 16-element sub-blocks with int8 scales; element e's low 4 bits in ql, high 2 in qh.
static inline int q6_k_value(const BlockQ6_K& b, int e) {  // -32..31
    const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t ql = b.ql[64 * half + l + (quarter & 1) * 32];
    const int low = (quarter < 2) ? (ql & 0x0f) : (ql >> 4);
    const int high = (b.qh[32 * half + l] >> (2 * quarter)) & 3;
    return (low | (high << 4)) - 32;
}

// Q2_K / Q3_K: the 2 low bits of element e: byte 32 * (e / 128) + e % 32, bits 2 * ((e % 128) /
// 32).
static inline int k_low2(const uint8_t* qs, int e) {
    return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}
static inline int q2_k_quant(const BlockQ2_K& b, int e) {  // 0..3
    return k_low2(b.qs, e);
}
static inline int q2_k_scale(const BlockQ2_K& b, int j) {  // sub-block j (16 elements): 0..15
    return b.scales[j] & 0x0f;
}
static inline int q2_k_min(const BlockQ2_K& b, int j) {  // 0..15
    return b.scales[j] >> 4;
}
static inline int q3_k_value(const BlockQ3_K& b,
                             int e) {  // -4..3: minus 4 unless the hmask bit is set
    const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
    return k_low2(b.qs, e) - (high ? 0 : 4);
}
static inline int q3_k_scale(const BlockQ3_K& b, int j) {  // sub-block j (16 elements): -32..31
    const int low = j < 8 ? (b.scales[j] & 0x0f) : (b.scales[j - 8] >> 4);
    const int high = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// IQ4_XS: 32-element sub-blocks, each 16 bytes of qs in the 32-element nibble order.
static inline int iq4_xs_scale(const BlockIQ4_XS& b, int j) {  // sub-block j: -32..31
    const int low = (b.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
    const int high = (b.scales_h >> (2 * j)) & 3;
    return (low | (high << 4)) - 32;
}
static inline int iq4_xs_value(const BlockIQ4_XS& b, int e) {  // a level of kIq4nlValues
    return kIq4nlValues[nibble(b.qs + 16 * (e / 32), e % 32)];
}

}  // namespace sparkv::kernels::blocks
