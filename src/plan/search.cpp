#include "plan/search.h"

#include <algorithm>
#include <limits>

#include "plan/policy.h"
#include "plan/simulator.h"

namespace sparkv::plan {

DepthSearch::DepthSearch(const CostInstance& costs, const LinkModel& link, int budget,
                         std::vector<StreamOrder> orders)
    : costs_(costs),
      link_(link),
      budget_(budget),
      orders_(std::move(orders)),
      best_ttft_(std::numeric_limits<double>::max()) {}

void DepthSearch::consider(const Plan& plan) {
    ++evaluations_;
    const double ttft = simulate(costs_, plan, link_).ttft_s;
    if (ttft < best_ttft_) {
        best_ttft_ = ttft;
        best_ = plan;
        best_.predicted_ttft_s = ttft;
        best_k_ = plan.prefixes(costs_.shape);
    }
}

double DepthSearch::evaluate(const std::vector<int32_t>& k) {
    if (auto it = seen_.find(k); it != seen_.end()) return it->second;
    double best_here = std::numeric_limits<double>::max();
    for (StreamOrder order : orders_) {
        ++evaluations_;
        Plan plan = plan_from_depths(costs_, k, order);
        const double ttft = simulate(costs_, plan, link_).ttft_s;
        best_here = std::min(best_here, ttft);
        if (ttft < best_ttft_) {
            best_ttft_ = ttft;
            best_ = std::move(plan);
            best_.predicted_ttft_s = ttft;
            best_k_ = k;
        }
    }
    seen_.emplace(k, best_here);
    return best_here;
}

void DepthSearch::start_from(const std::vector<int32_t>& k) {
    evaluate(k);
}

void DepthSearch::start_from_split_points() {
    const int32_t T = costs_.shape.n_chunks(), L = costs_.shape.n_layers;
    for (int32_t m = 0; m <= T && evaluations_ < budget_; ++m) {
        std::vector<int32_t> k(static_cast<size_t>(T), 0);
        std::fill(k.begin(), k.begin() + m, L);
        evaluate(k);
    }
    for (int32_t depth = 1; depth < L && evaluations_ < budget_; ++depth)
        evaluate(std::vector<int32_t>(static_cast<size_t>(T), depth));
    // Between two splits: the first m chunks in full and the next one partly (a quarter, half,
    // three quarters of its layers), the cheapest compute there is.
    for (int32_t m = 0; m < T && evaluations_ < budget_; ++m)
        for (int32_t quarter = 1; quarter <= 3; ++quarter) {
            std::vector<int32_t> k(static_cast<size_t>(T), 0);
            std::fill(k.begin(), k.begin() + m, L);
            k[static_cast<size_t>(m)] = L * quarter / 4;
            evaluate(k);
        }
}

Plan DepthSearch::best_hedged(const LinkModel& hedge, double tolerance,
                              size_t max_candidates) const {
    std::vector<std::pair<double, const std::vector<int32_t>*>> near;
    for (const auto& [k, ttft] : seen_)
        if (ttft <= (1 + tolerance) * best_ttft_) near.emplace_back(ttft, &k);
    std::sort(near.begin(), near.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    if (near.size() > max_candidates) near.resize(max_candidates);
    Plan chosen = best_;
    double chosen_hedge = simulate(costs_, best_, hedge).ttft_s;
    for (const auto& [ttft, k] : near)
        for (StreamOrder order : orders_) {
            Plan plan = plan_from_depths(costs_, *k, order);
            const double on_hedge = simulate(costs_, plan, hedge).ttft_s;
            if (on_hedge < chosen_hedge) {
                chosen_hedge = on_hedge;
                chosen = std::move(plan);
                chosen.predicted_ttft_s = ttft;
            }
        }
    return chosen;
}

void DepthSearch::improve() {
    if (!best_k_.empty()) improve(best_k_);
}

void DepthSearch::improve(std::vector<int32_t> current) {
    const int32_t T = costs_.shape.n_chunks(), L = costs_.shape.n_layers;
    std::vector<int32_t> deltas;
    for (int32_t d = 1; d < L; d *= 2) deltas.insert(deltas.end(), {d, -d});
    double current_ttft = evaluate(current);
    bool improved = true;
    while (improved && evaluations_ < budget_) {
        improved = false;
        const std::vector<int32_t> base = current;
        const auto attempt = [&](const std::vector<int32_t>& k) {
            if (evaluations_ >= budget_ || k == base) return false;
            const double ttft = evaluate(k);
            if (ttft >= current_ttft - 1e-9) return false;
            current = k;
            current_ttft = ttft;
            return true;
        };
        for (int32_t t = 0; t < T && !improved; ++t)
            for (int32_t d : deltas) {
                std::vector<int32_t> k = base;
                k[static_cast<size_t>(t)] = std::clamp(k[static_cast<size_t>(t)] + d, 0, L);
                if ((improved = attempt(k))) break;
            }
        // Shift depth between neighbours: deeper here, shallower there.
        for (int32_t t = 0; t + 1 < T && !improved; ++t)
            for (int32_t d : deltas) {
                std::vector<int32_t> k = base;
                k[static_cast<size_t>(t)] = std::clamp(k[static_cast<size_t>(t)] + d, 0, L);
                k[static_cast<size_t>(t) + 1] = std::clamp(k[static_cast<size_t>(t) + 1] - d, 0, L);
                if ((improved = attempt(k))) break;
            }
    }
}

}  // namespace sparkv::plan
