// The attention driver: validates the shapes, cuts the work into (KV head, query tile, key
// range) tasks for the thread pool, and merges split-key partial results. The arithmetic lives
// in the per-ISA flash-attention kernels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "common/error.h"
#include "engine/kernels/attention_driver.h"
#include "engine/kernels/dispatch.h"

namespace sparkv::kernels::detail {

void validate_attention(const AttentionShape& s, int64_t ldq, int64_t n_q, const int32_t* q_pos,
                        int64_t ldo) {
    if (s.n_head <= 0 || s.n_kv_head <= 0 || s.n_head % s.n_kv_head != 0) {
        fail("attention: {} query heads cannot be grouped over {} KV heads", s.n_head, s.n_kv_head);
    }
    if (s.head_dim <= 0 || s.head_dim > kMaxHeadDim) {
        fail("attention: head_dim {} is outside 1..{}", s.head_dim, kMaxHeadDim);
    }
    const int64_t width = int64_t(s.n_head) * s.head_dim;
    if (n_q > 1 && (ldq < width || ldo < width)) {
        fail("attention: row strides ({} for q, {} for out) are shorter than {} heads x {} dims",
             ldq, ldo, s.n_head, s.head_dim);
    }
    for (int64_t i = 0; i < n_q; ++i) {
        if (q_pos[i] < 0 || q_pos[i] >= s.kv_capacity) {
            fail("attention: query {} is at position {}, outside the cache of {} positions", i,
                 q_pos[i], s.kv_capacity);
        }
    }
}

namespace {

// Combines the split-key partial results of one (query row, head) into out.
void merge_partials(const float* first, int64_t n_parts, size_t part_stride, int head_dim,
                    float* out) {
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < n_parts; ++p) max = std::max(max, first[p * part_stride]);
    double total = 0.0;
    double acc[kMaxHeadDim] = {};
    for (int64_t p = 0; p < n_parts; ++p) {
        const float* part = first + p * part_stride;
        if (part[1] == 0.0f) continue;  // this key range had no visible key
        const double w = std::exp(double(part[0]) - max);
        total += w * part[1];
        for (int d = 0; d < head_dim; ++d) acc[d] += w * part[2 + d];
    }
    for (int d = 0; d < head_dim; ++d) out[d] = static_cast<float>(acc[d] / total);
}

}  // namespace

