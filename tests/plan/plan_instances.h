// Synthetic cost instances for the planner tests: compute cost grows with a chunk's position as
// attention does, unit sizes are uniform with some noise, one codec level.
#pragma once

#include <random>

#include "plan/cost_instance.h"

namespace sparkv::plan::testing {

inline CostInstance make_instance(int32_t chunks, int32_t layers, double base_compute_s,
                                  uint64_t unit_bytes, uint32_t seed = 1) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> noise(0.9, 1.1);
    CostInstance c;
    c.shape.n_layers = layers;
    c.shape.chunk_tokens.assign(static_cast<size_t>(chunks), 1024);
    c.levels = {"q5h"};
    c.decode_s_per_byte = {1.0 / 400e6};
    for (int32_t t = 0; t < chunks; ++t)
        for (int32_t l = 0; l < layers; ++l) {
            // Deeper chunks attend to more keys: cost grows ~2.5x from first to eighth chunk.
            const double growth = 1.0 + 0.2 * t;
            const double cost = l == layers - 1 ? base_compute_s * 0.15 : base_compute_s * growth;
            c.units.push_back(
                {cost * noise(rng),
                 {static_cast<uint64_t>(static_cast<double>(unit_bytes) * noise(rng))}});
        }
    c.query_layer_s = base_compute_s * 0.05;
    c.finish_s = 0.02;
    c.request_latency_s = 0.001;
    c.decode_slowdown = 0.5;
    return c;
}

}  // namespace sparkv::plan::testing
