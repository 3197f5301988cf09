#include "plan/cost_instance.h"

#include <cmath>

#include "common/error.h"

namespace sparkv::plan {

double CostInstance::total_compute_s() const {
    double total = 0;
    for (const auto& u : units) total += u.compute_s;
    return total;
}

void CostInstance::validate() const {
    if (shape.n_layers <= 0 || shape.n_chunks() <= 0) fail("cost instance: empty context");
    if (units.size() != shape.n_units())
        fail("cost instance: {} unit costs for {} units", units.size(), shape.n_units());
    if (levels.empty() || decode_s_per_byte.size() != levels.size())
        fail("cost instance: {} levels with {} decode rates", levels.size(),
             decode_s_per_byte.size());
    if (default_level < 0 || static_cast<size_t>(default_level) >= levels.size())
        fail("cost instance: default level {} is not one of the {} levels", default_level,
             levels.size());
    if (connections < 1 || connections > 8)
        fail("cost instance: {} connections (1..8)", connections);
    const auto bad = [](double x) { return !std::isfinite(x) || x < 0; };
    for (double d : decode_s_per_byte)
        if (bad(d)) fail("cost instance: decode rate {} is invalid", d);
    if (bad(request_latency_s) || bad(query_layer_s) || bad(finish_s) || bad(decode_slowdown))
        fail(
            "cost instance: invalid request costs (latency {} s, question layer {} s, finish {} s, "
            "decode slowdown {})",
            request_latency_s, query_layer_s, finish_s, decode_slowdown);
    for (size_t i = 0; i < units.size(); ++i) {
        if (bad(units[i].compute_s) || units[i].bytes.size() != levels.size())
            fail("cost instance: unit ({}, {}) has an invalid cost", shape.unit(i).t,
                 shape.unit(i).l);
    }
}

}  // namespace sparkv::plan
