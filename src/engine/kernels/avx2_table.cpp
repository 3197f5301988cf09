// The AVX2 kernel table.
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail {

namespace {
constexpr KernelTable kTable = {Isa::avx2,       avx2::pack_activations, avx2::gemm,
                                avx2::attention, avx2::rms_norm,         avx2::rope,
                                avx2::swiglu,    avx2::fp32_to_fp16_row, avx2::fp16_to_fp32_row};
}  // namespace

const KernelTable& avx2_kernels() {
    return kTable;
}

}  // namespace sparkv::kernels::detail
