// Search over per-chunk compute depths k_t (chunk t computes layers 0 .. k_t - 1 and streams
// the rest), each candidate scored by simulating it on a link. Near-optimal schedules of this
// problem have that shape: compute cost grows with a chunk's position while stream cost does
// not, so what matters is how deep each chunk is computed; orders follow from the depths
// (plan_from_depths). Used by sparkv's refinement (predicted link) and the oracle (realised
// link). Bounded by an evaluation budget so planning time stays predictable.
#pragma once

#include <map>
#include <vector>

#include "plan/cost_instance.h"
#include "plan/link_model.h"
#include "plan/plan.h"
#include "plan/policy.h"

namespace sparkv::plan {

class DepthSearch {
  public:
    // Candidates stream in each of `orders`; a depth vector scores its best order.
    DepthSearch(const CostInstance& costs, const LinkModel& link, int budget,
                std::vector<StreamOrder> orders = {StreamOrder::down});

    // A complete plan as a candidate (e.g. the greedy's own orders).
    void consider(const Plan& plan);
    // Depths to search from (evaluated now).
    void start_from(const std::vector<int32_t>& k);
    // CAKE-like splits (the first m chunks computed in full, the rest streamed, every m), the
    // same with the next chunk computed a quarter, half or three quarters deep, and uniform
    // depths (every chunk computed to the same layer, every depth).
    void start_from_split_points();
    // Coordinate descent on the depths from `from` (default: the best so far): moves of single
    // chunks and of neighbouring pairs, first improvement, until a pass finds none or the
    // budget is spent.
    void improve();
    void improve(std::vector<int32_t> from);

    // Among the candidates seen whose TTFT is within `tolerance` of the best (at most
    // `max_candidates`, shortest first), the one that is shortest on `hedge` (e.g. a slower
    // link): near-ties on the estimate are broken by what happens if the estimate is wrong.
    // Its predicted_ttft_s is its TTFT on the search's link.
    Plan best_hedged(const LinkModel& hedge, double tolerance, size_t max_candidates) const;

    const Plan& best() const { return best_; }
    double best_ttft() const { return best_ttft_; }
    int evaluations() const { return evaluations_; }

  private:
    double evaluate(const std::vector<int32_t>& k);

    const CostInstance& costs_;
    const LinkModel& link_;
    int budget_;
    std::vector<StreamOrder> orders_;
    int evaluations_ = 0;
    std::map<std::vector<int32_t>, double> seen_;
    std::vector<int32_t> best_k_;
    Plan best_;
    double best_ttft_;
};

}  // namespace sparkv::plan
