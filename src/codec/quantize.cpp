// Scalar reference kernels. Compiled with -ffp-contract=off so that s * step + min is rounded
// twice, exactly like the AVX2 kernels.
#include "codec/quantize.h"

#include <algorithm>
#include <cmath>

#include "common/fp16.h"

namespace sparkv::codec {

namespace {

constexpr float kHalfMax = 65504.0f;

void minmax_per_col(const uint16_t* x, int64_t rows, int64_t cols, float* mins, float* maxs) {
    for (int64_t c = 0; c < cols; ++c) {
        mins[c] = rows ? INFINITY : 0.0f;
        maxs[c] = rows ? -INFINITY : 0.0f;
    }
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
            const float v = fp16_to_fp32(x[r * cols + c]);
            mins[c] = std::min(mins[c], v);
            maxs[c] = std::max(maxs[c], v);
        }
    }
}

void minmax_per_row(const uint16_t* x, int64_t rows, int64_t cols, float* mins, float* maxs) {
    for (int64_t r = 0; r < rows; ++r) {
        float lo = cols ? INFINITY : 0.0f, hi = cols ? -INFINITY : 0.0f;
        for (int64_t c = 0; c < cols; ++c) {
            const float v = fp16_to_fp32(x[r * cols + c]);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        mins[r] = lo;
        maxs[r] = hi;
    }
}

uint8_t quantize_one(uint16_t x, float min, float inv_step, int qmax) {
    const float level = std::nearbyint((fp16_to_fp32(x) - min) * inv_step);
    return static_cast<uint8_t>(std::clamp(level, 0.0f, static_cast<float>(qmax)));
}

uint16_t dequantize_one(uint8_t s, float min, float step) {
    const float product = static_cast<float>(s) * step;
    const float value = product + min;
    return fp32_to_fp16(std::clamp(value, -kHalfMax, kHalfMax));
}

void quantize_per_col(const uint16_t* x, int64_t rows, int64_t cols, const float* mins,
                      const float* inv_steps, int qmax, uint8_t* symbols) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            symbols[r * cols + c] = quantize_one(x[r * cols + c], mins[c], inv_steps[c], qmax);
}

void quantize_per_row(const uint16_t* x, int64_t rows, int64_t cols, const float* mins,
                      const float* inv_steps, int qmax, uint8_t* symbols) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            symbols[r * cols + c] = quantize_one(x[r * cols + c], mins[r], inv_steps[r], qmax);
}

void dequantize_per_col(const uint8_t* symbols, int64_t rows, int64_t cols, const float* mins,
                        const float* steps, uint16_t* out) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            out[r * cols + c] = dequantize_one(symbols[r * cols + c], mins[c], steps[c]);
}

void dequantize_per_row(const uint8_t* symbols, int64_t rows, int64_t cols, const float* mins,
                        const float* steps, uint16_t* out) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            out[r * cols + c] = dequantize_one(symbols[r * cols + c], mins[r], steps[r]);
}

}  // namespace

const QuantKernels& scalar_quant_kernels() {
    static constexpr QuantKernels kernels{"scalar",          minmax_per_col,   minmax_per_row,
                                          quantize_per_col,  quantize_per_row, dequantize_per_col,
                                          dequantize_per_row};
    return kernels;
}

bool all_finite(const uint16_t* x, size_t n) {
    uint16_t all_ones_exponent = 0;  // OR-reduce without early exit so the loop vectorises
    for (size_t i = 0; i < n; ++i) all_ones_exponent |= ((x[i] & 0x7c00u) == 0x7c00u);
    return !all_ones_exponent;
}

void split_bytes(const uint16_t* x, size_t n, uint8_t* hi, uint8_t* lo) {
    for (size_t i = 0; i < n; ++i) {
        hi[i] = static_cast<uint8_t>(x[i] >> 8);
        lo[i] = static_cast<uint8_t>(x[i]);
    }
}

void merge_bytes(const uint8_t* hi, const uint8_t* lo, size_t n, uint16_t* out) {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint16_t>(hi[i] << 8 | lo[i]);
}

GroupParams group_params(float min, float max, int qmax) {
    GroupParams params;
    params.min_bits = fp32_to_fp16(min + 0.0f);  // + 0 turns -0 into +0: kernels may differ there
    const double exact_min = fp16_to_fp32(params.min_bits);
    const double step = std::max(0.0, (static_cast<double>(max) - exact_min) / qmax);
    uint16_t bits = fp32_to_fp16(static_cast<float>(step));
    while (fp16_to_fp32(bits) < step) ++bits;  // round up: positive halves order like integers
    params.step_bits = bits;
    return params;
}

}  // namespace sparkv::codec
