// Plain scalar implementations of every kernel: the ground truth the fast kernels are tested
// against, and the shape of the math without any speed tricks. Nothing here is tuned; loops
// follow the definitions, accumulations that decide accuracy run in double.
#pragma once

#include <cstdint>

#include "engine/kernels/kernels.h"
#include "engine/kernels/sparse_attention.h"

namespace sparkv::kernels::ref {

// Exact ggml dequantisation of one row (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
// IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, Q8_K).
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Encodes one row. Q8_0, Q8_1 and Q8_K follow ggml's x86 CPU recipe bit for bit (they quantise
// activations); the weight types use a simple min/max search that produces valid blocks.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// The activation type a weight type's dot product pairs with (llama.cpp's vec_dot_type):
// Q4_0, Q5_0, Q8_0, IQ4_NL -> Q8_0; Q4_1, Q5_1 -> Q8_1; K quants and IQ4_XS -> Q8_K;
// F16 -> F16; BF16 -> BF16; F32 -> F32.
GgmlType activation_type(GgmlType weight);

// Dot product of one weight row with one activation row already encoded in
// activation_type(weight_type), as ggml defines it (integer block sums times the block scales).
// Accumulates across blocks in double.
double vec_dot(GgmlType weight_type, const void* weight_row, const void* activation_row, int64_t n);

// matmul as kernels.h defines it: each activation row is encoded with quantize_row into the
// paired type, then vec_dot per (token, row). Single-threaded.
void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy);

// The exact product with the dequantised weights and unquantised fp32 activations, in double.
// The gap between this and matmul is the activation quantisation error.
void matmul_exact(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                  int64_t ldy);

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);

// theta = position * freq_scale * freq_base^(-2i/n_rot) / freq_factors[i], in double.
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& params);

void swiglu(const float* gate, const float* up, float* out, int64_t n);

// Naive softmax attention: full score row, max, exp, normalise, weighted sum; double precision.
void attention(const AttentionShape& shape, const float* q, int64_t ldq, int64_t n_q,
               const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out, int64_t ldo);

// attention restricted by a block mask: query i (head h) sees key j <= q_pos[i] only when key
// block j / mask.block is listed in the mask row of (h's KV head, q_pos[i] / mask.block).
void masked_attention(const AttentionShape& shape, const float* q, int64_t ldq, int64_t n_q,
                      const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out,
                      int64_t ldo, const SparseMask& mask);

void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);

}  // namespace sparkv::kernels::ref
