// Internal interface between the portable drivers (threading, buffers) and the per-ISA compute
// kernels. ISA translation units are compiled with their own -m flags and export only the plain
// functions of a KernelTable, so no inline function or template compiled with AVX leaks into
// portable code through the linker.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/ggml_types.h"
#include "engine/kernels/isa.h"
#include "engine/kernels/kernels.h"

namespace sparkv::kernels::detail {

// Activations of a matmul encoded once for all weight rows, in a layout made for the GEMM
// micro-kernels rather than ggml's block structs (the numbers are the same):
//   Q8_0 / Q8_1 / Q8_K: quants int8 [token][cols]; one float scale per block in d;
//     off[b] = the block's quant sum times its scale (Q8_1: ggml's fp16 s; Q8_K: per 32 elements).
//     off16 (Q8_K only) holds the same per 16 elements.
//   F16 / BF16 / F32: values [token][cols], fp32 after rounding to the activation type.
// Scale arrays are padded with zeros to a multiple of 8 entries per token.
struct PackedActivations {
    GgmlType type = GgmlType::F32;
    int64_t cols = 0;
    int64_t n_tokens = 0;
    int8_t* qs = nullptr;
    float* d = nullptr;
    float* off = nullptr;
    float* off16 = nullptr;
    float* values = nullptr;
    int64_t d_stride = 0;      // floats per token in d
    int64_t off_stride = 0;    // floats per token in off
    int64_t off16_stride = 0;  // floats per token in off16
};

// One rectangle of a matmul: weight rows [r0, r1) times tokens [t0, t1).
struct GemmTask {
    const Matrix* w = nullptr;
    const PackedActivations* a = nullptr;
    int64_t r0 = 0, r1 = 0;
    int64_t t0 = 0, t1 = 0;
    float* y = nullptr;
    int64_t ldy = 0;
    float* scratch = nullptr;  // gemm_scratch_floats(w) floats owned by the calling thread
};

// Rows whose block scales a GEMM kernel converts to fp32 at once (the weight panel).
constexpr int64_t kGemmPanelRows = 16;
// Scratch floats a GemmTask needs for this matrix: the panel's fp32 block scales, or packed
// panels (AVX2: 320 bytes per 8 rows and block, 16 rows; AVX-512: up to 768 bytes per 16 rows and
// block, 32 rows) plus alignment.
inline size_t gemm_scratch_floats(const Matrix& w) {
    const int64_t blocks = (w.cols / 32 + 7) / 8 * 8;
    return static_cast<size_t>(std::max(kGemmPanelRows * blocks * 2, 2 * blocks * 192) + 64);
}

// One tile of flash attention: query rows [q0, q1) of the n_head / n_kv_head query heads that
// share KV head kv_head, against keys [k0, k1) (clipped further by each query's position).
// With partial == nullptr the result is normalised into out; otherwise the running max, sum
// and unnormalised output of each (query row, head) go to partial for a later merge:
// partial[((row - q0) * group + h) * (head_dim + 2) + {0: max, 1: sum, 2..: output}].
struct AttentionTask {
    const AttentionShape* shape = nullptr;
    const float* q = nullptr;
    int64_t ldq = 0;
    const int32_t* q_pos = nullptr;
    const uint16_t* k = nullptr;  // whole layer, [kv_head][kv_capacity][head_dim]
    const uint16_t* v = nullptr;
    int kv_head = 0;
    int64_t q0 = 0, q1 = 0;
    int64_t k0 = 0, k1 = 0;
    float* out = nullptr;
    int64_t ldo = 0;
    float* partial = nullptr;
    float* scratch = nullptr;  // attention_scratch_floats(shape, q1 - q0) floats
    // Block-sparse tasks: when key_blocks is set, only the keys of these blocks (ascending block
    // indices, block b = positions [b * key_block, (b + 1) * key_block)) are visited instead of
    // [k0, k1); every query's causal limit still applies.
    const int32_t* key_blocks = nullptr;
    int64_t n_key_blocks = 0;
    int key_block = 0;
};

// The key tiles of an attention task below key_end, in order: runs of consecutive keys of at most
// `tile` positions ([k0, k1) in tiles, or the task's key blocks with adjacent blocks merged).
// `static`, so that every ISA file has its own copy (see the top of this file).
struct KeyTile {
    int64_t begin = 0;
    int64_t n = 0;
};
static inline bool next_key_tile(const AttentionTask& t, int64_t key_end, int64_t tile,
                                 int64_t& cursor, KeyTile& out) {
    if (t.key_blocks == nullptr) {  // cursor: next key position
        if (cursor < t.k0) cursor = t.k0;
        if (cursor >= key_end) return false;
        out = {cursor, std::min(tile, key_end - cursor)};
        cursor += out.n;
        return true;
    }
    // cursor: key position inside the block list, as block index * key_block + offset, encoded
    // as (list index << 32) | offset within the run.
    const int64_t kb = t.key_block;
    int64_t i = cursor >> 32, offset = cursor & 0xffffffff;
    if (i >= t.n_key_blocks) return false;
    const int64_t begin = int64_t(t.key_blocks[i]) * kb + offset;
    if (begin >= key_end) return false;
    int64_t end = (int64_t(t.key_blocks[i]) + 1) * kb;
    int64_t j = i;  // merge adjacent blocks while the tile has room
    while (end - begin < tile && j + 1 < t.n_key_blocks &&
           t.key_blocks[j + 1] == t.key_blocks[j] + 1) {
        ++j;
        end += kb;
    }
    end = std::min({end, begin + tile, key_end});
    out = {begin, end - begin};
    // Where the next tile starts: inside block j (or the block after it).
    const int64_t next_block_start = int64_t(t.key_blocks[j]) * kb;
    if (end < next_block_start + kb) {
        cursor = (j << 32) | (end - next_block_start);
    } else {
        cursor = (j + 1) << 32;
    }
    return true;
}

// Query rows and keys per attention tile.
constexpr int64_t kAttnQueryTile = 64;  // each converted K/V tile serves 64 x group queries
constexpr int64_t kAttnKeyTile = 64;
// Scratch floats an AttentionTask needs when its tiles have at most `tile_rows` query rows:
// transposed queries, output accumulators (query vectors = rows x heads of the group, padded
// to whole AVX vectors), K and V tiles, scores, per-vector max / sum / position / rescale
// factor, plus slack for 32-byte alignment of each array.
inline size_t attention_scratch_floats(const AttentionShape& s, int64_t tile_rows) {
    const int64_t vectors =
        std::max<int64_t>(8, (tile_rows * (s.n_head / s.n_kv_head) + 7) / 8 * 8);
    return static_cast<size_t>(2 * vectors * s.head_dim + 2 * kAttnKeyTile * s.head_dim +
                               kAttnKeyTile * vectors + 4 * vectors + 8 * 9);
}

// Rotary angles of one position, as ggml computes them: cache[2i] = cos, cache[2i + 1] = sin of
// pair i, for n_rot / 2 pairs (float recurrence theta_i = pos * theta_scale^i, theta_scale =
// freq_base^(-2 / n_rot)). cache holds n_rot floats, at most kMaxRopeDims.
constexpr int kMaxRopeDims = 1024;
void rope_cache(int32_t position, const RopeParams& p, float theta_scale, float* cache);

// Work (multiply-adds) below which a kernel runs on the calling thread only. A fork-join costs
// a few microseconds when the workers are spinning and the tasks are balanced; below this, one
// core finishes (a 192 x 576 GEMV takes ~10 us) before two would have. Larger GEMVs (the
// 576 x 576 projections and up) do gain from the second core in decode.
constexpr double kParallelMinWork = 256.0 * 1024.0;

// Runs fn(task, thread) for every task, on the pool or inline on the caller (thread 0).
template <typename Fn>
void run_tasks(ThreadPool& pool, bool parallel, int64_t n_tasks, Fn&& fn) {
    if (parallel && pool.size() > 1) {
        pool.parallel_for(n_tasks, fn);
    } else {
        for (int64_t task = 0; task < n_tasks; ++task) fn(task, 0);
    }
}

struct KernelTable {
    Isa isa;
    // Encodes tokens [t0, t1) of x into a (allocated for a.type and a.cols).
    void (*pack_activations)(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                             const PackedActivations& a);
    void (*gemm)(const GemmTask& task);
    void (*attention)(const AttentionTask& task);
    void (*rms_norm)(const float* x, const float* weight, float* out, int64_t n, float eps);
    void (*rope)(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                 const RopeParams& params);
    void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
    void (*fp32_to_fp16_row)(const float* src, uint16_t* dst, int64_t n);
    void (*fp16_to_fp32_row)(const uint16_t* src, float* dst, int64_t n);
};

const KernelTable& portable_kernels();
#if defined(SPARKV_X86_KERNELS)
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
#endif

// The table for an ISA level; the caller makes sure the CPU supports it.
const KernelTable& kernel_table(Isa isa);
// The table selected_isa() picks.
const KernelTable& active_kernels();

}  // namespace sparkv::kernels::detail
