// Uniform min-max quantisation of fp16 rows and its inverse: the per-element kernels of the codec.
//
// A head's tensor is `rows` x `cols` (tokens x head_dim), row-major. Parameters are per column
// (keys: one min and step per channel, over the tokens) or per row (values: one per token).
//   quantise:   s = clamp(round_to_even((x - min) * inv_step), 0, qmax)
//   dequantise: x' = fp16(clamp(float(s) * step + min, +-65504))  (multiply, then add: no FMA)
// Every kernel has a scalar reference; the AVX2 + F16C set gives bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparkv::codec {

struct QuantKernels {
    const char* name;
    // Column-wise (per_col) or row-wise (per_row) min and max of finite fp16 rows.
    void (*minmax_per_col)(const uint16_t* x, int64_t rows, int64_t cols, float* mins, float* maxs);
    void (*minmax_per_row)(const uint16_t* x, int64_t rows, int64_t cols, float* mins, float* maxs);
    void (*quantize_per_col)(const uint16_t* x, int64_t rows, int64_t cols, const float* mins,
                             const float* inv_steps, int qmax, uint8_t* symbols);
    void (*quantize_per_row)(const uint16_t* x, int64_t rows, int64_t cols, const float* mins,
                             const float* inv_steps, int qmax, uint8_t* symbols);
    void (*dequantize_per_col)(const uint8_t* symbols, int64_t rows, int64_t cols,
                               const float* mins, const float* steps, uint16_t* out);
    void (*dequantize_per_row)(const uint8_t* symbols, int64_t rows, int64_t cols,
                               const float* mins, const float* steps, uint16_t* out);
};

const QuantKernels& scalar_quant_kernels();
// The AVX2 + F16C kernels, or nullptr when this CPU lacks them.
const QuantKernels* avx2_quant_kernels();

// True if no element is inf or NaN.
bool all_finite(const uint16_t* x, size_t n);

// Splits halves into their high and low bytes, and back (the fp16 level codes them apart).
void split_bytes(const uint16_t* x, size_t n, uint8_t* hi, uint8_t* lo);
void merge_bytes(const uint8_t* hi, const uint8_t* lo, size_t n, uint16_t* out);

// The stored parameters of one group for values in [min, max] at qmax + 1 levels: min as fp16
// (exact, since min is an input half) and the step rounded *up* to fp16 so that
// min + qmax * step still reaches max: every element then lies within step / 2 of its level.
struct GroupParams {
    uint16_t min_bits;
    uint16_t step_bits;
};
GroupParams group_params(float min, float max, int qmax);

}  // namespace sparkv::codec
