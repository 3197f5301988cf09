// Layer-granular execution over one context's KV cache: the unit of work is one layer of one token
// chunk, in any order the dependency rules allow (DESIGN.md section 3):
//   * run_layer(h) for chunk t at layer l needs h = h(t, l) and the KV of every earlier position at
//     layer l, from compute or import; it writes KV(t, l) and turns h into h(t, l + 1);
//   * project_kv(h) writes KV(t, l) only (what the last layer of a context chunk needs);
//   * import_kv / export_kv move one unit's KV in and out of the cache.
// The query is prefilled with run_layer on its own hidden state once each layer is complete.
//
// Concurrency contract (what SparKV's runtime relies on; tests/runtime run it under TSan):
//   * One thread at a time drives an Engine (the compute lane): embed, run_layer,
//     run_layer_over_cached_kv, project_kv, the logits calls and prefill use the engine's
//     workspace and thread pool and must not overlap each other.
//   * Meanwhile other threads (the stream lane) may fill other units of the cache: through
//     cache().unit_view() + cache().commit(), or import_kv(). A unit has exactly one writer;
//     deciding who is the caller's job (runtime/unit_board.h). The engine writes only the units
//     of the hidden state it runs (run_layer, project_kv) and reads only positions the cache
//     reports filled, and KvCache publishes a unit under its mutex, so a reader never sees a
//     unit before its last byte is written.
//   * export_kv only reads filled positions and may run on any thread; cache().truncate()
//     and clear() must not overlap anything.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/thread_pool.h"
#include "engine/kernels/sparse_attention.h"
#include "engine/kv_cache.h"
#include "engine/model.h"

namespace sparkv {

// Block-sparse prefill attention settings (kernels/sparse_attention.h); tau = 1 is dense.
using kernels::AttentionStats;
using kernels::SparseAttentionOptions;

struct EngineOptions {
    int64_t n_ctx = 0;  // KV capacity in positions; 0 = the model's training context
    int n_threads = 0;  // 0 = all hardware threads
    // Attention of run_layer: dense by default. KV computed with sparse attention depends on the
    // settings: a cloud ingest and a device agree only when both use the same ones.
    SparseAttentionOptions sparse;
    // How long pool workers spin for the next job before sleeping (see common/thread_pool.h);
    // < 0: the pool's default. Lower it when another busy thread (the stream lane's decoder)
    // shares the cores, so idle workers do not take its time.
    int pool_spin_us = -1;
};

// The hidden state of a run of consecutive tokens entering layer `layer`.
struct HiddenState {
    int64_t pos0 = 0;
    int64_t n_tokens = 0;
    int layer = 0;            // next layer to run; n_layer once the stack is done
    std::vector<float> data;  // n_tokens x n_embd
};

class Engine {
  public:
    Engine(const Model& model, EngineOptions options = {});

    const Model& model() const { return model_; }
    const ModelConfig& config() const { return model_.config(); }
    KvCache& cache() { return cache_; }
    const KvCache& cache() const { return cache_; }
    ThreadPool& pool() { return pool_; }

    // h(t, 0): token embeddings for tokens at positions pos0, pos0 + 1, ...
    HiddenState embed(std::span<const int32_t> tokens, int64_t pos0);

    // Runs layer h.layer for h's tokens and advances h. Throws if an earlier position's KV is
    // missing at that layer.
    void run_layer(HiddenState& h);

    // Runs layer h.layer for h's tokens with the K/V of their own positions taken from the
    // cache, where they already are (streamed, say), and advances h; writes nothing to the cache.
    // How a chunk whose unit at this layer came from elsewhere is computed deeper. Throws if
    // any position up to h's last is missing at that layer.
    void run_layer_over_cached_kv(HiddenState& h);
    // The same, and adds to attention_mass[p] the attention h's queries pay position p, summed
    // over query heads and tokens (dense softmax weights; engine/attention_mass.h). Needs
    // h.pos0 + h.n_tokens entries. What ingest ranks a context's salient tokens by.
    void run_layer_over_cached_kv(HiddenState& h, std::span<float> attention_mass);

    // Sparse attention settings for the following calls (validated: throws sparkv::Error on bad
    // settings and keeps the old ones).
    void set_sparse(const SparseAttentionOptions& options);
    const SparseAttentionOptions& sparse() const { return sparse_; }
    // What the attention of the last run_layer visited (active key blocks summed over query
    // blocks and KV heads, its time); all zero after project_kv, which has no attention.
    const AttentionStats& last_attention_stats() const { return last_stats_; }

    // Computes and stores only the K/V of layer h.layer for h's tokens (no attention, no FFN);
    // h is unchanged.
    void project_kv(const HiddenState& h);

    // Unit layout for import/export: k and v each [n_kv_head][n][head_dim] fp16.
    void import_kv(int layer, int64_t pos0, int64_t n, const uint16_t* k, const uint16_t* v);
    void export_kv(int layer, int64_t pos0, int64_t n, uint16_t* k, uint16_t* v) const;

    // After the last layer: final norm + LM head. last_logits() for the last token only,
    // all_logits() for every token (n_tokens x n_vocab, used for perplexity).
    std::vector<float> last_logits(const HiddenState& h);
    std::vector<float> all_logits(const HiddenState& h);

    // Whole stack for a run of tokens (the classic prefill / decode step); returns the last
    // token's logits.
    std::vector<float> prefill(std::span<const int32_t> tokens, int64_t pos0);

  private:
    struct Workspace {
        std::vector<float> norm, q, k, v, attn, gate, up;
        std::vector<int32_t> positions;
    };
    void prepare(const HiddenState& h, int layer);
    void compute_q(const HiddenState& h, int layer);   // fills ws_.q
    void compute_kv(const HiddenState& h, int layer);  // fills ws_.k / ws_.v and the cache
    void store_kv(const HiddenState& h, int layer);    // ws_.k / ws_.v (projected) -> the cache
    void finish_q(const HiddenState& h, int layer);    // ws_.q (projected): bias, norm, RoPE
    void finish_layer(HiddenState& h, int layer);      // attention, output, FFN; advances h
    void check_history(int layer, int64_t pos0) const;
    void check_range(int layer, int64_t pos0, int64_t n, const char* what) const;
    std::vector<float> logits_rows(const HiddenState& h, int64_t first_row);

    const Model& model_;
    ThreadPool pool_;
    KvCache cache_;
    Workspace ws_;
    SparseAttentionOptions sparse_;
    AttentionStats last_stats_;
};

}  // namespace sparkv
