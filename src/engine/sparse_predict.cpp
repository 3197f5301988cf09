#include "engine/sparse_predict.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/fp16.h"
#include "common/timer.h"

namespace sparkv {

namespace k = kernels;

namespace {

// The projection run_layer applies before attention, for a few rows: bias, per-head norm, RoPE.
void project(const k::Matrix& w, const std::vector<float>& bias, const std::vector<float>& norm,
             const ModelConfig& c, int n_heads, const std::vector<float>& x,
             const std::vector<int32_t>& positions, ThreadPool& pool, std::vector<float>& out) {
    const int64_t n = static_cast<int64_t>(positions.size());
    const int width = n_heads * c.head_dim;
    out.resize(static_cast<size_t>(n * width));
    k::matmul(w, x.data(), c.n_embd, n, out.data(), width, pool);
    for (int64_t r = 0; r < n; ++r) {
        float* row = out.data() + r * width;
        if (!bias.empty())
            for (int i = 0; i < width; ++i) row[i] += bias[static_cast<size_t>(i)];
        if (!norm.empty())
            for (int hh = 0; hh < n_heads; ++hh)
                k::rms_norm(row + hh * c.head_dim, norm.data(), row + hh * c.head_dim, c.head_dim,
                            c.rms_eps);
    }
    k::rope(out.data(), n, n_heads, c.head_dim, positions.data(), c.rope);
}

// Summaries of `per_block` sampled rows per block from rows of n_heads heads (row stride ld).
void summarize_samples(const std::vector<float>& rows, int n_heads, int hd, int64_t n_blocks,
                       int per_block, k::BlockSummaries& out, int64_t first_block) {
    const int64_t ld = int64_t(n_heads) * hd;
    for (int hh = 0; hh < n_heads; ++hh) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            const size_t at = static_cast<size_t>(hh * out.n_blocks + first_block + b);
            out.sim[at] = k::summarize_rows(rows.data() + b * per_block * ld + hh * hd, ld,
                                            per_block, hd, out.mean.data() + at * hd);
        }
    }
}

}  // namespace

ActiveBlocksPrediction predict_active_blocks(const Model& model, const KvCache& cache,
                                             const HiddenState& h, const SparseAttentionOptions& o,
                                             ThreadPool& pool, int sample_stride) {
    const double t0 = now_seconds();
    k::validate(o);
    const auto& c = model.config();
    const int layer = h.layer;
    if (layer < 0 || layer >= c.n_layer)
        fail("predict_active_blocks: layer {} is outside 0..{}", layer, c.n_layer - 1);
    if (h.n_tokens <= 0 || h.data.size() != static_cast<size_t>(h.n_tokens * c.n_embd))
        fail("predict_active_blocks: the hidden state holds {} floats, expected {} x {}",
             h.data.size(), h.n_tokens, c.n_embd);
    if (sample_stride < 1 || (sample_stride & (sample_stride - 1)) != 0)
        fail("predict_active_blocks: sample stride {} is not a power of two", sample_stride);
    if (h.pos0 + h.n_tokens > cache.capacity())
        fail("predict_active_blocks: positions [{}, {}) do not fit the cache of {}", h.pos0,
             h.pos0 + h.n_tokens, cache.capacity());
    const int64_t missing = cache.first_missing(layer, h.pos0);
    if (missing < h.pos0)
        fail("predict_active_blocks: layer {} has no KV for position {} yet", layer, missing);

    std::vector<int32_t> positions(static_cast<size_t>(h.n_tokens));
    for (int64_t i = 0; i < h.n_tokens; ++i)
        positions[static_cast<size_t>(i)] = static_cast<int32_t>(h.pos0 + i);
    ActiveBlocksPrediction out;
    const k::AttentionStats dense =
        k::dense_attention_stats(positions.data(), h.n_tokens, c.n_kv_head, o.block);
    out.causal_blocks = dense.causal_blocks;
    const int B = o.block;
    const int64_t full0 = (h.pos0 + B - 1) / B, full1 = (h.pos0 + h.n_tokens) / B;
    if (!o.enabled() || full1 <= full0) {  // run_layer is dense here
        out.active_blocks = dense.active_blocks;
        out.seconds = now_seconds() - t0;
        return out;
    }

    // Sampled rows of the full query blocks, normalised as run_layer does.
    const int stride = std::min(sample_stride, B / 2);
    const int per_block = B / stride;
    const int64_t n_full = full1 - full0;
    std::vector<int32_t> sample_pos;
    std::vector<float> x;
    const auto& w = model.layer(layer);
    for (int64_t b = full0; b < full1; ++b) {
        for (int j = 0; j < per_block; ++j) {
            const int64_t pos = b * B + int64_t(j) * stride;
            sample_pos.push_back(static_cast<int32_t>(pos));
            x.resize(x.size() + static_cast<size_t>(c.n_embd));
            k::rms_norm(h.data.data() + (pos - h.pos0) * c.n_embd, w.attn_norm.data(),
                        x.data() + x.size() - static_cast<size_t>(c.n_embd), c.n_embd, c.rms_eps);
        }
    }
    std::vector<float> q, kk;
    project(w.wq, w.bq, w.q_norm, c, c.n_head, x, sample_pos, pool, q);
    project(w.wk, w.bk, w.k_norm, c, c.n_kv_head, x, sample_pos, pool, kk);
    for (auto& v : kk) v = fp16_to_fp32(fp32_to_fp16(v));  // the cache holds keys in fp16

    k::AttentionShape shape;
    shape.n_head = c.n_head;
    shape.n_kv_head = c.n_kv_head;
    shape.head_dim = c.head_dim;
    shape.kv_capacity = cache.capacity();
    shape.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

    k::BlockSummaries queries;
    queries.n_heads = c.n_head;
    queries.n_blocks = n_full;
    queries.head_dim = c.head_dim;
    queries.mean.resize(static_cast<size_t>(c.n_head * n_full * c.head_dim));
    queries.sim.resize(static_cast<size_t>(c.n_head * n_full));
    summarize_samples(q, c.n_head, c.head_dim, n_full, per_block, queries, 0);

    // Keys: blocks entirely before the chunk from the cache, the chunk's own from the samples
    // (the one block the chunk may share with cached positions is a partial, dense query block).
    const int64_t cached_blocks = h.pos0 / B;
    const k::BlockSummaries cached =
        k::summarize_key_blocks(shape, cache.keys(layer), cached_blocks, B, pool);
    k::BlockSummaries keys;
    keys.n_heads = c.n_kv_head;
    keys.n_blocks = full1;
    keys.head_dim = c.head_dim;
    keys.mean.assign(static_cast<size_t>(c.n_kv_head * full1 * c.head_dim), 0.0f);
    keys.sim.assign(static_cast<size_t>(c.n_kv_head * full1), 1.0f);
    for (int g = 0; g < c.n_kv_head; ++g) {
        std::copy_n(cached.mean.begin() + g * cached_blocks * c.head_dim,
                    cached_blocks * c.head_dim, keys.mean.begin() + g * full1 * c.head_dim);
        std::copy_n(cached.sim.begin() + g * cached_blocks, cached_blocks,
                    keys.sim.begin() + g * full1);
    }
    summarize_samples(kk, c.n_kv_head, c.head_dim, n_full, per_block, keys, full0);

    out.active_blocks = k::select_sparse_mask(shape, h.pos0, h.n_tokens, queries, keys, o, pool)
                            .stats()
                            .active_blocks;
    out.seconds = now_seconds() - t0;
    return out;
}

}  // namespace sparkv
