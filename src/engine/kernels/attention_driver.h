// The attention driver, callable with any kernel table (the tests run every table the CPU
// supports).
#pragma once

#include <cstdint>

#include "common/thread_pool.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/sparse_attention.h"

namespace sparkv::kernels::detail {

constexpr int kMaxHeadDim = 256;

// Throws when the shape, strides or positions cannot be attended (every attention entry point).
void validate_attention(const AttentionShape& s, int64_t ldq, int64_t n_q, const int32_t* q_pos,
                        int64_t ldo);

void attention_with(const KernelTable& kt, const AttentionShape& s, const float* q, int64_t ldq,
                    int64_t n_q, const int32_t* q_pos, const uint16_t* k, const uint16_t* v,
                    float* out, int64_t ldo, ThreadPool& pool);

// Attention restricted to a block mask built for these queries (build_sparse_mask): each
// (KV head, query block) task visits only its row's key blocks.
void attention_masked_with(const KernelTable& kt, const AttentionShape& s, const float* q,
                           int64_t ldq, int64_t n_q, const int32_t* q_pos, const uint16_t* k,
                           const uint16_t* v, float* out, int64_t ldo, const SparseMask& mask,
                           ThreadPool& pool);

}  // namespace sparkv::kernels::detail
