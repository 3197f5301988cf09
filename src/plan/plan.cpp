#include "plan/plan.h"

#include <fmt/format.h>

#include "common/error.h"

namespace sparkv::plan {

namespace {

std::string name(UnitId u) {
    return fmt::format("unit ({}, {})", u.t, u.l);
}

}  // namespace

ContextShape ContextShape::uniform(int64_t n_tokens, int32_t chunk_size, int32_t n_layers) {
    if (n_tokens <= 0 || chunk_size <= 0 || n_layers <= 0)
        fail("context shape: need positive tokens ({}), chunk size ({}) and layers ({})", n_tokens,
             chunk_size, n_layers);
    ContextShape s;
    s.n_layers = n_layers;
    for (int64_t first = 0; first < n_tokens; first += chunk_size)
        s.chunk_tokens.push_back(
            static_cast<int32_t>(std::min<int64_t>(chunk_size, n_tokens - first)));
    return s;
}

int64_t ContextShape::first_token(int32_t t) const {
    int64_t first = 0;
    for (int32_t i = 0; i < t; ++i) first += chunk_tokens[static_cast<size_t>(i)];
    return first;
}

const char* lane_name(Lane lane) {
    return lane == Lane::compute ? "compute" : "stream";
}

Plan Plan::from_prefixes(const ContextShape& shape, const std::vector<int32_t>& k, int8_t level) {
    if (static_cast<int32_t>(k.size()) != shape.n_chunks())
        fail("plan: {} prefixes for {} chunks", k.size(), shape.n_chunks());
    Plan p;
    p.lane.assign(shape.n_units(), Lane::stream);
    p.level.assign(shape.n_units(), level);
    for (int32_t t = 0; t < shape.n_chunks(); ++t)
        for (int32_t l = 0; l < shape.n_layers; ++l) {
            const UnitId u{t, l};
            if (l < k[static_cast<size_t>(t)]) {
                p.lane[shape.index(u)] = Lane::compute;
                p.level[shape.index(u)] = -1;
                p.compute_order.push_back(u);
            } else {
                p.stream_order.push_back(u);
            }
        }
    return p;
}

std::vector<int32_t> Plan::prefixes(const ContextShape& shape) const {
    std::vector<int32_t> k(static_cast<size_t>(shape.n_chunks()), 0);
    for (int32_t t = 0; t < shape.n_chunks(); ++t)
        while (k[static_cast<size_t>(t)] < shape.n_layers &&
               lane[shape.index({t, k[static_cast<size_t>(t)]})] == Lane::compute)
            ++k[static_cast<size_t>(t)];
    return k;
}

size_t Plan::count(Lane which) const {
    size_t n = 0;
    for (Lane x : lane) n += x == which;
    return n;
}

std::vector<std::string> check_plan(const ContextShape& shape, const Plan& plan, int n_levels) {
    std::vector<std::string> errors;
    const size_t n = shape.n_units();
    if (plan.lane.size() != n || plan.level.size() != n) {
        errors.push_back(fmt::format("plan covers {} lanes and {} levels for {} units",
                                     plan.lane.size(), plan.level.size(), n));
        return errors;
    }
    // Each order lists units of the context at most once.
    const auto positions = [&](const std::vector<UnitId>& order, const char* what) {
        std::vector<int64_t> pos(n, -1);
        for (size_t i = 0; i < order.size(); ++i) {
            const UnitId u = order[i];
            if (u.t < 0 || u.t >= shape.n_chunks() || u.l < 0 || u.l >= shape.n_layers) {
                errors.push_back(
                    fmt::format("{} order names {}, outside the context", what, name(u)));
                continue;
            }
            if (pos[shape.index(u)] >= 0)
                errors.push_back(fmt::format("{} order lists {} twice", what, name(u)));
            pos[shape.index(u)] = static_cast<int64_t>(i);
        }
        return pos;
    };
    const auto compute_pos = positions(plan.compute_order, "compute");
    const auto stream_pos = positions(plan.stream_order, "stream");
    if (plan.dispatch == Dispatch::meet_in_the_middle) {
        // Lanes are decided at run time; each lane must be able to take any unit.
        for (size_t i = 0; i < n; ++i)
            if (compute_pos[i] < 0 || stream_pos[i] < 0)
                errors.push_back(
                    fmt::format("meet-in-the-middle orders must list every unit; "
                                "{} is missing",
                                name(shape.unit(i))));
        return errors;
    }
    for (size_t i = 0; i < n; ++i) {
        const UnitId u = shape.unit(i);
        const bool computed = plan.lane[i] == Lane::compute;
        if (computed != (compute_pos[i] >= 0))
            errors.push_back(fmt::format("{} is {} but {} the compute order", name(u),
                                         lane_name(plan.lane[i]),
                                         computed ? "missing from" : "in"));
        if (!computed != (stream_pos[i] >= 0))
            errors.push_back(fmt::format("{} is {} but {} the stream order", name(u),
                                         lane_name(plan.lane[i]),
                                         computed ? "in" : "missing from"));
        if (!computed && (plan.level[i] < 0 || plan.level[i] >= n_levels))
            errors.push_back(fmt::format("{} is streamed without a valid level", name(u)));
        if (!computed || u.l == 0) continue;
        // The chunk's computed layers must be a prefix, computed in order.
        const size_t below = shape.index({u.t, u.l - 1});
        if (plan.lane[below] != Lane::compute)
            errors.push_back(
                fmt::format("{} is computed but ({}, {}) is streamed: streaming "
                            "yields no hidden state",
                            name(u), u.t, u.l - 1));
        else if (compute_pos[below] > compute_pos[i])
            errors.push_back(fmt::format("{} is computed before ({}, {})", name(u), u.t, u.l - 1));
    }
    // Token rule: compute (t, l) with l < L - 1 needs every (t', l), t' < t; a computed one
    // must come earlier in the compute order.
    for (size_t i = 0; i < n; ++i) {
        const UnitId u = shape.unit(i);
        if (plan.lane[i] != Lane::compute || u.l == shape.n_layers - 1) continue;
        for (int32_t t = 0; t < u.t; ++t) {
            const size_t dep = shape.index({t, u.l});
            if (plan.lane[dep] == Lane::compute && compute_pos[dep] > compute_pos[i])
                errors.push_back(fmt::format(
                    "{} is computed before ({}, {}), whose KV it attends to", name(u), t, u.l));
        }
    }
    return errors;
}

}  // namespace sparkv::plan
