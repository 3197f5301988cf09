// sparkv: the published potential-aware greedy (DESIGN.md §5), then a refinement of its
// per-chunk compute depths by simulation (ours; PlannerSettings::refine turns it off).
#include <algorithm>
#include <limits>
#include <optional>

#include "common/error.h"
#include "plan/policy.h"
#include "plan/search.h"
#include "plan/simulator.h"

namespace sparkv::plan {

namespace {

constexpr size_t kHedgeCandidates = 64;  // simulations spent on breaking near-ties

enum class State : uint8_t { free, computed, streamed };

class Greedy {
  public:
    Greedy(const CostInstance& costs, double bandwidth)
        : c_(costs),
          s_(costs.shape),
          bw_(bandwidth),
          state_(s_.n_units(), State::free),
          available_(s_.n_units(), false),
          stream_only_(s_.n_units(), false) {}

    Plan run(double stage_s) {
        Plan plan;
        plan.lane.assign(s_.n_units(), Lane::compute);
        plan.level.assign(s_.n_units(), -1);
        size_t assigned = 0;
        while (assigned < s_.n_units()) {
            const size_t before = assigned;
            // Compute lane: fill the stage from compute-ready units by w_c, re-sorting each pick.
            for (double used = 0; used < stage_s;) {
                const auto u = best_compute();
                if (!u) break;
                const size_t i = s_.index(*u);
                state_[i] = State::computed;
                available_[i] = true;
                plan.compute_order.push_back(*u);
                used += c_.units[i].compute_s;
                ++assigned;
            }
            // Stream lane: its own budget, from units nobody has yet, by w_s. What it streams
            // becomes available to the compute lane from the next stage on.
            std::vector<size_t> streamed_now;
            for (double used = 0; used < stage_s;) {
                const auto u = best_stream();
                if (!u) break;
                const size_t i = s_.index(*u);
                state_[i] = State::streamed;
                for (int32_t l = u->l + 1; l < s_.n_layers; ++l)
                    stream_only_[s_.index({u->t, l})] = true;  // no hidden state above it
                plan.lane[i] = Lane::stream;
                plan.level[i] = c_.default_level;
                plan.stream_order.push_back(*u);
                streamed_now.push_back(i);
                used += c_.stream_s(*u, c_.default_level, bw_);
                ++assigned;
            }
            for (size_t i : streamed_now) available_[i] = true;
            if (assigned == before) break;  // cannot happen: the stream lane takes any free unit
        }
        return plan;
    }

  private:
    bool compute_ready(UnitId u) const {
        const size_t i = s_.index(u);
        if (state_[i] != State::free || stream_only_[i]) return false;
        if (u.l > 0 && state_[s_.index({u.t, u.l - 1})] != State::computed) return false;
        if (u.l == s_.n_layers - 1) return true;
        for (int32_t t = 0; t < u.t; ++t)
            if (!available_[s_.index({t, u.l})]) return false;
        return true;
    }

    // Σ 1/t_comp(x) over the units x that become compute-ready once `changed` takes `as`.
    double unlocked(UnitId changed, State as, bool available) {
        const size_t i = s_.index(changed);
        std::vector<UnitId> candidates;
        if (as == State::computed && changed.l + 1 < s_.n_layers)
            candidates.push_back({changed.t, changed.l + 1});
        for (int32_t t = changed.t + 1; t < s_.n_chunks(); ++t)
            candidates.push_back({t, changed.l});
        std::vector<bool> was(candidates.size());
        for (size_t k = 0; k < candidates.size(); ++k) was[k] = compute_ready(candidates[k]);
        const State old_state = state_[i];
        const bool old_available = available_[i];
        state_[i] = as;
        available_[i] = available;
        double sum = 0;
        for (size_t k = 0; k < candidates.size(); ++k)
            if (!was[k] && compute_ready(candidates[k]))
                sum += 1.0 / std::max(1e-6, c_.unit(candidates[k]).compute_s);
        state_[i] = old_state;
        available_[i] = old_available;
        return sum;
    }

    std::optional<UnitId> best_compute() {
        std::optional<UnitId> best;
        double best_w = -1;
        for (size_t i = 0; i < s_.n_units(); ++i) {
            const UnitId u = s_.unit(i);
            if (!compute_ready(u)) continue;
            const double w =
                1.0 / std::max(1e-6, c_.units[i].compute_s) + unlocked(u, State::computed, true);
            if (w > best_w) best_w = w, best = u;
        }
        return best;
    }

    std::optional<UnitId> best_stream() {
        std::optional<UnitId> best;
        double best_w = -1;
        for (size_t i = 0; i < s_.n_units(); ++i) {
            if (state_[i] != State::free) continue;
            const UnitId u = s_.unit(i);
            const double w = 1.0 / std::max(1e-6, c_.stream_s(u, c_.default_level, bw_)) +
                             unlocked(u, State::streamed, true);
            if (w > best_w) best_w = w, best = u;
        }
        return best;
    }

