// Training-free block-sparse prefill attention (SpargeAttn-style) over the fp16 cache.
//
// Queries and keys are cut into blocks of `block` positions, aligned to absolute positions
// (block b holds positions [b * block, (b + 1) * block)). For every KV head and full query block:
//   1. pool: the mean query of the block (per query head of the group) and the mean key of every
//      causal key block, plus each block's self-similarity (mean pairwise cosine of its vectors);
//   2. score: softmax over key blocks of scale * mean_q . mean_k, per query head;
//   3. select: the smallest set of key blocks that contains the always-kept ones (the first
//      `sink_blocks`, the diagonal and `local_blocks` before it, key blocks that are not
//      self-similar) and reaches softmax mass `tau`; the union over the group's query heads is the
//      row of the mask (the heads share every K/V tile the kernel loads);
//   4. attend: the flash-attention kernel visits only the kept key blocks: a dropped block is
//      never loaded.
// A query block whose queries are not self-similar (for any head of the group), or that the call
// covers only in part, keeps every causal key block (dense fallback). Decode and other calls whose
// query positions are not one consecutive run are dense. The mask depends only on the queries, the
// cached keys and the options, and is computed by one portable implementation for every ISA, so a
// cloud ingest and a device with the same kernels and settings compute the same KV.
#pragma once

#include <cstdint>
#include <vector>

#include "common/thread_pool.h"
#include "engine/kernels/kernels.h"

namespace sparkv::kernels {

// Settings of the sparse prefill attention. The defaults are dense (tau = 1).
struct SparseAttentionOptions {
    // Softmax mass of the pooled block scores that each query block keeps; 1 = dense.
    float tau = 1.0f;
    // Tokens per query and key block: 16, 32 or 64 (a divisor of the kernel's 64-token tile).
    int block = 64;
    // Query blocks (dense row) and key blocks (always kept) whose mean cosine similarity between
    // distinct vectors is below this are not represented well by their mean.
    float min_similarity = 0.3f;
    int sink_blocks = 1;   // first key blocks, always kept (attention sinks)
    int local_blocks = 1;  // key blocks right before the diagonal, always kept

    bool enabled() const { return tau < 1.0f; }
    friend bool operator==(const SparseAttentionOptions&, const SparseAttentionOptions&) = default;
};

// The tau the user-facing commands and the public API use by default (the engine's own default
// stays dense, the reference). Chosen from codec-bench on the reference model (README, "Sparse
// prefill attention"): the smallest tau measured whose perplexity change on the F32 copy stays
// within 1% and whose next-token KL stays below the default codec level's (q5h), at 4,096 and
// 8,192 tokens of the demo text and of a held-out source file.
constexpr float kDefaultSparseTau = 0.95f;

// Throws sparkv::Error naming the bad field: tau outside (0, 1], a block size that does not divide
// the 64-token tile (or is below 16), min_similarity outside [-1, 1], negative sink/local counts.
void validate(const SparseAttentionOptions& options);

// What one attention call visited, in blocks of options.block x options.block positions counted
// per KV head (the kernel's unit of work: one query block of all the group's heads against one
// key block). A dense call counts every causal block.
struct AttentionStats {
    int64_t active_blocks = 0;       // key blocks visited, summed over query blocks and KV heads
    int64_t causal_blocks = 0;       // what dense attention visits for the same queries
    int64_t query_blocks = 0;        // (KV head, query block) rows
    int64_t dense_query_blocks = 0;  // rows that kept every causal block (fallback or partial)
    double seconds = 0;              // wall time of the call (mask and kernel)

    double density() const {
        return causal_blocks > 0 ? double(active_blocks) / double(causal_blocks) : 1.0;
    }
};

// The block mask of one call: for row r = kv_head * n_query_blocks + i (query block
// first_block + i), the kept key blocks, ascending, are keys[offsets[r] .. offsets[r + 1]).
struct SparseMask {
    int block = 0;
    int n_kv_head = 0;
    int64_t first_block = 0;
    int64_t n_query_blocks = 0;
    std::vector<int64_t> offsets;  // n_kv_head * n_query_blocks + 1
    std::vector<int32_t> keys;
    std::vector<uint8_t> dense;  // per row: kept every causal block

    int64_t rows() const { return int64_t(n_kv_head) * n_query_blocks; }
    AttentionStats stats() const;
};

// What the mask is decided from: per head and block, the mean vector and the self-similarity
// (mean cosine similarity between distinct vectors of the block).
struct BlockSummaries {
    int n_heads = 0;
    int64_t n_blocks = 0;
    int head_dim = 0;
    std::vector<float> mean;  // [head][block][head_dim]
    std::vector<float> sim;   // [head][block]
};

// Mean of n rows of hd floats (row stride ld) into mean; returns their self-similarity (1 for a
// single row).
float summarize_rows(const float* x, int64_t ld, int n, int hd, float* mean);

// Summaries of key blocks [0, n_blocks) of every KV head of one cache layer.
BlockSummaries summarize_key_blocks(const AttentionShape& shape, const uint16_t* k,
                                    int64_t n_blocks, int block, ThreadPool& pool);

// The mask of queries at positions [pos0, pos0 + n_q) from summaries: `queries` covers their
// full query blocks (n_head heads), `keys` at least key blocks [0, last full query block]. Unused
// (may be empty) when options are dense or no query block is full.
SparseMask select_sparse_mask(const AttentionShape& shape, int64_t pos0, int64_t n_q,
                              const BlockSummaries& queries, const BlockSummaries& keys,
                              const SparseAttentionOptions& options, ThreadPool& pool);

// True when the call's query positions form one consecutive run (the case sparse attention
// applies to; anything else is computed dense).
bool is_position_run(const int32_t* q_pos, int64_t n_q);

// Builds the mask for queries at the consecutive positions q_pos[0] .. q_pos[0] + n_q - 1 (their
// K/V must already be in the cache). With tau = 1 every causal block is kept.
SparseMask build_sparse_mask(const AttentionShape& shape, const float* q, int64_t ldq, int64_t n_q,
                             const int32_t* q_pos, const uint16_t* k,
                             const SparseAttentionOptions& options, ThreadPool& pool);

// Causal attention as kernels::attention computes it, block-sparse when options.enabled() and
// the positions are a run; returns what it visited. options must be valid.
AttentionStats sparse_attention(const AttentionShape& shape, const float* q, int64_t ldq,
                                int64_t n_q, const int32_t* q_pos, const uint16_t* k,
                                const uint16_t* v, float* out, int64_t ldo,
                                const SparseAttentionOptions& options, ThreadPool& pool);

// Blocks dense attention visits for these queries (the causal_blocks of the stats).
AttentionStats dense_attention_stats(const int32_t* q_pos, int64_t n_q, int n_kv_head, int block);

}  // namespace sparkv::kernels
