#include "runtime/executor.h"

#include "common/error.h"
#include "common/timer.h"

namespace sparkv::runtime {

ExecutionReport execute(Engine& engine, UnitClient& client, const plan::CostInstance& costs,
                        const plan::Plan& plan, std::span<const int32_t> context_tokens,
                        std::span<const int32_t> question_tokens, Timeline& timeline,
                        double origin_s, const ExecuteOptions& options) {
    const auto errors = plan::check_plan(costs.shape, plan, static_cast<int>(costs.levels.size()));
    if (!errors.empty()) fail("executor: plan '{}' is invalid: {}", plan.policy, errors.front());

    UnitBoard board(costs.shape);
    board.apply(plan);
    std::vector<double> predicted(costs.units.size());
    for (size_t i = 0; i < predicted.size(); ++i) predicted[i] = costs.units[i].compute_s;

    StreamLane stream(client, board, engine.cache(), timeline, origin_s);
    ComputeLane compute(engine, board, context_tokens, question_tokens, std::move(predicted),
                        timeline, origin_s, plan.dispatch == plan::Dispatch::stream_then_compute);
    ControllerSettings controller_settings = options.controller;
    controller_settings.enabled =
        controller_settings.enabled && plan.dispatch == plan::Dispatch::planned;
    Controller controller(costs, plan, options.planned_bandwidth, board, stream, compute, timeline,
                          origin_s, controller_settings);

    // Local plans need no connection beyond the manifest and tokens; the controller may still
    // send units to the stream lane, so it starts whenever a controller runs.
    const bool use_stream = !plan.stream_order.empty() || controller_settings.enabled;
    if (use_stream) {
        std::vector<std::pair<UnitId, int>> order;
        for (UnitId u : plan.stream_order) {
            const int level = plan.level[costs.shape.index(u)];
            order.emplace_back(u, level >= 0 ? level : costs.default_level);
        }
        stream.start(order, plan.dispatch == plan::Dispatch::meet_in_the_middle);
    }
    controller.start();

    ExecutionReport report;
    try {
        report.logits = compute.run();
    } catch (...) {
        controller.stop();
        stream.stop();
        throw;
    }
    report.done_s = now_seconds() - origin_s;
    controller.stop();
    if (use_stream) stream.finish();

    report.compute = compute.stats();
    report.stream = stream.stats();
    report.controller = controller.stats();
    report.failures = stream.failures();
    if (use_stream) {
        // For the next request's plan: the rate that explains this request's whole stream, not
        // the last few units' own rates, which swing several-fold on a bursty link.
        report.bandwidth = stream.estimator().fitted_bytes_per_second();
        report.latency_s = stream.estimator().latency_seconds();
    }
    report.units_computed = report.compute.units;
    report.units_streamed = report.stream.units;
    double loaded = 0;
    for (const auto& e : timeline.events())
        if (e.kind == EventKind::compute || e.kind == EventKind::stream)
            loaded = std::max(loaded, e.end_s);
    report.loaded_s = loaded;
    return report;
}

}  // namespace sparkv::runtime
