// The register-blocked GEMM / GEMV tiling shared by the AVX2 weight-type kernels
// (avx2_gemm_legacy.cpp, avx2_gemm_kquants.cpp, avx2_matmul.cpp), which run straight on the
// memory-mapped GGUF blocks (no repacking).
//
// A micro-kernel computes R weight rows x T tokens at once: each weight block is unpacked once
// into a register and multiplied with the T tokens' int8 activations (maddubs + madd), so the
// unpack cost is shared by T tokens and every activation load by R rows. Partial sums are kept
// as 8-lane fp32 accumulators scaled per block (FMA) and reduced once at the end. The offset
// terms (Q4_1's min, Q4_0's -8, the K quants' mins and biases) are dot products of per-block
// weight factors with per-block activation sums, done as separate 8-wide FMAs into the same
// accumulators.
//
// Loop nest per task: 16-row weight panel (its block scales converted to fp32 once for the
// 32-element types) x token tiles of 4 x row pairs. The panel's weight bytes and the tile's
// activations stay in L1.
//
// Everything here has internal linkage (an anonymous namespace in an AVX2-only header), so no
// AVX2 instantiation can be merged with code compiled for another instruction set.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/dispatch.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

constexpr int kMaxR = 4;

// Everything a micro-kernel needs for its R x T rectangle.
struct Tile {
    const uint8_t* rows[kMaxR];  // weight rows
    const float* wd[kMaxR];      // legacy types: per-block fp32 scale of each row
    const float* woff[kMaxR];    // legacy types: per-block offset factor of each row
    const PackedActivations* a;
    int64_t t;  // first token
    int64_t r;  // first row
    float* y;
    int64_t ldy;
};

template <int R, int T>
inline void store_tile(const Tile& tile, __m256 (&acc)[R][T]) {
    SPARKV_UNROLL
    for (int j = 0; j < T; ++j) {
        SPARKV_UNROLL
        for (int i = 0; i < R; ++i) tile.y[(tile.t + j) * tile.ldy + tile.r + i] = hsum(acc[i][j]);
    }
}

template <int R, int T>
inline void zero(__m256 (&acc)[R][T]) {
    SPARKV_UNROLL
    for (int i = 0; i < R; ++i) {
        SPARKV_UNROLL
        for (int j = 0; j < T; ++j) acc[i][j] = _mm256_setzero_ps();
    }
}

// ---- tiling ----

template <typename K, int R, int T>
void call_tile(const Tile& tile) {
    K::template run<R, T>(tile);
}

// Micro-kernel shapes: 2 rows x up to 4 tokens for GEMM; 4 rows x 1 token for GEMV, where
// there is no token reuse and more rows in flight hide the memory latency.
template <typename K>
void run_tile(int nr, int nt, const Tile& tile) {
    using Fn = void (*)(const Tile&);
    static constexpr Fn kGemm[2][4] = {
        {call_tile<K, 1, 1>, call_tile<K, 1, 2>, call_tile<K, 1, 3>, call_tile<K, 1, 4>},
        {call_tile<K, 2, 1>, call_tile<K, 2, 2>, call_tile<K, 2, 3>, call_tile<K, 2, 4>}};
    static constexpr Fn kGemv[4] = {call_tile<K, 1, 1>, call_tile<K, 2, 1>, call_tile<K, 3, 1>,
                                    call_tile<K, 4, 1>};
    if (nt == 1) {
        kGemv[nr - 1](tile);
    } else {
        kGemm[nr - 1][nt - 1](tile);
    }
}

constexpr int kTileTokens = 4;

// Legacy types convert each panel's block scales to fp32 first; other types pass through.
template <typename K, bool kLegacy>
void gemm_type(const GemmTask& task) {
    const Matrix& w = *task.w;
    const int64_t nb = w.cols / 32;
    const int64_t nb_pad = (nb + 7) / 8 * 8;
    const bool gemv = task.t1 - task.t0 == 1;
    const int64_t row_step = gemv ? 4 : 2;
    Tile tile{};
    tile.a = task.a;
    tile.y = task.y;
    tile.ldy = task.ldy;
    for (int64_t p0 = task.r0; p0 < task.r1; p0 += kGemmPanelRows) {
        const int64_t p1 = std::min(task.r1, p0 + kGemmPanelRows);
        float* wd = task.scratch;
        float* woff = task.scratch + kGemmPanelRows * nb_pad;
        if constexpr (kLegacy) {
            for (int64_t r = p0; r < p1; ++r) {
                K::convert_scales(w.data + r * w.row_bytes, nb, nb_pad, wd + (r - p0) * nb_pad,
                                  woff + (r - p0) * nb_pad);
            }
        }
        for (int64_t t = task.t0; t < task.t1; t += kTileTokens) {
            const int nt = static_cast<int>(std::min<int64_t>(kTileTokens, task.t1 - t));
            tile.t = t;
            for (int64_t r = p0; r < p1; r += row_step) {
                const int nr = static_cast<int>(std::min(row_step, p1 - r));
                tile.r = r;
                for (int i = 0; i < nr; ++i) {
                    tile.rows[i] = w.data + (r + i) * w.row_bytes;
                    tile.wd[i] = wd + (r + i - p0) * nb_pad;
                    tile.woff[i] = woff + (r + i - p0) * nb_pad;
                }
                run_tile<K>(nr, nt, tile);
            }
        }
    }
}

}  // namespace

}  // namespace sparkv::kernels::detail::avx2
