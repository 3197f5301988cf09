// AVX-512 VNNI GEMM for every quantised weight type and prefill-sized token counts, on
// row-interleaved panels.
//
// Each SIMD lane holds one weight row: a panel of 16 rows is unpacked (simd_unpack.h: the
// block's quants as unsigned bytes, its scale and offset factor) and transposed once into an
// L1/L2-resident scratch buffer, lane r of vector k holding row r's elements 4k..4k+3 of a
// 32-element block. vpdpbusd of that vector with 4 broadcast activation bytes adds those 4
// products for all 16 rows into int32 lanes, so a block costs 8 vpdpbusd per 16 rows and
// token, then one convert, one scale multiply and two FMAs (the block scale times the
// activation scale, the offset factor times the activation's block sum). Results land in
// lanes = rows, so no horizontal sums are needed. The tile is 2 panels (32 rows) x up to 4
// tokens: every panel vector load serves 4 tokens and every activation broadcast 2 panels.
//
// The panel is a transient per-task buffer (like a BLAS packing step), rebuilt for every 32 rows
// and reused by all tokens of the task; the memory-mapped weights are not copied.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_kernels.h"
#include "engine/kernels/avx512_kernels.h"
#include "engine/kernels/simd_unpack.h"

namespace sparkv::kernels::detail::avx512 {

namespace {

constexpr int kLanes = 16;
constexpr int kPanels = 2;  // 16-row panels per tile
constexpr int kMaxTileTokens = 4;
constexpr int64_t kPanelMinTokens = 2;

// One 16-row panel of one 32-element block: the quants (lane = row), then per scale group the
// rows' scales and offset factors.
template <int G>
struct alignas(64) PanelBlock {
    __m512i q[8];
    __m512 d[G];
    __m512 off[G];
};
static_assert(sizeof(PanelBlock<1>) == 640 && sizeof(PanelBlock<2>) == 768);

// Unpacks rows [r0, r0 + n_rows) (n_rows <= 16; missing rows are zero) of every block.
template <GgmlType kType>
void pack_panel(const Matrix& w, int64_t r0, int64_t n_rows,
                PanelBlock<simd::Unpack<kType>::kGroups>* out) {
    using U = simd::Unpack<kType>;
    constexpr int G = U::kGroups;
    const int64_t nb = w.cols / 32;
    for (int64_t b = 0; b < nb; ++b) {
        __m256i lo[8], hi[8];
        alignas(64) float scale[G][kLanes], off[G][kLanes];
        for (int r = 0; r < kLanes; ++r) {
            __m256i v = _mm256_setzero_si256();
            float s[2] = {0.0f, 0.0f}, o[2] = {0.0f, 0.0f};
            if (r < n_rows) v = U::block(w.data + (r0 + r) * w.row_bytes, b, s, o);
            // Not `(r < 8 ? lo : hi)[r % 8] = v`: GCC 12 at -O1 (the sanitizer builds) wrote
            // rows 8-15 wrongly through that conditional array lvalue; every panel's high half
            // was off (Isa/MatmulIsa.*/avx512), while -O3 happened to be right.
            if (r < 8)
                lo[r] = v;
            else
                hi[r - 8] = v;
            for (int g = 0; g < G; ++g) {
                scale[g][r] = s[g];
                off[g][r] = o[g];
            }
        }
        avx2::transpose8(lo);  // lo[k] lane r: row r's elements 4k..4k+3
        avx2::transpose8(hi);
        for (int k = 0; k < 8; ++k) {  // rows 0-7 in the low 256 bits, 8-15 in the high
            auto* half = reinterpret_cast<__m256i*>(&out[b].q[k]);
            _mm256_store_si256(half, lo[k]);
            _mm256_store_si256(half + 1, hi[k]);
        }
        for (int g = 0; g < G; ++g) {
            out[b].d[g] = _mm512_load_ps(scale[g]);
            out[b].off[g] = _mm512_load_ps(off[g]);
        }
    }
}

// Where a token's per-block activation factors live for a weight type.
struct ActivationLayout {
    int xd_shift;  // block b's scale is d[b >> xd_shift] (Q8_K: one per 8 blocks)
    bool off16;    // offsets per 16 elements (off16) instead of per 32 (off)
};

// Tokens [t, t + TT) against the panels groups[0..RG).
template <int G, int RG, int TT>
void panel_tile(const PanelBlock<G>* const (&panels)[RG], const PackedActivations& a,
                ActivationLayout layout, int64_t t, int64_t r0, int64_t n_rows, float* y,
                int64_t ldy) {
    const int64_t nb = a.cols / 32;
    __m512 acc[RG][TT];
    SPARKV_UNROLL
    for (int p = 0; p < RG; ++p) {
        SPARKV_UNROLL
        for (int j = 0; j < TT; ++j) acc[p][j] = _mm512_setzero_ps();
    }
    const int32_t* x4[TT];
    const float* xd[TT];
    const float* xo[TT];
    SPARKV_UNROLL
    for (int j = 0; j < TT; ++j) {
        x4[j] = reinterpret_cast<const int32_t*>(a.qs + (t + j) * a.cols);
        xd[j] = a.d + (t + j) * a.d_stride;
        xo[j] = layout.off16 ? a.off16 + (t + j) * a.off16_stride : a.off + (t + j) * a.off_stride;
    }
    for (int64_t b = 0; b < nb; ++b) {
        SPARKV_UNROLL
        for (int g = 0; g < G; ++g) {
            __m512i sum[RG][TT];
            SPARKV_UNROLL
            for (int p = 0; p < RG; ++p) {
                SPARKV_UNROLL
                for (int j = 0; j < TT; ++j) sum[p][j] = _mm512_setzero_si512();
            }
            SPARKV_UNROLL
            for (int k = 8 / G * g; k < 8 / G * (g + 1); ++k) {
                __m512i q[RG];
                SPARKV_UNROLL
                for (int p = 0; p < RG; ++p) q[p] = _mm512_load_si512(&panels[p][b].q[k]);
                SPARKV_UNROLL
                for (int j = 0; j < TT; ++j) {
                    const __m512i x = _mm512_set1_epi32(x4[j][8 * b + k]);
                    SPARKV_UNROLL
                    for (int p = 0; p < RG; ++p)
                        sum[p][j] = _mm512_dpbusd_epi32(sum[p][j], q[p], x);
                }
            }
            SPARKV_UNROLL
            for (int j = 0; j < TT; ++j) {
                const __m512 dx = _mm512_set1_ps(xd[j][b >> layout.xd_shift]);
                const __m512 ox = _mm512_set1_ps(xo[j][G * b + g]);
                SPARKV_UNROLL
                for (int p = 0; p < RG; ++p) {
                    // maskz: GCC 12 warns (spuriously) on the unmasked convert.
                    const __m512 f = _mm512_maskz_cvtepi32_ps(0xffff, sum[p][j]);
                    acc[p][j] = _mm512_fmadd_ps(f, _mm512_mul_ps(panels[p][b].d[g], dx), acc[p][j]);
                    acc[p][j] = _mm512_fmadd_ps(panels[p][b].off[g], ox, acc[p][j]);
                }
            }
        }
    }
    SPARKV_UNROLL
    for (int p = 0; p < RG; ++p) {
        const int64_t valid = std::min<int64_t>(kLanes, n_rows - kLanes * p);
        if (valid <= 0) continue;
        const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1u);
        SPARKV_UNROLL
        for (int j = 0; j < TT; ++j)
            _mm512_mask_storeu_ps(y + (t + j) * ldy + r0 + kLanes * p, mask, acc[p][j]);
    }
}

template <int G, int RG>
void run_tokens(const PanelBlock<G>* const (&panels)[RG], const GemmTask& task,
                ActivationLayout layout, int64_t r0, int64_t n_rows) {
    int64_t t = task.t0;
    for (; t + kMaxTileTokens <= task.t1; t += kMaxTileTokens)
        panel_tile<G, RG, kMaxTileTokens>(panels, *task.a, layout, t, r0, n_rows, task.y, task.ldy);
    switch (task.t1 - t) {
        case 3:
            return panel_tile<G, RG, 3>(panels, *task.a, layout, t, r0, n_rows, task.y, task.ldy);
        case 2:
            return panel_tile<G, RG, 2>(panels, *task.a, layout, t, r0, n_rows, task.y, task.ldy);
        case 1:
            return panel_tile<G, RG, 1>(panels, *task.a, layout, t, r0, n_rows, task.y, task.ldy);
        default:
            return;
    }
}

template <GgmlType kType>
void gemm_panels(const GemmTask& task, ActivationLayout layout) {
    constexpr int G = simd::Unpack<kType>::kGroups;
    const Matrix& w = *task.w;
    const int64_t nb = w.cols / 32;
    auto* panel = reinterpret_cast<PanelBlock<G>*>(
        (reinterpret_cast<uintptr_t>(task.scratch) + 63) & ~uintptr_t{63});
    for (int64_t r = task.r0; r < task.r1; r += kPanels * kLanes) {
        const int64_t n_rows = std::min<int64_t>(kPanels * kLanes, task.r1 - r);
        if (n_rows > kLanes) {
            pack_panel<kType>(w, r, kLanes, panel);
            pack_panel<kType>(w, r + kLanes, n_rows - kLanes, panel + nb);
            const PanelBlock<G>* const panels[2] = {panel, panel + nb};
            run_tokens<G, 2>(panels, task, layout, r, n_rows);
        } else {
            pack_panel<kType>(w, r, n_rows, panel);
            const PanelBlock<G>* const panels[1] = {panel};
            run_tokens<G, 1>(panels, task, layout, r, n_rows);
        }
    }
}

}  // namespace

