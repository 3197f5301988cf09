// The block mask of sparse attention: pooling, block scores and the top-mass selection. Plain
// portable code for every ISA (only the exact fp16 -> fp32 conversion is dispatched), so that
// the same queries and cache give the same mask on any machine running the same build.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"
#include "engine/kernels/attention_driver.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/sparse_attention.h"

namespace sparkv::kernels {

namespace {

// Marks in `kept` the key blocks [0, diag] that one query head needs: the forced ones, then the
// highest pooled softmax mass until tau is reached.
void select_blocks(const float* qmean, const float* kmeans, const float* ksim, int64_t diag, int hd,
                   float scale, const SparseAttentionOptions& o, std::vector<float>& prob,
                   std::vector<int32_t>& order, std::vector<uint8_t>& kept) {
    const auto n = static_cast<size_t>(diag + 1);
    prob.assign(n, 0.0f);
    float max = -std::numeric_limits<float>::infinity();
    std::vector<uint8_t> scored(n, 0);
    for (size_t j = 0; j < n; ++j) {
        if (ksim[j] < o.min_similarity) continue;  // not represented by its mean: always kept
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += qmean[d] * kmeans[j * static_cast<size_t>(hd) + d];
        prob[j] = dot * scale;
        scored[j] = 1;
        max = std::max(max, prob[j]);
    }
    float total = 0.0f;
    for (size_t j = 0; j < n; ++j) {
        prob[j] = scored[j] ? std::exp(prob[j] - max) : 0.0f;
        total += prob[j];
    }
    float mass = 0.0f;
    order.clear();
    for (size_t j = 0; j < n; ++j) {
        if (total > 0.0f) prob[j] /= total;
        const auto jj = static_cast<int64_t>(j);
        const bool forced = !scored[j] || jj < o.sink_blocks || jj >= diag - o.local_blocks;
        if (forced) {
            kept[j] = 1;
            mass += prob[j];
        } else {
            order.push_back(static_cast<int32_t>(j));
        }
    }
    // Largest mass first; ties by position, so the choice is deterministic.
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return prob[static_cast<size_t>(a)] > prob[static_cast<size_t>(b)] ||
               (prob[static_cast<size_t>(a)] == prob[static_cast<size_t>(b)] && a < b);
    });
    for (int32_t j : order) {
        if (mass >= o.tau) break;
        kept[static_cast<size_t>(j)] = 1;
        mass += prob[static_cast<size_t>(j)];
    }
}

}  // namespace

float summarize_rows(const float* x, int64_t ld, int n, int hd, float* mean) {
    float unit[detail::kMaxHeadDim] = {};
    std::fill(mean, mean + hd, 0.0f);
    for (int r = 0; r < n; ++r) {
        const float* row = x + r * ld;
        float norm2 = 0.0f;
        for (int d = 0; d < hd; ++d) {
            mean[d] += row[d];
            norm2 += row[d] * row[d];
        }
        const float inv = norm2 > 0.0f ? 1.0f / std::sqrt(norm2) : 0.0f;
        for (int d = 0; d < hd; ++d) unit[d] += row[d] * inv;
    }
    float sum2 = 0.0f;
    for (int d = 0; d < hd; ++d) {
        mean[d] /= static_cast<float>(n);
        sum2 += unit[d] * unit[d];
    }
    // |sum of unit vectors|^2 = n + sum over ordered pairs i != j of cos(i, j).
    return n > 1 ? (sum2 - static_cast<float>(n)) / static_cast<float>(n * (n - 1)) : 1.0f;
}

