#include "plan/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace sparkv::plan {

namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
using Intervals = std::vector<std::pair<double, double>>;

// Seconds of [a, b) covered by sorted, disjoint intervals.
double overlap(const Intervals& intervals, double a, double b) {
    auto it = std::lower_bound(intervals.begin(), intervals.end(), a,
                               [](const auto& iv, double x) { return iv.second <= x; });
    double total = 0;
    for (; it != intervals.end() && it->first < b; ++it)
        total += std::min(b, it->second) - std::max(a, it->first);
    return total;
}

struct StreamPass {
    std::vector<double> ready;
    std::vector<double> start;
    Intervals decodes;
    double end_s = 0;  // last unit decoded
    double link_busy_s = 0;
    double decode_busy_s = 0;
    uint64_t bytes = 0;
};

// The link side of the stream lane: `connections` connections, each asking for its next unit as
// soon as its last one is in; bodies cross the link one after another in request order.
class LinkLanes {
  public:
    LinkLanes(const CostInstance& ci, const LinkModel& link, double start_s)
        : ci_(ci),
          link_(link),
          connection_free_(static_cast<size_t>(ci.connections), start_s),
          link_free_(start_s) {}

    struct Transfer {
        double request_s, arrived_s, link_busy_s;
    };
    Transfer next(uint64_t bytes) {
        auto free = std::min_element(connection_free_.begin(), connection_free_.end());
        const double request = *free;
        const double body = std::max(request + ci_.request_latency_s, link_free_);
        const double arrived = link_.arrival(body, bytes);
        const Transfer t{request, arrived, arrived - std::max(request, link_free_)};
        link_free_ = *free = arrived;
        return t;
    }

  private:
    const CostInstance& ci_;
    const LinkModel& link_;
    std::vector<double> connection_free_;
    double link_free_;
};

// The stream lane: the link (LinkLanes), a delivery thread decoding in arrival order. `units`
// lists what to stream in order with its level.
StreamPass run_stream(const CostInstance& ci, const std::vector<std::pair<UnitId, int>>& units,
                      const LinkModel& link, double start_s) {
    StreamPass pass;
    pass.ready.assign(ci.shape.n_units(), kNever);
    pass.start.assign(ci.shape.n_units(), kNever);
    LinkLanes lanes(ci, link, start_s);
    double decoder_free = start_s;
    for (const auto& [u, level] : units) {
        const size_t i = ci.shape.index(u);
        const uint64_t bytes = ci.units[i].bytes[static_cast<size_t>(level)];
        const auto transfer = lanes.next(bytes);
        const double arrived = transfer.arrived_s;
        pass.start[i] = transfer.request_s;
        pass.link_busy_s += transfer.link_busy_s;
        pass.bytes += bytes;
        const double d0 = std::max(arrived, decoder_free);
        const double d1 = d0 + ci.decode_s(u, level);
        decoder_free = d1;
        pass.decodes.emplace_back(d0, d1);
        pass.decode_busy_s += d1 - d0;
        pass.ready[i] = d1;
        pass.end_s = d1;
    }
    return pass;
}

std::vector<std::pair<UnitId, int>> with_levels(const Plan& plan, const ContextShape& shape) {
    std::vector<std::pair<UnitId, int>> out;
    out.reserve(plan.stream_order.size());
    for (UnitId u : plan.stream_order) out.emplace_back(u, plan.level[shape.index(u)]);
    return out;
}

// CAKE: the compute lane takes whole chunks from the front, the stream lane from the back; a
// chunk goes to whichever lane reaches it first.
SimResult simulate_meet_in_the_middle(const CostInstance& ci, const Plan& plan,
                                      const LinkModel& link) {
    const ContextShape& shape = ci.shape;
    const int32_t L = shape.n_layers;
    SimResult r;
    r.units.assign(shape.n_units(), {});
    std::vector<double> ready(shape.n_units(), kNever);
    Intervals decodes;
    int32_t front = 0, back = shape.n_chunks() - 1;
    double c = 0, s = 0, decoder_free = 0;
    LinkLanes lanes(ci, link, 0);
    bool compute_on = true, stream_on = true;
    while ((compute_on || stream_on) && front <= back) {
        if (compute_on && (!stream_on || c <= s)) {
            const int32_t t = front++;
            for (int32_t l = 0; l < L; ++l) {
                const size_t i = shape.index({t, l});
                r.units[i] = {Lane::compute, c, c + ci.units[i].compute_s};
                c += ci.units[i].compute_s;
                r.compute_busy_s += ci.units[i].compute_s;
                ready[i] = c;
            }
        } else {
            const int32_t t = back--;
            for (int32_t l = 0; l < L; ++l) {
                const size_t i = shape.index({t, l});
                const int level = ci.default_level;
                const uint64_t bytes = ci.units[i].bytes[static_cast<size_t>(level)];
                const auto transfer = lanes.next(bytes);
                const double arrived = transfer.arrived_s;
                r.link_busy_s += transfer.link_busy_s;
                r.bytes += bytes;
                const double d0 = std::max(arrived, decoder_free);
                decoder_free = d0 + ci.decode_s({t, l}, level);
                decodes.emplace_back(d0, decoder_free);
                r.decode_busy_s += decoder_free - d0;
                r.units[i] = {Lane::stream, transfer.request_s, decoder_free};
                ready[i] = decoder_free;
                s = arrived;
            }
        }
        (void)plan;
    }
    // The question, layer by layer, once each layer is complete.
    double q = c;
    for (int32_t l = 0; l < L; ++l) {
        double layer_ready = 0;
        for (int32_t t = 0; t < shape.n_chunks(); ++t)
            layer_ready = std::max(layer_ready, ready[shape.index({t, l})]);
        q = std::max(q, layer_ready) + ci.query_layer_s;
    }
    r.loaded_s = *std::max_element(ready.begin(), ready.end());
    r.ttft_s = q + ci.finish_s;
    return r;
}

}  // namespace