bool gemm_panel(const GemmTask& task) {
    // From 2 tokens on (1 token is the GEMV's): every token's result is then the same bits
    // whatever the chunk it arrives in, so that a short chunk (an ingest's last one, say) gives
    // exactly the K/V the same tokens get inside a longer prefill. The AVX2 tile the panel would
    // otherwise hand short tasks to sums in another order.
    if (task.t1 - task.t0 < kPanelMinTokens) return false;
    constexpr ActivationLayout k32{0, false}, kSuper32{3, false}, kSuper16{3, true};
    switch (task.w->type) {
        case GgmlType::Q4_0:
            gemm_panels<GgmlType::Q4_0>(task, k32);
            return true;
        case GgmlType::Q4_1:
            gemm_panels<GgmlType::Q4_1>(task, k32);
            return true;
        case GgmlType::Q5_0:
            gemm_panels<GgmlType::Q5_0>(task, k32);
            return true;
        case GgmlType::Q5_1:
            gemm_panels<GgmlType::Q5_1>(task, k32);
            return true;
        case GgmlType::Q8_0:
            gemm_panels<GgmlType::Q8_0>(task, k32);
            return true;
        case GgmlType::IQ4_NL:
            gemm_panels<GgmlType::IQ4_NL>(task, k32);
            return true;
        case GgmlType::Q2_K:
            gemm_panels<GgmlType::Q2_K>(task, kSuper16);
            return true;
        case GgmlType::Q3_K:
            gemm_panels<GgmlType::Q3_K>(task, kSuper16);
            return true;
        case GgmlType::Q4_K:
            gemm_panels<GgmlType::Q4_K>(task, kSuper32);
            return true;
        case GgmlType::Q5_K:
            gemm_panels<GgmlType::Q5_K>(task, kSuper32);
            return true;
        case GgmlType::Q6_K:
            gemm_panels<GgmlType::Q6_K>(task, kSuper16);
            return true;
        case GgmlType::IQ4_XS:
            gemm_panels<GgmlType::IQ4_XS>(task, kSuper32);
            return true;
        default:
            return false;
    }
}

}  // namespace sparkv::kernels::detail::avx512
