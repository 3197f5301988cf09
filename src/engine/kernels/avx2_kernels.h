// The AVX2 kernel functions (defined in the avx2_*.cpp files, compiled with -mavx2 -mfma -mf16c).
// Only the dispatcher calls them, after checking the CPU.
#pragma once

#include "engine/kernels/dispatch.h"

namespace sparkv::kernels::detail::avx2 {

void pack_activations(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                      const PackedActivations& a);
void gemm(const GemmTask& task);
// The row-interleaved panel GEMM (Q4_0, Q4_1) for tasks of at least kPanelMinTokens tokens;
// returns false when it does not apply.
constexpr int64_t kPanelMinTokens = 8;
bool gemm_panel(const GemmTask& task);
// The 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) and the 256-element
// super-block types (Q2_K .. Q6_K, IQ4_XS) on the mapped blocks; false for other types.
bool gemm_legacy(const GemmTask& task);
bool gemm_kquant(const GemmTask& task);
void attention(const AttentionTask& task);
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& params);
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);

}  // namespace sparkv::kernels::detail::avx2
