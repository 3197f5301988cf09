// The baselines: local, stream (CacheGen-like) and cake (CAKE-like).
#include <algorithm>

#include "plan/policy.h"

namespace sparkv::plan {

Plan plan_local(const CostInstance& costs) {
    const ContextShape& s = costs.shape;
    return Plan::from_prefixes(s,
                               std::vector<int32_t>(static_cast<size_t>(s.n_chunks()), s.n_layers),
                               costs.default_level);
}

Plan plan_stream(const CostInstance& costs, double bandwidth, bool adapt_level) {
    const ContextShape& s = costs.shape;
    // Candidate levels: the default one and every smaller one, best (largest) first.
    const auto bytes_of = [&](int level) {
        uint64_t total = 0;
        for (const auto& u : costs.units) total += u.bytes[static_cast<size_t>(level)];
        return total;
    };
    const uint64_t default_bytes = bytes_of(costs.default_level);
    std::vector<int> candidates;
    for (int level = 0; level < static_cast<int>(costs.levels.size()); ++level)
        if (level == costs.default_level || (adapt_level && bytes_of(level) <= default_bytes))
            candidates.push_back(level);
    std::sort(candidates.begin(), candidates.end(),
              [&](int a, int b) { return bytes_of(a) > bytes_of(b); });

    // A chunk's budget is what computing it would take: streaming it slower is pointless.
    std::vector<int32_t> k(static_cast<size_t>(s.n_chunks()), 0);
    std::vector<int8_t> chunk_level(static_cast<size_t>(s.n_chunks()), -1);
    for (int32_t t = 0; t < s.n_chunks(); ++t) {
        double budget = 0;
        for (int32_t l = 0; l < s.n_layers; ++l) budget += costs.unit({t, l}).compute_s;
        for (int level : candidates) {
            double need = 0;
            for (int32_t l = 0; l < s.n_layers; ++l)
                need += costs.stream_s({t, l}, level, bandwidth);
            if (need <= budget) {
                chunk_level[static_cast<size_t>(t)] = static_cast<int8_t>(level);
                break;
            }
        }
        if (chunk_level[static_cast<size_t>(t)] < 0) k[static_cast<size_t>(t)] = s.n_layers;
    }
    Plan p = Plan::from_prefixes(s, k, costs.default_level);
    for (int32_t t = 0; t < s.n_chunks(); ++t)
        for (int32_t l = 0; l < s.n_layers; ++l)
            if (p.lane[s.index({t, l})] == Lane::stream)
                p.level[s.index({t, l})] = chunk_level[static_cast<size_t>(t)];
    p.dispatch = Dispatch::stream_then_compute;
    return p;
}

Plan plan_cake(const CostInstance& costs) {
    const ContextShape& s = costs.shape;
    Plan p = plan_local(costs);  // compute order: chunks from the front
    p.dispatch = Dispatch::meet_in_the_middle;
    p.stream_order.clear();
    for (int32_t t = s.n_chunks() - 1; t >= 0; --t)  // stream order: chunks from the back
        for (int32_t l = 0; l < s.n_layers; ++l) p.stream_order.push_back({t, l});
    std::fill(p.level.begin(), p.level.end(), costs.default_level);
    return p;
}

}  // namespace sparkv::plan
