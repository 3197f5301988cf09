// AVX-512 (F + BW + VL) kernel table. Deliberately small: the one kernel that dominates prefill
// on the reference model, the row-interleaved Q4_0 / Q4_1 panel GEMM, widened to 16 rows per
// zmm register; every other entry is the AVX2 kernel (which this CPU also runs).
//
// The machine SparKV is developed on has no AVX-512, so this file is compiled and linked but
// its kernel has not been executed there; it mirrors avx2_gemm_panel.cpp operation for
// operation (same packing, same integer sums, same scale order), so the AVX2 tests define what
// it must produce. Run the kernel tests on an AVX-512 machine before relying on it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx512 {

namespace {

// 16 rows of one block: lane r of q[g] holds row r's elements 4g..4g+3; 640 bytes.
struct alignas(64) PanelBlock16 {
    __m512i q[8];
    __m512 d;
    __m512 off;
};
static_assert(sizeof(PanelBlock16) == 640);

template <GgmlType kType>
void pack_rows16(const Matrix& w, int64_t r0, int64_t n_rows, PanelBlock16* out) {
    const int64_t nb = w.cols / 32;
    for (int64_t b = 0; b < nb; ++b) {
        __m256i lo[8], hi[8];
        alignas(64) float d[16], off[16];
        avx2::unpack_q4_rows8<kType>(w, r0, std::min<int64_t>(8, n_rows), b, lo, d, off);
        avx2::unpack_q4_rows8<kType>(w, r0 + 8, std::max<int64_t>(0, n_rows - 8), b, hi, d + 8,
                                     off + 8);
        for (int g = 0; g < 8; ++g) {  // rows 0-7 in the low 256 bits, 8-15 in the high
            auto* half = reinterpret_cast<__m256i*>(&out[b].q[g]);
            _mm256_store_si256(half, lo[g]);
            _mm256_store_si256(half + 1, hi[g]);
        }
        out[b].d = _mm512_load_ps(d);
        out[b].off = _mm512_load_ps(off);
    }
}

void panel_kernel16(const PanelBlock16* panel, const PackedActivations& a, int64_t t0, int64_t t1,
                    int64_t r0, int64_t n_rows, float* y, int64_t ldy) {
    const int64_t nb = a.cols / 32;
    const __m512i ones = _mm512_set1_epi16(1);
    const __mmask16 valid = static_cast<__mmask16>((1u << n_rows) - 1u);  // n_rows in 1..16
    for (int64_t t = t0; t < t1; ++t) {
        const int8_t* xq = a.qs + t * a.cols;
        const float* xd = a.d + t * a.d_stride;
        const float* xo = a.off + t * a.off_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            const int32_t* x4 = reinterpret_cast<const int32_t*>(xq + 32 * b);
            // 8 groups x 2 x 15 x 128 fits int16, as in the AVX2 kernel.
            __m512i p = _mm512_maddubs_epi16(panel[b].q[0], _mm512_set1_epi32(x4[0]));
            SPARKV_UNROLL
            for (int k = 1; k < 8; ++k) {
                p = _mm512_add_epi16(p,
                                     _mm512_maddubs_epi16(panel[b].q[k], _mm512_set1_epi32(x4[k])));
            }
            const __m512 f = _mm512_maskz_cvtepi32_ps(
                0xffff, _mm512_madd_epi16(p, ones));  // maskz: GCC 12 warns on the unmasked form
            acc = _mm512_fmadd_ps(f, _mm512_mul_ps(panel[b].d, _mm512_set1_ps(xd[b])), acc);
            acc = _mm512_fmadd_ps(panel[b].off, _mm512_set1_ps(xo[b]), acc);
        }
        _mm512_mask_storeu_ps(y + t * ldy + r0, valid, acc);
    }
}

template <GgmlType kType>
void gemm_panels16(const GemmTask& task) {
    const Matrix& w = *task.w;
    auto* panel = reinterpret_cast<PanelBlock16*>((reinterpret_cast<uintptr_t>(task.scratch) + 63) &
                                                  ~uintptr_t{63});
    for (int64_t r = task.r0; r < task.r1; r += 16) {
        const int64_t n_rows = std::min<int64_t>(16, task.r1 - r);
        pack_rows16<kType>(w, r, n_rows, panel);
        panel_kernel16(panel, *task.a, task.t0, task.t1, r, n_rows, task.y, task.ldy);
    }
}

void gemm(const GemmTask& task) {
    if (task.t1 - task.t0 >= avx2::kPanelMinTokens) {
        if (task.w->type == GgmlType::Q4_0) return gemm_panels16<GgmlType::Q4_0>(task);
        if (task.w->type == GgmlType::Q4_1) return gemm_panels16<GgmlType::Q4_1>(task);
    }
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
