// The AVX-512 kernel table: VNNI panel GEMM (prefill) and GEMV (decode) for the quantised weight
// types; every other entry is the AVX2 kernel, which this CPU also runs.
#include "engine/kernels/avx512_kernels.h"

#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx512 {

namespace {

void gemm(const GemmTask& task) {
    if (gemm_panel(task)) return;
    if (task.t1 - task.t0 == 1 && gemv(task)) return;
    avx2::gemm(task);
}

constexpr KernelTable kTable = {Isa::avx512,     avx2::pack_activations, gemm,
                                avx2::attention, avx2::rms_norm,         avx2::rope,
                                avx2::swiglu,    avx2::fp32_to_fp16_row, avx2::fp16_to_fp32_row};

}  // namespace

}  // namespace sparkv::kernels::detail::avx512

namespace sparkv::kernels::detail {

const KernelTable& avx512_kernels() {
    return avx512::kTable;
}

}  // namespace sparkv::kernels::detail