BlockSummaries summarize_key_blocks(const AttentionShape& s, const uint16_t* k, int64_t n_blocks,
                                    int block, ThreadPool& pool) {
    const int hd = s.head_dim;
    BlockSummaries p;
    p.n_heads = s.n_kv_head;
    p.n_blocks = n_blocks;
    p.head_dim = hd;
    p.mean.resize(static_cast<size_t>(s.n_kv_head * n_blocks * hd));
    p.sim.resize(static_cast<size_t>(s.n_kv_head * n_blocks));
    const auto& convert = detail::active_kernels().fp16_to_fp32_row;  // exact on every ISA
    constexpr int64_t kBlocksPerTask = 16;
    const int64_t tasks_per_head = (n_blocks + kBlocksPerTask - 1) / kBlocksPerTask;
    const bool parallel =
        double(s.n_kv_head) * double(n_blocks) * block * hd * 3.0 >= detail::kParallelMinWork;
    detail::run_tasks(pool, parallel, s.n_kv_head * tasks_per_head, [&](int64_t task, int) {
        const int g = static_cast<int>(task / tasks_per_head);
        const int64_t b0 = (task % tasks_per_head) * kBlocksPerTask;
        const int64_t b1 = std::min(n_blocks, b0 + kBlocksPerTask);
        std::vector<float> rows(static_cast<size_t>(block * hd));
        const uint16_t* kh = k + int64_t(g) * s.kv_capacity * hd;
        for (int64_t b = b0; b < b1; ++b) {
            convert(kh + b * block * hd, rows.data(), int64_t(block) * hd);
            const size_t at = static_cast<size_t>(g * n_blocks + b);
            p.sim[at] = summarize_rows(rows.data(), hd, block, hd, p.mean.data() + at * hd);
        }
    });
    return p;
}

void validate(const SparseAttentionOptions& o) {
    if (!(o.tau > 0.0f && o.tau <= 1.0f))
        fail("sparse attention: tau = {} is outside (0, 1] (1 keeps every block: dense)", o.tau);
    if (o.block < 16 || detail::kAttnKeyTile % o.block != 0 ||
        detail::kAttnQueryTile % o.block != 0)
        fail(
            "sparse attention: block size {} does not divide the kernel's {}-token tile; use 16, "
            "32 or 64",
            o.block, detail::kAttnKeyTile);
    if (!(o.min_similarity >= -1.0f && o.min_similarity <= 1.0f))
        fail("sparse attention: min_similarity = {} is outside [-1, 1] (a cosine similarity)",
             o.min_similarity);
    if (o.sink_blocks < 0 || o.local_blocks < 0)
        fail("sparse attention: sink_blocks ({}) and local_blocks ({}) cannot be negative",
             o.sink_blocks, o.local_blocks);
}

AttentionStats SparseMask::stats() const {
    AttentionStats st;
    st.active_blocks = static_cast<int64_t>(keys.size());
    st.query_blocks = rows();
    for (int64_t r = 0; r < rows(); ++r) {
        st.causal_blocks += first_block + r % n_query_blocks + 1;
        st.dense_query_blocks += dense[static_cast<size_t>(r)];
    }
    return st;
}

bool is_position_run(const int32_t* q_pos, int64_t n_q) {
    for (int64_t i = 1; i < n_q; ++i)
        if (q_pos[i] != q_pos[0] + i) return false;
    return n_q > 0;
}

