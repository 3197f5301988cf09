// Small contexts of random objects for the store tests.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "store/content_id.h"
#include "store/context_store.h"

namespace sparkv::testing {

inline std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> bytes(n);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    return bytes;
}

inline Manifest skeleton(int32_t n_layers = 4, int64_t n_tokens = 300, int32_t chunk = 100,
                         std::string fingerprint = "fp") {
    const std::vector<int32_t> tokens(static_cast<size_t>(n_tokens), 7);
    return make_manifest(context_id(fingerprint, tokens, chunk),
                         {fingerprint, "test-model", n_layers, 2, 8}, n_tokens, chunk,
                         {"int8", "q3h"});
}

// Writes every object of m (random bytes from seed) and commits; returns the manifest written.
inline Manifest ingest(ContextStore& store, const Manifest& m, size_t unit_bytes,
                       uint32_t seed = 1) {
    ContextWriter writer(store, m);
    writer.put_tokens(std::vector<int32_t>(static_cast<size_t>(m.n_tokens), 7));
    for (const auto& u : m.units)
        for (const auto& level : m.levels)
            writer.put_unit(u.t, u.l, level,
                            random_bytes(unit_bytes + static_cast<size_t>(u.l), seed++));
    return writer.commit();
}

}  // namespace sparkv::testing
