// Plays a plan forward in time on a cost instance and a link, the way the executor runs it: the
// stream lane requests its units in order on the instance's connections (each asks for the next
// unit when its last one is in, so round trips overlap bodies), the bodies cross the link one
// after another, and a delivery thread decodes them in arrival order; the compute lane takes the
// first unit of its order whose inputs are ready (work-conserving), and runs a layer of the
// question as soon as that layer of the context is complete; decoding slows the compute lane down
// by the instance's decode_slowdown. Policies use it to compare candidate plans (sparkv's
// refinement, the oracle's search); tests use it to check policies against known optima.
// Deterministic and allocation-light.
#pragma once

#include <vector>

#include "plan/cost_instance.h"
#include "plan/link_model.h"
#include "plan/plan.h"

namespace sparkv::plan {

struct SimulatedUnit {
    Lane lane = Lane::compute;
    double start_s = 0;  // compute start, or request sent
    double ready_s = 0;  // KV in the cache
};

struct SimResult {
    double ttft_s = 0;    // question answered: last query layer + finish
    double loaded_s = 0;  // every context unit ready
    double compute_busy_s = 0;
    double link_busy_s = 0;  // from each request to its last byte
    double decode_busy_s = 0;
    uint64_t bytes = 0;
    std::vector<SimulatedUnit> units;  // per unit (ContextShape::index)
};

// Throws Error if the plan is invalid for the instance (check_plan) or cannot finish.
SimResult simulate(const CostInstance& instance, const Plan& plan, const LinkModel& link);

// The compute lane's part on its own, for a plan whose stream units arrive at known times
// (stream_ready[i] for streamed unit i, ignored otherwise). Used by simulate() and by searches
// that keep the stream lane fixed while they reorder the compute lane.
SimResult simulate_compute(const CostInstance& instance, const Plan& plan,
                           const std::vector<double>& stream_ready,
                           const std::vector<std::pair<double, double>>& decode_intervals,
                           double compute_start_s);

}  // namespace sparkv::plan