SimResult simulate_compute(const CostInstance& ci, const Plan& plan,
                           const std::vector<double>& stream_ready, const Intervals& decodes,
                           double compute_start_s) {
    const ContextShape& shape = ci.shape;
    const int32_t T = shape.n_chunks(), L = shape.n_layers;
    const size_t n = shape.n_units();
    SimResult r;
    r.units.assign(n, {});
    std::vector<double> ready(n, kNever);
    for (size_t i = 0; i < n; ++i)
        if (plan.lane[i] == Lane::stream) {
            ready[i] = stream_ready[i];
            r.units[i] = {Lane::stream, 0, stream_ready[i]};
        }
    // When each context layer is complete (known once all its units have a time).
    std::vector<int32_t> known(static_cast<size_t>(L), 0);
    std::vector<double> layer_ready(static_cast<size_t>(L), 0);
    const auto note_ready = [&](size_t i) {
        const auto l = static_cast<size_t>(shape.unit(i).l);
        ++known[l];
        layer_ready[l] = std::max(layer_ready[l], ready[i]);
    };
    for (size_t i = 0; i < n; ++i)
        if (plan.lane[i] == Lane::stream) note_ready(i);

    // Earliest start of compute unit u given what is done; kNever while an input is not.
    const auto inputs_ready = [&](UnitId u) {
        double at = 0;
        if (u.l > 0) at = ready[shape.index({u.t, u.l - 1})];
        if (u.l < L - 1)
            for (int32_t t = 0; t < u.t && at < kNever; ++t)
                at = std::max(at, ready[shape.index({t, u.l})]);
        return at;
    };

    std::vector<UnitId> pending = plan.compute_order;
    double c = compute_start_s, query_done = compute_start_s;
    int32_t query_layer = 0;
    while (query_layer < L) {
        const double query_at =
            known[static_cast<size_t>(query_layer)] == T
                ? std::max(layer_ready[static_cast<size_t>(query_layer)], query_done)
                : kNever;
        if (query_at <= c) {
            c += ci.query_layer_s;
            query_done = c;
            ++query_layer;
            continue;
        }
        size_t chosen = pending.size();
        double earliest = query_at;
        for (size_t k = 0; k < pending.size(); ++k) {
            const double at = inputs_ready(pending[k]);
            if (at <= c) {
                chosen = k;
                break;
            }
            earliest = std::min(earliest, at);
        }
        if (chosen == pending.size()) {
            if (earliest == kNever)
                fail(
                    "simulate: plan '{}' cannot finish: the compute lane waits for a unit that "
                    "nothing produces",
                    plan.policy);
            c = earliest;
            continue;
        }
        const UnitId u = pending[chosen];
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(chosen));
        const size_t i = shape.index(u);
        const double d = ci.units[i].compute_s;
        const double slowed = d + ci.decode_slowdown * overlap(decodes, c, c + d);
        r.units[i] = {Lane::compute, c, c + slowed};
        r.compute_busy_s += slowed;
        c += slowed;
        ready[i] = c;
        note_ready(i);
    }
    r.loaded_s = *std::max_element(ready.begin(), ready.end());
    r.ttft_s = c + ci.finish_s;
    return r;
}

SimResult simulate(const CostInstance& ci, const Plan& plan, const LinkModel& link) {
    const auto errors = check_plan(ci.shape, plan, static_cast<int>(ci.levels.size()));
    if (!errors.empty()) fail("simulate: plan '{}' is invalid: {}", plan.policy, errors.front());
    if (plan.dispatch == Dispatch::meet_in_the_middle)
        return simulate_meet_in_the_middle(ci, plan, link);
    const StreamPass stream = run_stream(ci, with_levels(plan, ci.shape), link, 0);
    const double compute_start = plan.dispatch == Dispatch::stream_then_compute ? stream.end_s : 0;
    SimResult r = simulate_compute(ci, plan, stream.ready, stream.decodes, compute_start);
    for (size_t i = 0; i < r.units.size(); ++i)
        if (plan.lane[i] == Lane::stream) r.units[i].start_s = stream.start[i];
    r.link_busy_s = stream.link_busy_s;
    r.decode_busy_s = stream.decode_busy_s;
    r.bytes = stream.bytes;
    return r;
}

}  // namespace sparkv::plan