    const CostInstance& c_;
    const ContextShape& s_;
    double bw_;
    std::vector<State> state_;
    std::vector<bool> available_;    // KV present for the compute lane's token rule
    std::vector<bool> stream_only_;  // a layer below was streamed
};

// The shortest TTFT any plan reaches on `link` (a depth search from `from`), with a plan that
// computes something charged `mixed_margin` for the CPU the lanes share (see plan_sparkv).
double best_reachable_ttft(const CostInstance& costs, const LinkModel& link,
                           const std::vector<int32_t>& from, const PlannerSettings& settings) {
    DepthSearch search(costs, link, settings.refine_budget / 2);
    search.start_from(from);
    search.start_from_split_points();
    search.improve();
    const bool mixed = search.best().count(Lane::compute) > 0;
    return search.best_ttft() / (mixed ? 1 - settings.mixed_margin : 1);
}

// Deepest-first streaming keeps every chunk's next layer pending for the controller, but the
// question can prefill layer 0 only once the last unit arrives, so all its layers form a tail
// after the link is done. When that tail is a large part of a short request (a fast link),
// stream layer 0 first instead: the question then follows the units up the layers.
// Layer 0 first gives up recovery, though: once a chunk's lowest streamed layer is in, the
// compute lane cannot take the layers above it without the hidden state it never computed, so
// if the link delivers less than estimated the plan is stuck with it. The order flips only when
// what it gains if the estimate is right is at least `order_regret_weight` of what it loses if
// the link delivers just `order_risk` of the estimate, where down order lets the controller reach
// the best plan for that slower link. The weight is below 1 because the controller reaches that
// plan only after its window has seen the link slow down, and the simulator prices the mixed
// plans of the slower link without the CPU the lanes then share.
// `reachable` caches the slower link's best TTFT between calls.
Plan with_stream_order(const CostInstance& costs, double bandwidth, Plan down,
                       const PlannerSettings& settings, std::optional<double>& reachable) {
    const ConstantLink link(bandwidth);
    Plan up = down;
    up.stream_order = stream_order(costs.shape, down, StreamOrder::up);
    up.predicted_ttft_s = simulate(costs, up, link).ttft_s;
    if (!(up.predicted_ttft_s < (1 - settings.order_margin) * down.predicted_ttft_s)) return down;
    const ConstantLink slower(bandwidth * settings.order_risk);
    const double gain = down.predicted_ttft_s - up.predicted_ttft_s;
    if (!reachable)
        reachable = best_reachable_ttft(costs, slower, down.prefixes(costs.shape), settings);
    const double loss = simulate(costs, up, slower).ttft_s - *reachable;
    return gain >= settings.order_regret_weight * loss ? up : down;
}

}  // namespace

Plan plan_sparkv_greedy(const CostInstance& costs, double bandwidth, double stage_s) {
    if (!(stage_s > 0)) fail("planner: the stage length must be positive");
    Plan plan = Greedy(costs, bandwidth).run(stage_s);
    plan.policy = "sparkv";
    return plan;
}

Plan plan_sparkv(const CostInstance& costs, double bandwidth, const PlannerSettings& settings) {
    Plan greedy = plan_sparkv_greedy(costs, bandwidth, settings.stage_s);
    // Keep the greedy's lanes but stream deepest layers first, like every refined plan: the
    // greedy's own order takes each chunk's lowest streamed layers early (the smallest units),
    // which leaves the controller nothing it can hand to the compute lane when the link turns
    // out slower than planned.
    greedy.stream_order = stream_order(costs.shape, greedy, StreamOrder::down);
    const ConstantLink link(bandwidth);
    greedy.predicted_ttft_s = simulate(costs, greedy, link).ttft_s;
    if (!settings.refine) return greedy;
    DepthSearch search(costs, link, settings.refine_budget);
    search.consider(greedy);
    search.start_from(greedy.prefixes(costs.shape));
    search.start_from_split_points();
    search.improve();
    // Plans within `hedge_tolerance` of the shortest are as good as equal given how rough the
    // estimate is: keep the one that loses least if the link delivers `order_risk` of it (the
    // cheapest compute up front, not the costliest chunks' first layers).
    Plan best = search.best_hedged(ConstantLink(bandwidth * settings.order_risk),
                                   settings.hedge_tolerance, kHedgeCandidates);
    best.policy = "sparkv";
    std::optional<double> reachable;
    best = with_stream_order(costs, bandwidth, best, settings, reachable);
    // Streaming everything is the one plan whose lanes do not share the CPU: a mixed plan's
    // compute lane also slows the stream lane's receive and decode threads, which the simulator
    // does not price (measured: on a fast link, 16 computed units did not make the other 104
    // arrive any sooner). So a mixed plan must be predicted clearly shorter to be preferred.
    Plan all_stream = plan_from_depths(
        costs, std::vector<int32_t>(static_cast<size_t>(costs.shape.n_chunks()), 0));
    all_stream.predicted_ttft_s = simulate(costs, all_stream, link).ttft_s;
    all_stream = with_stream_order(costs, bandwidth, all_stream, settings, reachable);
    all_stream.policy = "sparkv";
    if (best.count(Lane::compute) > 0 &&
        best.predicted_ttft_s > (1 - settings.mixed_margin) * all_stream.predicted_ttft_s)
        return all_stream;
    return best;
}

}  // namespace sparkv::plan
