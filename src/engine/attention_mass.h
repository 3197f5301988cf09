// How much attention a run of queries pays each cached position: what the codec's saliency ranks
// (cloud/saliency.h). Dense and exact in fp32, independent of the engine's sparse settings.
#pragma once

#include <cstdint>
#include <span>

#include "common/thread_pool.h"

namespace sparkv {

struct AttentionMassShape {
    int n_head = 0;
    int n_kv_head = 0;
    int head_dim = 0;
    int64_t kv_capacity = 0;  // positions per KV head in `keys` ([kv_head][position][head_dim])
};

// For each query token i (at position pos0 + i, row i of q with stride ldq, heads side by side)
// and query head, takes softmax(q . k / sqrt(head_dim)) over the positions 0..pos0 + i and adds
// each position's weight to mass[position]: mass sums over query tokens and heads. mass must hold
// pos0 + n_q entries. Threads: one pool task per query head, each writing only its own row of
// partial sums; the calling thread adds the rows into mass after the pool returns, so mass is
// only ever touched by the caller.
void add_attention_mass(const AttentionMassShape& shape, const float* q, int64_t ldq, int64_t n_q,
                        int64_t pos0, const uint16_t* keys, std::span<float> mass,
                        ThreadPool& pool);

}  // namespace sparkv
