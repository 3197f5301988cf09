// AVX2 GEMM for Q4_0 / Q4_1 weights and prefill-sized token counts, on row-interleaved panels.
//
// The row-per-register kernels of avx2_matmul.cpp spend five vector ops per (row, token, block):
// maddubs, madd, int->float, scale multiply, FMA. Here each SIMD lane holds one weight row: a
// panel of 8 rows is unpacked (nibbles -> bytes) and transposed once into an L1-resident scratch
// buffer, lane r of vector g holding row r's elements 4g..4g+3 of a block. Broadcasting 4
// activation bytes against it computes those 4 products for all 8 rows at once, and the int16
// partial sums of the 8 groups of a block fit without overflow (8 x 2 x 15 x 128 < 2^15), so a
// block costs 8 maddubs + 7 adds, then a single madd / convert / scale / FMA for 8 rows. The
// results land in lanes = rows, so no horizontal sums are needed either.
//
// The panel is a transient per-task buffer (like a BLAS packing step), rebuilt for every 8-16
// rows and reused by all tokens of the task; the memory-mapped weights are not copied.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

// One 8-row group of one block in the panel: 8 quant vectors, then the rows' scales and offset
// factors (Q4_1: m; Q4_0: -8 d), 320 bytes.
struct alignas(32) PanelBlock {
    __m256i q[8];
    __m256 d;
    __m256 off;
};
static_assert(sizeof(PanelBlock) == 320);

template <GgmlType kType>
void pack_group(const Matrix& w, int64_t r0, int64_t n_rows, PanelBlock* out) {
    const int64_t nb = w.cols / 32;
    for (int64_t b = 0; b < nb; ++b) {
        alignas(32) float d[8], off[8];
        unpack_q4_rows8<kType>(w, r0, n_rows, b, out[b].q, d, off);
        out[b].d = _mm256_load_ps(d);
        out[b].off = _mm256_load_ps(off);
    }
}

// Tokens [t0, t1) against RG packed 8-row groups (rows r0 .. r0 + 8 RG, n_rows valid).
template <int RG>
void panel_kernel(const PanelBlock* const (&groups)[RG], const PackedActivations& a, int64_t t0,
                  int64_t t1, int64_t r0, int64_t n_rows, float* y, int64_t ldy) {
    const int64_t nb = a.cols / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t t = t0; t < t1; ++t) {
        const int8_t* xq = a.qs + t * a.cols;
        const float* xd = a.d + t * a.d_stride;
        const float* xo = a.off + t * a.off_stride;
        __m256 acc[RG];
        SPARKV_UNROLL
        for (int g = 0; g < RG; ++g) acc[g] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            const int32_t* x4 = reinterpret_cast<const int32_t*>(xq + 32 * b);
            __m256i p[RG];
            {
                const __m256i x = _mm256_set1_epi32(x4[0]);
                SPARKV_UNROLL
                for (int g = 0; g < RG; ++g) p[g] = _mm256_maddubs_epi16(groups[g][b].q[0], x);
            }
            SPARKV_UNROLL
            for (int k = 1; k < 8; ++k) {
                const __m256i x = _mm256_set1_epi32(x4[k]);
                SPARKV_UNROLL
                for (int g = 0; g < RG; ++g)
                    p[g] = _mm256_add_epi16(p[g], _mm256_maddubs_epi16(groups[g][b].q[k], x));
            }
            const __m256 dx = _mm256_broadcast_ss(xd + b);
            const __m256 ox = _mm256_broadcast_ss(xo + b);
            SPARKV_UNROLL
            for (int g = 0; g < RG; ++g) {
                const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p[g], ones));
                acc[g] = _mm256_fmadd_ps(f, _mm256_mul_ps(groups[g][b].d, dx), acc[g]);
                acc[g] = _mm256_fmadd_ps(groups[g][b].off, ox, acc[g]);
            }
        }
        float* yt = y + t * ldy + r0;
        SPARKV_UNROLL
        for (int g = 0; g < RG; ++g) {
            const int64_t valid = std::min<int64_t>(8, n_rows - 8 * g);
            if (valid == 8) {
                _mm256_storeu_ps(yt + 8 * g, acc[g]);
            } else if (valid > 0) {
                alignas(32) float lanes[8];
                _mm256_store_ps(lanes, acc[g]);
                std::memcpy(yt + 8 * g, lanes, sizeof(float) * static_cast<size_t>(valid));
            }
        }
    }
}

template <GgmlType kType>
void gemm_panels(const GemmTask& task) {
    const Matrix& w = *task.w;
    const int64_t nb = w.cols / 32;
    auto* panel = reinterpret_cast<PanelBlock*>((reinterpret_cast<uintptr_t>(task.scratch) + 31) &
                                                ~uintptr_t{31});
    // Two 8-row groups share every activation broadcast; one group when a block row is wide, so
    // that the panel stays in L1 next to the activation stream.
    const int groups = nb <= 32 ? 2 : 1;
    for (int64_t r = task.r0; r < task.r1; r += 8 * groups) {
        const int64_t n_rows = std::min<int64_t>(8 * groups, task.r1 - r);
        const int n_groups = static_cast<int>((n_rows + 7) / 8);
        for (int g = 0; g < n_groups; ++g) {
            pack_group<kType>(w, r + 8 * g, std::min<int64_t>(8, n_rows - 8 * g), panel + g * nb);
        }
        if (n_groups == 2) {
            const PanelBlock* const gp[2] = {panel, panel + nb};
            panel_kernel<2>(gp, *task.a, task.t0, task.t1, r, n_rows, task.y, task.ldy);
        } else {
            const PanelBlock* const gp[1] = {panel};
            panel_kernel<1>(gp, *task.a, task.t0, task.t1, r, n_rows, task.y, task.ldy);
        }
    }
}

}  // namespace

bool gemm_panel(const GemmTask& task) {
    if (task.t1 - task.t0 < kPanelMinTokens) return false;
    switch (task.w->type) {
        case GgmlType::Q4_0:
            gemm_panels<GgmlType::Q4_0>(task);
            return true;
        case GgmlType::Q4_1:
            gemm_panels<GgmlType::Q4_1>(task);
            return true;
        default:
            return false;
    }
}

}  // namespace sparkv::kernels::detail::avx2
