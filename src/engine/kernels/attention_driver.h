// The attention driver, callable with any kernel table (the tests run every table the CPU
// supports).
#pragma once

#include <cstdint>

#include "common/thread_pool.h"
#include "engine/kernels/dispatch.h"

namespace sparkv::kernels::detail {

constexpr int kMaxHeadDim = 256;

void attention_with(const KernelTable& kt, const AttentionShape& s, const float* q, int64_t ldq,
                    int64_t n_q, const int32_t* q_pos, const uint16_t* k, const uint16_t* v,
                    float* out, int64_t ldo, ThreadPool& pool);

}  // namespace sparkv::kernels::detail
