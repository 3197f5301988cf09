// Public kernel entry points: argument checks, then the kernel table of the selected ISA.
#include "engine/kernels/kernels.h"

#include "common/error.h"
#include "engine/kernels/attention_driver.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/matmul_driver.h"
#include "engine/kernels/reference.h"

namespace sparkv::kernels {

namespace detail {

const KernelTable& kernel_table(Isa isa) {
#if defined(SPARKV_X86_KERNELS)
    if (isa == Isa::avx512) return avx512_kernels();
    if (isa == Isa::avx2) return avx2_kernels();
#endif
    (void)isa;
    return portable_kernels();
}

const KernelTable& active_kernels() {
#if defined(SPARKV_X86_KERNELS)
    static const KernelTable& table = kernel_table(selected_isa());
    return table;
#else
    return portable_kernels();
#endif
}

}  // namespace detail

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool) {
    detail::matmul_with(detail::active_kernels(), w, x, ldx, n_tokens, y, ldy, pool);
}

void matmul_many(std::span<const MatmulOutput> outputs, const float* x, int64_t ldx,
                 int64_t n_tokens, ThreadPool& pool) {
    detail::matmul_many_with(detail::active_kernels(), outputs, x, ldx, n_tokens, pool);
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
    detail::active_kernels().rms_norm(x, weight, out, n, eps);
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& params) {
    if (params.n_rot <= 0 || params.n_rot % 2 != 0 || params.n_rot > head_dim ||
        params.n_rot > detail::kMaxRopeDims) {
        fail("rope: n_rot {} must be even, positive and at most head_dim {} (and {})", params.n_rot,
             head_dim, detail::kMaxRopeDims);
    }
    detail::active_kernels().rope(x, n_tokens, n_heads, head_dim, positions, params);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    detail::active_kernels().swiglu(gate, up, out, n);
}

void attention(const AttentionShape& shape, const float* q, int64_t ldq, int64_t n_q,
               const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out, int64_t ldo,
               ThreadPool& pool) {
    detail::attention_with(detail::active_kernels(), shape, q, ldq, n_q, q_pos, k, v, out, ldo,
                           pool);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    ref::dequantize_row(type, src, dst, n);
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    ref::quantize_row(type, src, dst, n);
}

void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n) {
    detail::active_kernels().fp32_to_fp16_row(src, dst, n);
}

void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) {
    detail::active_kernels().fp16_to_fp32_row(src, dst, n);
}

const char* active_isa() {
    return isa_name(detail::active_kernels().isa);
}

}  // namespace sparkv::kernels
