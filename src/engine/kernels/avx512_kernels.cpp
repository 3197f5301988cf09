// AVX-512 kernel table: placeholder that reuses the AVX2 kernels until the AVX-512 GEMM lands.
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail {

const KernelTable& avx512_kernels() { return avx2_kernels(); }

}  // namespace sparkv::kernels::detail