AttentionStats dense_attention_stats(const int32_t* q_pos, int64_t n_q, int n_kv_head, int block) {
    std::vector<int64_t> blocks(static_cast<size_t>(n_q));
    for (int64_t i = 0; i < n_q; ++i) blocks[static_cast<size_t>(i)] = q_pos[i] / block;
    std::sort(blocks.begin(), blocks.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
    AttentionStats st;
    for (int64_t b : blocks) st.causal_blocks += (b + 1) * n_kv_head;
    st.active_blocks = st.causal_blocks;
    st.query_blocks = static_cast<int64_t>(blocks.size()) * n_kv_head;
    st.dense_query_blocks = st.query_blocks;
    return st;
}

SparseMask build_sparse_mask(const AttentionShape& s, const float* q, int64_t ldq, int64_t n_q,
                             const int32_t* q_pos, const uint16_t* k,
                             const SparseAttentionOptions& o, ThreadPool& pool) {
    validate(o);
    if (!is_position_run(q_pos, n_q))
        fail("sparse attention: the query positions are not one consecutive run");
    const int B = o.block;
    const int64_t pos0 = q_pos[0];
    const int64_t full0 = (pos0 + B - 1) / B, full1 = (pos0 + n_q) / B;
    BlockSummaries keys, queries;
    if (o.enabled() && full1 > full0) {
        keys = summarize_key_blocks(s, k, full1, B, pool);
        queries.n_heads = s.n_head;
        queries.n_blocks = full1 - full0;
        queries.head_dim = s.head_dim;
        queries.mean.resize(static_cast<size_t>(s.n_head * queries.n_blocks * s.head_dim));
        queries.sim.resize(static_cast<size_t>(s.n_head * queries.n_blocks));
        for (int h = 0; h < s.n_head; ++h) {
            for (int64_t i = 0; i < queries.n_blocks; ++i) {
                const size_t at = static_cast<size_t>(h * queries.n_blocks + i);
                const float* rows = q + ((full0 + i) * B - pos0) * ldq + int64_t(h) * s.head_dim;
                queries.sim[at] =
                    summarize_rows(rows, ldq, B, s.head_dim, queries.mean.data() + at * s.head_dim);
            }
        }
    }
    return select_sparse_mask(s, pos0, n_q, queries, keys, o, pool);
}

SparseMask select_sparse_mask(const AttentionShape& s, int64_t pos0, int64_t n_q,
                              const BlockSummaries& queries, const BlockSummaries& keys,
                              const SparseAttentionOptions& o, ThreadPool& pool) {
    validate(o);
    const int B = o.block;
    const int hd = s.head_dim;
    const int group = s.n_head / s.n_kv_head;
    const int64_t last = pos0 + n_q - 1;
    SparseMask m;
    m.block = B;
    m.n_kv_head = s.n_kv_head;
    m.first_block = pos0 / B;
    m.n_query_blocks = last / B - m.first_block + 1;

    // Full query blocks: [full0, full1) (absolute block indices).
    const int64_t full0 = (pos0 + B - 1) / B, full1 = (last + 1) / B;
    const int64_t n_full = std::max<int64_t>(0, full1 - full0);
    const bool sparse = o.enabled() && n_full > 0;
    if (sparse &&
        (queries.n_heads != s.n_head || queries.n_blocks != n_full || keys.n_heads != s.n_kv_head ||
         keys.n_blocks < full1 || queries.head_dim != hd || keys.head_dim != hd))
        fail("sparse attention: block summaries do not match the queries ({} full blocks from {})",
             n_full, full0);

    // One row per (KV head, query block), selected independently (deterministic per row).
    const int64_t rows = m.rows();
    std::vector<std::vector<int32_t>> kept_lists(static_cast<size_t>(rows));
    m.dense.assign(static_cast<size_t>(rows), 1);
    const bool parallel =
        sparse && double(rows) * double(full1) * group * hd * 2.0 >= detail::kParallelMinWork;
    detail::run_tasks(pool, parallel, rows, [&](int64_t r, int) {
        const int g = static_cast<int>(r / m.n_query_blocks);
        const int64_t qb = m.first_block + r % m.n_query_blocks;
        auto& list = kept_lists[static_cast<size_t>(r)];
        const bool full = qb >= full0 && qb < full1;
        bool dense = !sparse || !full;
        for (int hg = 0; hg < group && !dense; ++hg)
            dense = queries.sim[static_cast<size_t>((g * group + hg) * n_full + qb - full0)] <
                    o.min_similarity;
        if (dense) {
            list.resize(static_cast<size_t>(qb + 1));
            std::iota(list.begin(), list.end(), 0);
            return;
        }
        m.dense[static_cast<size_t>(r)] = 0;
        std::vector<uint8_t> kept(static_cast<size_t>(qb + 1), 0);
        std::vector<float> prob;
        std::vector<int32_t> order;
        const float* kmeans = keys.mean.data() + static_cast<size_t>(g * keys.n_blocks * hd);
        const float* ksim = keys.sim.data() + static_cast<size_t>(g * keys.n_blocks);
        for (int hg = 0; hg < group; ++hg) {
            const int h = g * group + hg;
            const float* qmean =
                queries.mean.data() + static_cast<size_t>((h * n_full + qb - full0) * hd);
            select_blocks(qmean, kmeans, ksim, qb, hd, s.scale, o, prob, order, kept);
        }
        for (int64_t j = 0; j <= qb; ++j)
            if (kept[static_cast<size_t>(j)]) list.push_back(static_cast<int32_t>(j));
    });

    m.offsets.assign(static_cast<size_t>(rows) + 1, 0);
    for (int64_t r = 0; r < rows; ++r)
        m.offsets[static_cast<size_t>(r) + 1] =
            m.offsets[static_cast<size_t>(r)] +
            static_cast<int64_t>(kept_lists[static_cast<size_t>(r)].size());
    m.keys.reserve(static_cast<size_t>(m.offsets.back()));
    for (const auto& list : kept_lists) m.keys.insert(m.keys.end(), list.begin(), list.end());
    return m;
}

}  // namespace sparkv::kernels