void attention_with(const KernelTable& kt, const AttentionShape& s, const float* q, int64_t ldq,
                    int64_t n_q, const int32_t* q_pos, const uint16_t* k, const uint16_t* v,
                    float* out, int64_t ldo, ThreadPool& pool) {
    validate_attention(s, ldq, n_q, q_pos, ldo);
    if (n_q == 0) return;
    const int group = s.n_head / s.n_kv_head;
    const int64_t q_tiles = (n_q + kAttnQueryTile - 1) / kAttnQueryTile;

    // Keys each query tile needs: up to its last visible position.
    std::vector<int64_t> tile_keys(static_cast<size_t>(q_tiles));
    int64_t max_keys = 0;
    for (int64_t t = 0; t < q_tiles; ++t) {
        const int64_t end = std::min(n_q, (t + 1) * kAttnQueryTile);
        int64_t keys = 0;
        for (int64_t i = t * kAttnQueryTile; i < end; ++i)
            keys = std::max<int64_t>(keys, q_pos[i] + 1);
        tile_keys[t] = keys;
        max_keys = std::max(max_keys, keys);
    }

    double visible_keys = 0;
    for (int64_t i = 0; i < n_q; ++i) visible_keys += double(q_pos[i]) + 1.0;
    const bool parallel = visible_keys * s.n_head * s.head_dim * 2.0 >= kParallelMinWork;
    const int64_t threads = parallel ? pool.size() : 1;

    // Few (KV head, query tile) pairs, as in decode, cannot keep the threads busy: split the keys
    // too and merge the partial softmax results afterwards.
    int64_t key_chunk = max_keys;
    if (threads > 1 && q_tiles * s.n_kv_head < 2 * threads && max_keys > 512) {
        const int64_t parts = (4 * threads + q_tiles * s.n_kv_head - 1) / (q_tiles * s.n_kv_head);
        key_chunk = std::max<int64_t>(256, (max_keys + parts - 1) / parts);
        key_chunk = (key_chunk + kAttnKeyTile - 1) / kAttnKeyTile * kAttnKeyTile;
    }
    const int64_t key_parts = (max_keys + key_chunk - 1) / key_chunk;
    const bool split = key_parts > 1;

    struct Task {
        int kv_head;
        int64_t tile, part, keys;
    };
    std::vector<Task> tasks;
    tasks.reserve(static_cast<size_t>(q_tiles * s.n_kv_head * key_parts));
    for (int64_t t = 0; t < q_tiles; ++t)
        for (int g = 0; g < s.n_kv_head; ++g)
            for (int64_t p = 0; p < key_parts; ++p)
                tasks.push_back({g, t, p, std::min(key_chunk, tile_keys[t] - p * key_chunk)});
    // Longest first, so that the causal triangle's long tiles do not finish last.
    std::stable_sort(tasks.begin(), tasks.end(),
                     [](const Task& a, const Task& b) { return a.keys > b.keys; });

    const size_t part_stride = static_cast<size_t>(s.head_dim + 2);
    const size_t tile_partial = static_cast<size_t>(kAttnQueryTile * group) * part_stride;
    std::vector<float> partial;
    if (split) {
        partial.assign(static_cast<size_t>(q_tiles * s.n_kv_head * key_parts) * tile_partial, 0.0f);
    }
    // Uninitialised: every kernel writes its scratch before reading it.
    const size_t scratch_floats = attention_scratch_floats(s, std::min(n_q, kAttnQueryTile));
    const std::unique_ptr<float[]> scratch(
        new float[scratch_floats * static_cast<size_t>(threads)]);

    run_tasks(pool, parallel, static_cast<int64_t>(tasks.size()), [&](int64_t i, int thread) {
        const Task& task = tasks[static_cast<size_t>(i)];
        AttentionTask a;
        a.shape = &s;
        a.q = q;
        a.ldq = ldq;
        a.q_pos = q_pos;
        a.k = k;
        a.v = v;
        a.kv_head = task.kv_head;
        a.q0 = task.tile * kAttnQueryTile;
        a.q1 = std::min(n_q, a.q0 + kAttnQueryTile);
        a.k0 = task.part * key_chunk;
        a.k1 = a.k0 + std::max<int64_t>(0, task.keys);
        a.out = out;
        a.ldo = ldo;
        if (split) {
            const int64_t slot = (task.tile * s.n_kv_head + task.kv_head) * key_parts + task.part;
            a.partial = partial.data() + static_cast<size_t>(slot) * tile_partial;
        }
        a.scratch = scratch.get() + scratch_floats * static_cast<size_t>(thread);
        kt.attention(a);
    });

    if (!split) return;
    for (int64_t t = 0; t < q_tiles; ++t) {
        for (int g = 0; g < s.n_kv_head; ++g) {
            const float* first =
                partial.data() +
                static_cast<size_t>((t * s.n_kv_head + g) * key_parts) * tile_partial;
            for (int64_t i = t * kAttnQueryTile; i < std::min(n_q, (t + 1) * kAttnQueryTile); ++i) {
                for (int h = 0; h < group; ++h) {
                    const size_t row = static_cast<size_t>((i - t * kAttnQueryTile) * group + h);
                    merge_partials(
                        first + row * part_stride, key_parts, tile_partial, s.head_dim,
                        out + i * ldo + static_cast<int64_t>(g * group + h) * s.head_dim);
                }
            }
        }
    }
}

}  // namespace sparkv::kernels::detail
