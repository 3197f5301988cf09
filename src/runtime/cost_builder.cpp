#include "runtime/cost_builder.h"

#include <algorithm>

#include "common/error.h"

namespace sparkv::runtime {

double model_active_blocks(const Manifest& m, const UnitInfo& u) {
    if (!m.sparse || !u.active_blocks || m.model.n_kv_heads <= 0) return -1;
    // The manifest counts blocks of its own size per KV head; the cost model counts 64 x 64
    // (query, key) block pairs once per layer. The share of the causal blocks kept carries over
    // between the two (counts of partly covered blocks do not).
    const int64_t causal =
        causal_blocks(u.first_token, u.n_tokens, m.model.n_kv_heads, m.sparse->block);
    if (causal <= 0) return -1;
    const double kept = std::min(1.0, static_cast<double>(*u.active_blocks) / causal);
    return kept * plan::dense_active_blocks(u.first_token, u.n_tokens);
}

plan::CostInstance build_costs(const Manifest& m, const plan::DeviceProfile& profile,
                               double availability, int level, double request_latency_s,
                               int64_t question_tokens) {
    if (level < 0 || static_cast<size_t>(level) >= m.levels.size())
        fail("cost model: level {} is not one of the context's {} levels", level, m.levels.size());
    plan::CostInstance c;
    c.shape.n_layers = m.n_layers();
    for (const auto& chunk : m.chunks) c.shape.chunk_tokens.push_back(chunk.n_tokens);
    c.levels = m.levels;
    for (const auto& name : m.levels) c.decode_s_per_byte.push_back(profile.decode_rate(name));
    c.default_level = static_cast<int8_t>(level);
    c.request_latency_s = request_latency_s;
    c.decode_slowdown = profile.decode_slowdown;
    c.finish_s = profile.finish_s;
    c.query_layer_s = profile.unit_seconds(m.n_tokens, std::max<int64_t>(1, question_tokens), false,
                                           availability);
    c.units.reserve(m.units.size());
    for (const auto& u : m.units) {
        plan::UnitCost cost;
        const bool last = u.l == m.n_layers() - 1;
        cost.compute_s = profile.unit_seconds(u.first_token, u.n_tokens, last, availability);
        // Skipped blocks can only save time, whatever a fit on dense samples says about them.
        if (const double blocks = model_active_blocks(m, u); blocks >= 0)
            cost.compute_s = std::min(
                cost.compute_s,
                profile.unit_seconds(u.first_token, u.n_tokens, last, availability, blocks));
        for (const auto& o : u.objects) cost.bytes.push_back(o.bytes);
        c.units.push_back(std::move(cost));
    }
    c.validate();
    return c;
}

}  // namespace sparkv::runtime
