#include "cloud/saliency.h"

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace sparkv {

std::vector<std::vector<float>> attention_mass(Engine& engine, std::span<const int32_t> tokens,
                                               int64_t queries) {
    const auto n = static_cast<int64_t>(tokens.size());
    const int n_layer = engine.config().n_layer;
    std::vector<std::vector<float>> mass(static_cast<size_t>(n_layer),
                                         std::vector<float>(static_cast<size_t>(n), 0.0f));
    if (n == 0 || queries <= 0) return mass;
    const int64_t first = n - std::min(queries, n);
    HiddenState h = engine.embed(tokens.subspan(static_cast<size_t>(first)), first);
    while (h.layer < n_layer) {
        const int layer = h.layer;
        engine.run_layer_over_cached_kv(h, mass[static_cast<size_t>(layer)]);
    }
    return mass;
}

std::vector<uint32_t> top_positions(std::span<const float> mass, uint32_t per_mille,
                                    uint32_t skip) {
    const auto n = static_cast<uint32_t>(mass.size());
    if (per_mille > 1000) fail("saliency: {} per mille is more than all tokens", per_mille);
    if (skip >= n || per_mille == 0) return {};
    const uint64_t candidates = n - skip;
    const auto keep = static_cast<uint32_t>((candidates * per_mille + 999) / 1000);
    std::vector<uint32_t> order(candidates);
    std::iota(order.begin(), order.end(), skip);
    std::partial_sort(
        order.begin(), order.begin() + keep, order.end(),
        [&](uint32_t a, uint32_t b) { return mass[a] != mass[b] ? mass[a] > mass[b] : a < b; });
    order.resize(keep);
    std::sort(order.begin(), order.end());
    return order;
}

std::vector<std::vector<uint32_t>> salient_positions(const codec::CodecProfile& profile,
                                                     codec::Level level,
                                                     const std::vector<std::vector<float>>& mass) {
    std::vector<std::vector<uint32_t>> out(mass.size());
    const codec::CodecProfile::LevelTable* table = profile.find(level);
    if (!table || table->salient_per_mille == 0) return out;
    for (size_t l = 0; l < mass.size(); ++l)
        out[l] = top_positions(mass[l], table->salient_per_mille, profile.sink_tokens);
    return out;
}

std::vector<uint32_t> rows_in_chunk(std::span<const uint32_t> positions, uint32_t first,
                                    uint32_t n) {
    std::vector<uint32_t> rows;
    const auto begin = std::lower_bound(positions.begin(), positions.end(), first);
    for (auto it = begin; it != positions.end() && *it < first + n; ++it)
        rows.push_back(*it - first);
    return rows;
}

}  // namespace sparkv
