// Runs one plan: the stream lane and the compute lane at once, the controller beside them, until
// the question is prefilled over the complete context. The dependency rules are enforced at run
// time by the board (one writer per unit) and the engine (no layer runs before the KV it attends
// to is in the cache); a unit the stream lane cannot deliver is computed instead.
//
// Threads: execute() runs the compute lane on the calling thread; it starts and joins the
// stream lane's (client) threads and the controller's thread before returning or throwing.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "net/unit_client.h"
#include "plan/cost_instance.h"
#include "plan/plan.h"
#include "runtime/compute_lane.h"
#include "runtime/controller.h"
#include "runtime/stream_lane.h"
#include "runtime/timeline.h"

namespace sparkv::runtime {

struct ExecutionReport {
    std::vector<float> logits;  // of the question's last token
    double loaded_s = 0;        // every context unit in the cache (seconds since origin)
    double done_s = 0;          // logits ready
    ComputeLaneStats compute;
    StreamLaneStats stream;
    ControllerStats controller;
    std::vector<UnitFailure> failures;
    size_t units_computed = 0;
    size_t units_streamed = 0;
    // The stream lane's estimates at the end (recent units), when it streamed any.
    std::optional<double> bandwidth;
    std::optional<double> latency_s;
};

struct ExecuteOptions {
    ControllerSettings controller;
    double planned_bandwidth = 1e6;  // what the plan assumed, bytes/s (the controller's reference)
};

// `client` has fetched the manifest; `engine` has an empty cache large enough for the context
// and the question. The controller runs only for Dispatch::planned plans with it enabled.
ExecutionReport execute(Engine& engine, UnitClient& client, const plan::CostInstance& costs,
                        const plan::Plan& plan, std::span<const int32_t> context_tokens,
                        std::span<const int32_t> question_tokens, Timeline& timeline,
                        double origin_s, const ExecuteOptions& options);

}  // namespace sparkv::runtime
