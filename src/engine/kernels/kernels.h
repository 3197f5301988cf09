// The compute kernels the engine is built from. The model code (engine/model.cpp) reads like the
// math; all speed lives behind these functions. Every fast kernel has a plain reference
// implementation (kernels/reference.h) that the tests compare it with.
//
// Conventions: activations are fp32, row-major, one row per token. Weight matrices are GGUF
// tensors: `rows` output features, each a row of `cols` elements in the tensor's block format.
// The KV cache is fp16 laid out per layer as [kv_head][position][head_dim].
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/thread_pool.h"
#include "engine/ggml_types.h"

namespace sparkv::kernels {

// A weight matrix as it sits in the memory-mapped file; never copied.
struct Matrix {
    GgmlType type = GgmlType::F32;
    const uint8_t* data = nullptr;
    int64_t rows = 0;      // output features (GGUF ne[1])
    int64_t cols = 0;      // input features (GGUF ne[0])
    size_t row_bytes = 0;  // bytes per row
};

// y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens, r < w.rows.
// x has row stride ldx floats, y has row stride ldy floats. Activations are quantised internally
// the way the weight type's dot product needs (Q8_0 / Q8_1 / Q8_K), as llama.cpp does.
void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool);

// Several products of the same activations (Q, K and V of one layer; gate and up), as one job
// on the pool: y_i = W_i x for every output. The matrices must have the same number of columns;
// activations are encoded once per distinct activation type.
struct MatmulOutput {
    const Matrix* w = nullptr;
    float* y = nullptr;
    int64_t ldy = 0;
};
void matmul_many(std::span<const MatmulOutput> outputs, const float* x, int64_t ldx,
                 int64_t n_tokens, ThreadPool& pool);

// out = x / rms(x) * weight, for one row of n elements.
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);

// Rotary embedding applied in place to n_tokens rows of n_heads heads of head_dim each
// (row stride = n_heads * head_dim). Only the first n_rot dims of each head rotate.
struct RopeParams {
    int n_rot = 0;
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;  // linear scaling: position * freq_scale
    bool neox = false;        // pairs (i, i + n_rot/2) instead of (2i, 2i + 1)
    const float* freq_factors =
        nullptr;  // optional per-pair divisors (Llama 3 rope_freqs), n_rot/2
};
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& params);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// Causal multi-head attention with grouped KV heads over an fp16 cache.
// q: n_q rows of n_head * head_dim (already rotated), row stride ldq.
// Query i attends to cache positions 0 .. q_pos[i] inclusive; those must be filled.
// k, v: one layer of the cache, [n_kv_head][kv_capacity][head_dim] fp16.
// out: n_q rows of n_head * head_dim, row stride ldo.
struct AttentionShape {
    int n_head = 0;
    int n_kv_head = 0;
    int head_dim = 0;
    int64_t kv_capacity = 0;  // positions per KV head in the cache layout
    float scale = 1.0f;       // usually 1/sqrt(head_dim)
    // Round each query element to fp16 before the q.k products, as ggml does (its F16 K . Q
    // products convert Q to fp16, with and without flash attention). For matching llama.cpp.
    bool round_q_to_fp16 = false;
};
void attention(const AttentionShape& shape, const float* q, int64_t ldq, int64_t n_q,
               const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out, int64_t ldo,
               ThreadPool& pool);

// Converts one row of n elements of any computable type to fp32 (embedding lookup, tests).
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Encodes one row of n fp32 elements into `type` (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q8_1, Q4_K,
// Q5_K, Q6_K, Q8_K). dst must hold ggml_row_bytes(type, n) bytes. Used by the GGUF writer for
// test models and for activation quantisation.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// Bulk fp16 <-> fp32 conversion (F16C when the CPU has it).
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);

// Which instruction set the dispatched kernels use on this machine ("avx512", "avx2", "portable").
const char* active_isa();

}  // namespace sparkv::kernels
