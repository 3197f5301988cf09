// The block-sparse attention driver: one task per (KV head, query block) row of the mask, visiting
// only that row's key blocks with the ISA's flash-attention kernel; and the public entry point
// that decides between the sparse and the dense path.
#include "engine/kernels/sparse_attention.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "engine/kernels/attention_driver.h"
#include "engine/kernels/dispatch.h"

namespace sparkv::kernels {

namespace detail {

void attention_masked_with(const KernelTable& kt, const AttentionShape& s, const float* q,
                           int64_t ldq, int64_t n_q, const int32_t* q_pos, const uint16_t* k,
                           const uint16_t* v, float* out, int64_t ldo, const SparseMask& mask,
                           ThreadPool& pool) {
    validate_attention(s, ldq, n_q, q_pos, ldo);
    if (n_q == 0) return;
    const int64_t B = mask.block;
    const int64_t pos0 = q_pos[0];
    if (!is_position_run(q_pos, n_q) || B <= 0 || kAttnQueryTile % B != 0 ||
        mask.n_kv_head != s.n_kv_head || mask.first_block != pos0 / B ||
        mask.n_query_blocks != (pos0 + n_q - 1) / B - mask.first_block + 1 ||
        static_cast<int64_t>(mask.offsets.size()) != mask.rows() + 1)
        fail("sparse attention: the mask was not built for these queries");

    struct Task {
        int kv_head;
        int64_t r0, r1;  // query rows of the call
        int64_t row;     // mask row
        int64_t blocks;
    };
    std::vector<Task> tasks;
    tasks.reserve(static_cast<size_t>(mask.rows()));
    double work = 0;
    for (int64_t r = 0; r < mask.rows(); ++r) {
        const int64_t qb = mask.first_block + r % mask.n_query_blocks;
        const int64_t r0 = std::max<int64_t>(0, qb * B - pos0);
        const int64_t r1 = std::min<int64_t>(n_q, (qb + 1) * B - pos0);
        const int64_t n =
            mask.offsets[static_cast<size_t>(r) + 1] - mask.offsets[static_cast<size_t>(r)];
        tasks.push_back({static_cast<int>(r / mask.n_query_blocks), r0, r1, r, n});
        work += double(r1 - r0) * double(n * B);
    }
    // Most blocks first, so that the long rows of the causal triangle do not finish last.
    std::stable_sort(tasks.begin(), tasks.end(),
                     [](const Task& a, const Task& b) { return a.blocks > b.blocks; });
    const int group = s.n_head / s.n_kv_head;
    const bool parallel = work * group * s.head_dim * 2.0 >= kParallelMinWork;
    const int64_t threads = parallel ? pool.size() : 1;
    const size_t scratch_floats = attention_scratch_floats(s, std::min(n_q, kAttnQueryTile));
    const std::unique_ptr<float[]> scratch(
        new float[scratch_floats * static_cast<size_t>(threads)]);

    run_tasks(pool, parallel, static_cast<int64_t>(tasks.size()), [&](int64_t i, int thread) {
        const Task& task = tasks[static_cast<size_t>(i)];
        const int64_t first = mask.offsets[static_cast<size_t>(task.row)];
        AttentionTask a;
        a.shape = &s;
        a.q = q;
        a.ldq = ldq;
        a.q_pos = q_pos;
        a.k = k;
        a.v = v;
        a.kv_head = task.kv_head;
        a.q0 = task.r0;
        a.q1 = task.r1;
        a.k0 = 0;
        a.k1 = task.blocks > 0
                   ? (int64_t(mask.keys[static_cast<size_t>(first + task.blocks - 1)]) + 1) * B
                   : 0;
        a.out = out;
        a.ldo = ldo;
        a.key_blocks = mask.keys.data() + first;
        a.n_key_blocks = task.blocks;
        a.key_block = static_cast<int>(B);
        a.scratch = scratch.get() + scratch_floats * static_cast<size_t>(thread);
        kt.attention(a);
    });
}

}  // namespace detail

AttentionStats sparse_attention(const AttentionShape& s, const float* q, int64_t ldq, int64_t n_q,
                                const int32_t* q_pos, const uint16_t* k, const uint16_t* v,
                                float* out, int64_t ldo, const SparseAttentionOptions& o,
                                ThreadPool& pool) {
    const double t0 = now_seconds();
    detail::validate_attention(s, ldq, n_q, q_pos, ldo);
    AttentionStats st;
    // Sparse only where a full query block exists: short runs (a question) and decode are dense.
    const bool full_block =
        n_q >= o.block && (q_pos[0] + o.block - 1) / o.block < (q_pos[0] + n_q) / o.block;
    if (o.enabled() && full_block && is_position_run(q_pos, n_q)) {
        const SparseMask mask = build_sparse_mask(s, q, ldq, n_q, q_pos, k, o, pool);
        detail::attention_masked_with(detail::active_kernels(), s, q, ldq, n_q, q_pos, k, v, out,
                                      ldo, mask, pool);
        st = mask.stats();
    } else {
        detail::attention_with(detail::active_kernels(), s, q, ldq, n_q, q_pos, k, v, out, ldo,
                               pool);
        st = dense_attention_stats(q_pos, n_q, s.n_kv_head, o.block);
    }
    st.seconds = now_seconds() - t0;
    return st;
}

}  // namespace sparkv::kernels
