// The AVX-512 kernel functions (avx512_*.cpp, compiled with -mavx512f/bw/vl/dq/vnni). Only the
// dispatcher calls them, after checking the CPU; every entry not listed here is the AVX2 one.
#pragma once

#include "engine/kernels/dispatch.h"

namespace sparkv::kernels::detail::avx512 {

// The row-interleaved VNNI panel GEMM for every quantised weight type, for tasks of at least
// avx2::kPanelMinTokens tokens; false when it does not apply.
bool gemm_panel(const GemmTask& task);

// The VNNI GEMV (one token) for every quantised weight type; false when it does not apply.
bool gemv(const GemmTask& task);

}  // namespace sparkv::kernels::detail::avx512
