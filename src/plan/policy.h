// The loading policies of DESIGN.md §5. Each turns a cost instance into a Plan for the same
// executor, so they are compared fairly:
//   local   compute every unit, chunk by chunk;
//   stream  CacheGen-like: stream every chunk at the best level that fits its time budget at the
//           predicted bandwidth; chunks that fit no level are computed after the stream ends;
//   cake    compute whole chunks from the front, stream whole chunks from the back, meet where
//           the lanes cross at run time (no cost model);
//   sparkv  the published potential-aware greedy in stages of Δt, then (ours) a
//           simulator-guided refinement of each chunk's compute depth; adapted at run time by
//           the controller;
//   oracle  offline: knows the realised link and the measured costs; the best schedule found,
//           exact on small instances, with a lower bound on large ones.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "plan/cost_instance.h"
#include "plan/link_model.h"
#include "plan/plan.h"

namespace sparkv::plan {

enum class Policy : uint8_t { local, stream, cake, sparkv, oracle };

std::string_view policy_name(Policy policy);
Policy policy_from_name(std::string_view name);  // throws Error listing the names
std::span<const Policy> all_policies();

// One home for the planner's settings; defaults are justified in src/plan/README.md.
struct PlannerSettings {
    // sparkv: stage budget Δt of the greedy, seconds.
    double stage_s = 0.25;
    // sparkv: refine the greedy's compute depths with the simulator (false = the paper's greedy).
    bool refine = true;
    // sparkv: stop refining after this many simulations (planning must stay far below 1% of
    // TTFT; one simulation of an 8 x 30 context takes well under a millisecond).
    int refine_budget = 400;
    // sparkv: stream layer 0 first instead of the deepest layers first only when the simulator
    // predicts at least this much shorter TTFT (the question's tail after the last unit on fast
    // links); below it, keeping each chunk's next layer pending for the controller is worth more.
    double order_margin = 0.07;
    // sparkv: ... and only when that gain is at least `order_regret_weight` of what layer 0 first
    // would lose if the link delivered just `order_risk` of the estimate (it can no longer hand
    // units to the compute lane); see with_stream_order in policy_sparkv.cpp.
    double order_risk = 0.5;
    double order_regret_weight = 0.5;
    // sparkv: plans predicted within this share of the shortest count as tied; the tie goes to
    // the one shortest on a link delivering `order_risk` of the estimate.
    double hedge_tolerance = 0.03;
    // sparkv: keep a plan that computes some units only when the simulator predicts at least
    // this much shorter TTFT than streaming everything; the lanes share the CPU in ways the
    // simulator does not price (the compute lane slows the stream lane's receive and decode).
    double mixed_margin = 0.05;
    // oracle: exhaustive search up to this many units; larger instances are searched locally.
    int exact_max_units = 7;
    int oracle_budget = 6000;
    // stream: may drop below the default level when a chunk does not fit its budget (CacheGen's
    // adaptation); off when the user asked for one level, which is then a quality floor.
    bool stream_adapts_level = true;
};

// `bandwidth` is the predicted link rate (bytes/s) a policy plans with; `realised` is the link
// that actually happened (the oracle only; required for it).
Plan make_plan(Policy policy, const CostInstance& costs, double bandwidth,
               const PlannerSettings& settings = {}, const LinkModel* realised = nullptr);

// The individual policies (policy_*.cpp).
Plan plan_local(const CostInstance& costs);
Plan plan_stream(const CostInstance& costs, double bandwidth, bool adapt_level = true);
Plan plan_cake(const CostInstance& costs);
Plan plan_sparkv_greedy(const CostInstance& costs, double bandwidth, double stage_s);
Plan plan_sparkv(const CostInstance& costs, double bandwidth, const PlannerSettings& settings);
Plan plan_oracle(const CostInstance& costs, const LinkModel& realised,
                 const PlannerSettings& settings);

// A lower bound on the TTFT of any schedule on this instance and link: the compute and stream
// lanes split the units fractionally (best compute-seconds per byte first), with no waiting,
// no decode cost and no precedence, then the last question layer and the finish.
double ttft_lower_bound(const CostInstance& costs, const LinkModel& link);

// How a plan orders its streamed units, layer by layer across the chunks:
//   up    layer 0 of every chunk first: the question's layers can start while the rest arrives;
//   down  the deepest layers first: what is still to come at any moment sits right above each
//         chunk's computed layers, where the compute lane can take it over without recomputing
//         anything -- the order that leaves the controller the most room (sparkv's default).
enum class StreamOrder : uint8_t { up, down };
std::vector<UnitId> stream_order(const ContextShape& shape, const Plan& plan, StreamOrder order);

// A plan from per-chunk compute depths k_t: compute chunk by chunk, stream in `order`.
Plan plan_from_depths(const CostInstance& costs, const std::vector<int32_t>& k,
                      StreamOrder order = StreamOrder::down);

}  // namespace sparkv::plan
