// What a loading schedule is, and the dependency rules every schedule must obey (DESIGN.md §3).
//
// A context of T chunks x L layers has T * L units (t, l). Each unit is produced by one lane:
//   * stream (t, l): no dependency; yields KV only, never a hidden state;
//   * compute (t, l), l < L - 1: needs compute (t, l - 1) (for l > 0) and the KV of every (t', l)
//     with t' < t, by either lane;
//   * compute (t, L - 1): the K/V projection of h(t, L - 1) only; needs compute (t, L - 2).
// So the computed layers of a chunk are a prefix 0 .. k_t - 1 and the rest of it is streamed.
// A Plan says which lane produces each unit, at which codec level streamed units come, and in
// which order each lane takes its units. The executor (runtime/) runs any valid Plan; the
// policies (plan/policy.h) produce them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparkv::plan {

struct UnitId {
    int32_t t = 0;
    int32_t l = 0;
    bool operator==(const UnitId&) const = default;
};

// The chunking of a context, as far as planning cares.
struct ContextShape {
    int32_t n_layers = 0;
    std::vector<int32_t> chunk_tokens;  // tokens of each chunk (the last may be shorter)

    static ContextShape uniform(int64_t n_tokens, int32_t chunk_size, int32_t n_layers);

    int32_t n_chunks() const { return static_cast<int32_t>(chunk_tokens.size()); }
    size_t n_units() const { return chunk_tokens.size() * static_cast<size_t>(n_layers); }
    size_t index(UnitId u) const {
        return static_cast<size_t>(u.t) * static_cast<size_t>(n_layers) + static_cast<size_t>(u.l);
    }
    UnitId unit(size_t index) const {
        return {static_cast<int32_t>(index / static_cast<size_t>(n_layers)),
                static_cast<int32_t>(index % static_cast<size_t>(n_layers))};
    }
    int64_t first_token(int32_t t) const;
    // Keys the chunk's last token attends to: first_token + its tokens.
    int64_t attention_span(int32_t t) const { return first_token(t) + chunk_tokens[t]; }
    int64_t n_tokens() const { return first_token(n_chunks()); }
};

enum class Lane : uint8_t { compute, stream };
const char* lane_name(Lane lane);

// How the executor treats the plan's orders at run time.
enum class Dispatch : uint8_t {
    planned,              // lanes follow their orders; a controller may migrate units
    stream_then_compute,  // the compute lane starts once the stream lane is done (CacheGen)
    meet_in_the_middle,   // lanes claim whole chunks from opposite ends as they go (CAKE)
};

struct Plan {
    std::string policy;
    Dispatch dispatch = Dispatch::planned;
    std::vector<Lane> lane;     // per unit (ContextShape::index)
    std::vector<int8_t> level;  // per unit: index into the instance's levels; -1 when computed
    std::vector<UnitId> compute_order;
    std::vector<UnitId> stream_order;
    double predicted_ttft_s = 0;  // what the policy expected (0 when it did not predict)
    double lower_bound_s = 0;     // oracle only: no schedule can beat this

    // Lane per unit and orders from "compute these prefixes, stream the rest": k[t] computed
    // layers of chunk t; compute order chunk by chunk, stream order chunk by chunk.
    static Plan from_prefixes(const ContextShape& shape, const std::vector<int32_t>& k,
                              int8_t level);
    // k_t of every chunk (valid plans only).
    std::vector<int32_t> prefixes(const ContextShape& shape) const;
    size_t count(Lane which) const;
};

// Every rule a plan breaks, in words ("unit (2, 5) is computed but (2, 4) is streamed"); empty
// when the plan is valid: each unit has one lane, computed layers form prefixes, the orders list
// exactly the units of their lane once, the compute order never needs a unit it computes later,
// and streamed units have a level.
std::vector<std::string> check_plan(const ContextShape& shape, const Plan& plan, int n_levels);

}  // namespace sparkv::plan
