// The controller on scripted drifts: fake lanes report what a slow link or a busy CPU would,
// and the controller must move the right units the right way (and none when nothing drifted).
#include "runtime/controller.h"

#include <gtest/gtest.h>

#include "plan/policy.h"

namespace sparkv::runtime {
namespace {

using plan::UnitId;

class FakeStream : public StreamControl {
  public:
    explicit FakeStream(UnitBoard& board) : board_(board) {}
    std::optional<double> bandwidth() const override { return bandwidth_; }
    size_t bandwidth_samples() const override { return bandwidth_ ? 100 : 0; }
    std::optional<double> in_flight_since() const override { return since_; }
    std::optional<double> delivered_rate(double, size_t) const override { return delivered_; }
    bool withdraw(UnitId u) override {
        if (!board_.move_to_compute(u)) return false;
        withdrawn.push_back(u);
        return true;
    }
    void append(UnitId u, int) override { appended.push_back(u); }

    std::optional<double> bandwidth_;
    std::optional<double> delivered_;
    std::optional<double> since_;
    std::vector<UnitId> withdrawn, appended;

  private:
    UnitBoard& board_;
};

class FakeCompute : public ComputeProgress {
  public:
    std::vector<ComputeObservation> observations(double since_s) const override {
        std::vector<ComputeObservation> out;
        for (const auto& o : obs)
            if (o.end_s >= since_s) out.push_back(o);
        return out;
    }
    std::vector<ComputeObservation> obs;
};

// 4 chunks x 6 layers; every unit costs 0.1 s to compute and 100 kB to stream.
plan::CostInstance costs() {
    plan::CostInstance c;
    c.shape = plan::ContextShape::uniform(4 * 256, 256, 6);
    c.levels = {"q5h"};
    c.decode_s_per_byte = {1e-9};
    for (size_t i = 0; i < c.shape.n_units(); ++i)
        c.units.push_back({0.1 * (1 + 0.2 * static_cast<double>(c.shape.unit(i).t)), {100'000}});
    return c;
}

struct Scene {
    explicit Scene(std::vector<int32_t> depths, double planned_bw = 1e6)
        : c(costs()), board(c.shape), stream(board), plan(plan::plan_from_depths(c, depths)) {
        board.apply(plan);
        controller = std::make_unique<Controller>(c, plan, planned_bw, board, stream, compute,
                                                  timeline, 0.0, ControllerSettings{});
    }
    // Compute lane running at `factor` times its predicted time over the last second.
    void compute_runs(double factor, double now) {
        for (int i = 0; i < 10; ++i) compute.obs.push_back({now - 0.1 * i, 0.1, 0.1 * factor});
    }
    plan::CostInstance c;
    UnitBoard board;
    FakeStream stream;
    FakeCompute compute;
    Timeline timeline;
    plan::Plan plan;
    std::unique_ptr<Controller> controller;
};

TEST(Controller, ASlowLinkMovesFrontierUnitsToTheComputeLaneCheapestFirst) {
    Scene s({6, 3, 0, 0});
    s.stream.bandwidth_ = 1e5;  // ten times slower than planned
    s.compute_runs(1.0, 1.0);
    s.controller->tick(1.0);
    const auto stats = s.controller->stats();
    // A tenfold imbalance lifts the per-period cap (ControllerSettings::max_migrations x 4).
    EXPECT_GT(stats.to_compute, ControllerSettings{}.max_migrations);
    EXPECT_LE(stats.to_compute, 4 * ControllerSettings{}.max_migrations);
    EXPECT_EQ(stats.to_stream, 0);
    ASSERT_FALSE(s.stream.withdrawn.empty());
    EXPECT_EQ(s.stream.withdrawn[0], (UnitId{1, 3}));  // right above chunk 1's computed layers
    for (UnitId u : s.stream.withdrawn) {
        EXPECT_EQ(s.board.state(u), UnitState::compute_planned);
        // Only units the compute lane can take without recomputing anything below them.
        EXPECT_TRUE(u.l == 0 || s.board.state({u.t, u.l - 1}) == UnitState::compute_planned);
    }
    EXPECT_EQ(s.timeline.count(EventKind::migration), s.stream.withdrawn.size());
}

TEST(Controller, ABusyCpuMovesTheDeepestComputeUnitsOfTheCostliestChunksToTheLink) {
    Scene s({6, 6, 6, 6});
    s.stream.bandwidth_ = 1e6;
    s.compute_runs(5.0, 1.0);  // a CPU hog: five times slower than profiled
    s.controller->tick(1.0);
    const auto stats = s.controller->stats();
    EXPECT_EQ(stats.to_stream, 4 * ControllerSettings{}.max_migrations);  // gross imbalance
    ASSERT_FALSE(s.stream.appended.empty());
    EXPECT_EQ(s.stream.appended[0], (UnitId{3, 5}));  // the costliest chunk's deepest layer
    for (UnitId u : s.stream.appended) EXPECT_EQ(s.board.state(u), UnitState::stream_planned);
    EXPECT_NEAR(stats.last_compute_drift, 5.0, 1e-9);
}

TEST(Controller, LeavesABalancedPlanAlone) {
    // Two chunks computed (12 units, ~1.3 s), two streamed (12 x 0.1 s at the planned rate).
    Scene s({6, 6, 0, 0});
    s.stream.bandwidth_ = 1e6;
    s.compute_runs(1.0, 1.0);
    s.controller->tick(1.0);
    EXPECT_EQ(s.controller->stats().to_compute + s.controller->stats().to_stream, 0);
}

// A bursty link: the last units' own rates say ten times slower than planned, but the link
// delivered at the planned rate over the window (bytes over wall time). No migration.
TEST(Controller, JudgesTheLinkByWhatItDeliveredNotByItsSlowestUnits) {
    Scene s({6, 6, 0, 0});
    s.stream.bandwidth_ = 1e5;
    s.stream.delivered_ = 1e6;
    s.compute_runs(1.0, 1.0);
    s.controller->tick(1.0);
    EXPECT_EQ(s.controller->stats().to_compute + s.controller->stats().to_stream, 0);
    // The same link without the delivered record moves units (the per-unit path).
    Scene t({6, 6, 0, 0});
    t.stream.bandwidth_ = 1e5;
    t.compute_runs(1.0, 1.0);
    t.controller->tick(1.0);
    EXPECT_GT(t.controller->stats().to_compute, 0);
}

TEST(Controller, WaitsForEvidenceAndNoticesAStalledTransfer) {
    Scene s({6, 6, 0, 0});
    s.stream.bandwidth_ = 1e6;
    s.compute_runs(1.0, 0.3);
    s.stream.since_ = 0.0;    // a unit requested at 0 s that has not arrived
    s.controller->tick(0.3);  // before the warm-up: no decision
    EXPECT_EQ(s.controller->stats().to_compute, 0);
    // Three seconds later the same unit is still in flight: the link is far slower than its
    // samples say, and the compute lane takes over frontier units.
    s.compute_runs(1.0, 3.0);
    s.controller->tick(3.0);
    EXPECT_GT(s.controller->stats().to_compute, 0);
}

}  // namespace
}  // namespace sparkv::runtime
