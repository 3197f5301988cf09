// Predicting the work of sparse attention before running a unit: the cost model's feature.
//
// predict_active_blocks() decides the block mask a run_layer of h would use from a sample of the
// chunk's tokens: every `sample_stride`-th token of each query block is projected to its query and
// key (the layer's Q/K weights, norms and RoPE, as run_layer does), the block summaries of those
// samples stand in for the full blocks, and the keys of earlier positions are summarised from the
// cache as the real mask does. The selection is the same function. With sample_stride = 1 it is
// the exact count run_layer will report; with stride s it costs about 1/s of the unit's Q/K
// projection, which is a few percent of the unit itself (bench/sparse_bench reports both the cost
// and the error).
#pragma once

#include <cstdint>

#include "common/thread_pool.h"
#include "engine/engine.h"

namespace sparkv {

struct ActiveBlocksPrediction {
    int64_t active_blocks = 0;  // predicted, as AttentionStats::active_blocks
    int64_t causal_blocks = 0;  // what dense attention visits (exact)
    double seconds = 0;         // time the prediction took
};

// Predicts AttentionStats::active_blocks of running layer h.layer on h with `options`. Needs what
// run_layer needs: the layer's KV of every position before h.pos0 in `cache`. sample_stride must
// be a power of two below options.block; it is lowered to options.block / 2 when larger.
ActiveBlocksPrediction predict_active_blocks(const Model& model, const KvCache& cache,
                                             const HiddenState& h,
                                             const SparseAttentionOptions& options,
                                             ThreadPool& pool, int sample_stride = 8);

}  // namespace sparkv
