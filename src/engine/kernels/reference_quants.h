// Internal to the reference kernels: rounding helpers and the K-quant half of the reference
// (de)quantisers (reference_kquants.cpp), which reference_quants.cpp dispatches to.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/ggml_types.h"

namespace sparkv::kernels::ref::detail {

// Round half to even, as vroundps/cvtps2dq do in the default rounding mode.
inline int round_even(float v) {
    return static_cast<int>(std::nearbyint(v));
}

inline int clamp_int(int v, int lo, int hi) {
    return std::min(hi, std::max(lo, v));
}

// The value of largest magnitude in x[0..n) with its sign (the first one on ties); 0 if all 0.
inline float signed_max(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

// 256-element super-block types: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, and Q8_K. nb blocks.
// Return false for any other type.
bool dequantize_super_blocks(GgmlType type, const void* src, float* dst, int64_t nb);
bool quantize_super_blocks(GgmlType type, const float* src, void* dst, int64_t nb);

}  // namespace sparkv::kernels::ref::detail
