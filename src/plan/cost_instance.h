// Everything a policy needs to know about one request, in seconds and bytes: the predicted cost
// of computing each unit, its size at each codec level, how long decoding takes, and what the
// question costs once the context is loaded. Built by the runtime from the manifest and the
// device profile (plan/cost_model.h); built by hand in tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace sparkv::plan {

struct UnitCost {
    double compute_s = 0;         // compute lane time with the CPU the lane has now
    std::vector<uint64_t> bytes;  // encoded size at each level of the instance
};

struct CostInstance {
    ContextShape shape;
    std::vector<std::string> levels;        // codec levels the store has, in the manifest's order
    std::vector<double> decode_s_per_byte;  // per level, one core
    std::vector<UnitCost> units;            // per unit (ContextShape::index)
    double request_latency_s = 0;           // round trip before each unit's first byte
    // Connections the stream lane requests units on at once: each asks for its next unit when
    // its last one is in, so with two or more a round trip overlaps the body before it.
    int connections = 1;
    double query_layer_s = 0;  // one layer of the question, over the whole context
    double finish_s = 0;       // final norm, LM head and sampling
    // Compute-lane seconds lost per second of decoding that runs beside it: the stream lane's
    // decoder takes CPU from the compute lane on a small device ("overhead-aware").
    double decode_slowdown = 0;
    // The level a policy streams at unless it chooses otherwise (index into levels).
    int8_t default_level = 0;

    const UnitCost& unit(UnitId u) const { return units[shape.index(u)]; }
    double decode_s(UnitId u, int level) const {
        return static_cast<double>(unit(u).bytes[static_cast<size_t>(level)]) *
               decode_s_per_byte[static_cast<size_t>(level)];
    }
    // Predicted seconds to stream a unit at a steady bandwidth: round trip, transfer, decode. In
    // a run of units the connections keep that many round trips under way at once.
    double stream_s(UnitId u, int level, double bytes_per_second) const {
        return request_latency_s / connections +
               static_cast<double>(unit(u).bytes[static_cast<size_t>(level)]) / bytes_per_second +
               decode_s(u, level);
    }
    double total_compute_s() const;
    // Throws Error naming the first inconsistency (sizes, negative costs, unknown level).
    void validate() const;
};

}  // namespace sparkv::plan
