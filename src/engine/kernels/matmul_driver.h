// The matmul driver, callable with any kernel table (the public matmul uses the active one; the
// tests run every table the CPU supports).
#pragma once

#include <cstdint>
#include <vector>

#include "common/thread_pool.h"
#include "engine/kernels/dispatch.h"

namespace sparkv::kernels::detail {

// Owns the storage behind a PackedActivations for `n_tokens` rows of `cols` elements.
struct ActivationBuffers {
    ActivationBuffers(GgmlType act, int64_t cols, int64_t n_tokens);
    std::vector<int8_t> quants;
    std::vector<float> floats;
    PackedActivations packed;
};

void pack_activations(const KernelTable& kt, const float* x, int64_t ldx,
                      const PackedActivations& a, ThreadPool& pool);

void matmul_with(const KernelTable& kt, const Matrix& w, const float* x, int64_t ldx,
                 int64_t n_tokens, float* y, int64_t ldy, ThreadPool& pool);

void matmul_many_with(const KernelTable& kt, std::span<const MatmulOutput> outputs, const float* x,
                      int64_t ldx, int64_t n_tokens, ThreadPool& pool);

}  // namespace sparkv::kernels::detail
