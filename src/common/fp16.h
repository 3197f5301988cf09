// IEEE half and bfloat16 <-> float conversion, scalar. Bulk conversions live in the kernels.
#pragma once

#include <cstdint>
#include <cstring>

namespace sparkv {

inline float fp32_from_bits(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline uint32_t fp32_to_bits(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits;
}

// Exact conversion of every half value, including subnormals, inf and NaN.
inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return fp32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0) return fp32_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
    if (mantissa == 0) return fp32_from_bits(sign);
    // Subnormal half: normalise the mantissa.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
    }
    mantissa &= 0x3ffu;
    return fp32_from_bits(sign | static_cast<uint32_t>(113 - shift) << 23 | (mantissa << 13));
}

// Round-to-nearest-even, as the F16C instruction does; overflow gives inf, NaN stays NaN.
inline uint16_t fp32_to_fp16(float f) {
    const uint32_t bits = fp32_to_bits(f);
    const uint32_t sign = (bits >> 16) & 0x8000u;
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // inf or rounds to inf
    if (abs < 0x38800000u) {  // result is subnormal or zero
        // Add 0.5 (as float) to move the half subnormal bits into the low mantissa bits.
        const float shifted = fp32_from_bits(abs) + 0.5f;
        return static_cast<uint16_t>(sign | (fp32_to_bits(shifted) - 0x3f000000u));
    }
    const uint32_t mantissa_odd = (abs >> 13) & 1u;
    const uint32_t rounded = abs + 0xc8000fffu + mantissa_odd;  // rebias exponent, round to even
    return static_cast<uint16_t>(sign | (rounded >> 13));
}

inline float bf16_to_fp32(uint16_t h) {
    return fp32_from_bits(static_cast<uint32_t>(h) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
    const uint32_t bits = fp32_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
    return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace sparkv
