// oracle: the best schedule that can be found knowing the realised link and the measured costs.
// Small instances are searched exhaustively over every lane assignment and every order of both
// lanes (every schedule the work-conserving executor can run); large ones by depth search with
// restarts, reported with ttft_lower_bound() so the gap to the optimum is known.
#include <algorithm>
#include <numeric>
#include <random>

#include "common/error.h"
#include "plan/policy.h"
#include "plan/search.h"
#include "plan/simulator.h"

namespace sparkv::plan {

namespace {

// Every permutation of `units` that keeps each computed chunk's layers in order and computed
// inputs before their users; calls visit(order).
template <typename Visit>
void for_each_order(std::vector<UnitId> units, Visit&& visit) {
    std::sort(units.begin(), units.end(),
              [](UnitId a, UnitId b) { return a.t != b.t ? a.t < b.t : a.l < b.l; });
    do {
        visit(units);
    } while (std::next_permutation(units.begin(), units.end(), [](UnitId a, UnitId b) {
        return a.t != b.t ? a.t < b.t : a.l < b.l;
    }));
}

Plan exhaustive(const CostInstance& costs, const LinkModel& link) {
    const ContextShape& s = costs.shape;
    const int32_t T = s.n_chunks(), L = s.n_layers;
    Plan best;
    double best_ttft = std::numeric_limits<double>::max();
    std::vector<int32_t> k(static_cast<size_t>(T), 0);
    for (;;) {
        const Plan base = Plan::from_prefixes(s, k, costs.default_level);
        for_each_order(base.compute_order, [&](const std::vector<UnitId>& compute) {
            Plan p = base;
            p.compute_order = compute;
            if (!check_plan(s, p, static_cast<int>(costs.levels.size())).empty()) return;
            for_each_order(base.stream_order, [&](const std::vector<UnitId>& stream) {
                p.stream_order = stream;
                const double ttft = simulate(costs, p, link).ttft_s;
                if (ttft < best_ttft) best_ttft = ttft, best = p;
            });
        });
        int32_t t = 0;  // next depth vector, like an odometer
        while (t < T && ++k[static_cast<size_t>(t)] > L) k[static_cast<size_t>(t++)] = 0;
        if (t == T) break;
    }
    best.predicted_ttft_s = best_ttft;
    return best;
}

}  // namespace

double ttft_lower_bound(const CostInstance& costs, const LinkModel& link) {
    // Units by compute seconds saved per byte streamed, best first.
    struct Item {
        double compute_s;
        double bytes;
    };
    std::vector<Item> items;
    double total_compute = 0;
    for (const auto& u : costs.units) {
        items.push_back(
            {u.compute_s, static_cast<double>(u.bytes[static_cast<size_t>(costs.default_level)])});
        total_compute += u.compute_s;
    }
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
        return a.compute_s * b.bytes > b.compute_s * a.bytes;
    });
    // Feasible makespan M: the link delivers B(M) bytes by M; stream the best compute-per-byte
    // units fractionally within B(M); the rest must fit in M on the compute lane.
    const auto feasible = [&](double m) {
        double capacity = link.mean_rate(0, m) * m, saved = 0;
        for (const auto& it : items) {
            if (capacity <= 0) break;
            const double part = std::min(1.0, capacity / std::max(1.0, it.bytes));
            saved += part * it.compute_s;
            capacity -= part * it.bytes;
        }
        return total_compute - saved <= m;
    };
    double lo = 0, hi = std::max(total_compute, 1e-3);
    for (int i = 0; i < 60; ++i) {
        const double mid = (lo + hi) / 2;
        (feasible(mid) ? hi : lo) = mid;
    }
    return lo + costs.query_layer_s + costs.finish_s;
}

Plan plan_oracle(const CostInstance& costs, const LinkModel& realised,
                 const PlannerSettings& settings) {
    Plan plan;
    if (static_cast<int>(costs.shape.n_units()) <= settings.exact_max_units) {
        plan = exhaustive(costs, realised);
    } else {
        DepthSearch search(costs, realised, settings.oracle_budget,
                           {StreamOrder::down, StreamOrder::up});
        search.start_from_split_points();
        const double mean_rate =
            std::max(1.0, realised.mean_rate(0, std::max(1.0, costs.total_compute_s())));
        search.consider(plan_sparkv_greedy(costs, mean_rate, settings.stage_s));
        search.improve();
        // Restarts from random perturbations of the best depths, while the budget lasts.
        std::mt19937 rng(12345);
        const int32_t T = costs.shape.n_chunks(), L = costs.shape.n_layers;
        for (int round = 0; round < 64 && search.evaluations() < settings.oracle_budget; ++round) {
            std::vector<int32_t> k = search.best().prefixes(costs.shape);
            for (int moves = 0; moves < 3; ++moves) {
                auto& x = k[rng() % static_cast<uint32_t>(T)];
                x = std::clamp(x + static_cast<int32_t>(rng() % 11) - 5, 0, L);
            }
            search.improve(k);
        }
        plan = search.best();
    }
    plan.lower_bound_s = ttft_lower_bound(costs, realised);
    return plan;
}

}  // namespace sparkv::plan
