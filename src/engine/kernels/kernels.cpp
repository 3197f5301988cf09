// Public kernel entry points. This first version forwards to the reference implementations
// (split over the thread pool where that is trivial); the fast paths replace them.
#include "engine/kernels/kernels.h"

#include <algorithm>

#include "engine/kernels/reference.h"

namespace sparkv::kernels {

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool) {
    constexpr int64_t kRowsPerTask = 64;
    const int64_t n_tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
    pool.parallel_for(n_tasks, [&](int64_t task, int) {
        Matrix part = w;
        const int64_t r0 = task * kRowsPerTask;
        part.rows = std::min(kRowsPerTask, w.rows - r0);
        part.data = w.data + r0 * w.row_bytes;
        ref::matmul(part, x, ldx, n_tokens, y + r0, ldy);
    });
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
    ref::rms_norm(x, weight, out, n, eps);
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& params) {
    ref::rope(x, n_tokens, n_heads, head_dim, positions, params);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) { ref::swiglu(gate, up, out, n); }

void attention(const AttentionShape& shape, const float* q, int64_t ldq, int64_t n_q,
               const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out,
               int64_t ldo, ThreadPool& pool) {
    pool.parallel_for(n_q, [&](int64_t i, int) {
        ref::attention(shape, q + i * ldq, ldq, 1, q_pos + i, k, v, out + i * ldo, ldo);
    });
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    ref::dequantize_row(type, src, dst, n);
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    ref::quantize_row(type, src, dst, n);
}

void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n) { ref::fp32_to_fp16_row(src, dst, n); }
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) { ref::fp16_to_fp32_row(src, dst, n); }

const char* active_isa() { return "portable"; }

}  // namespace sparkv::kernels
