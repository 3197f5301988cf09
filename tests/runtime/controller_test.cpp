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
    std::optional<double> idle_since() const override { return idle; }
    std::vector<ComputeObservation> obs;
    std::optional<double> idle;
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

// A plan that streams everything, layer by layer: every chunk's first layer arrived at once,
// then the link slowed down. The compute lane can still help: it reruns the delivered layers over
// their streamed KV (pass-throughs) to reach the units still queued, and the controller prices
// that rerun in (before, it found no unit "right above the computed layers" and moved nothing).
TEST(Controller, ASlowLinkMovesUnitsAboveLayersItAlreadyDelivered) {
    Scene s({0, 0, 0, 0});
    for (int32_t t = 0; t < 4; ++t) {
        ASSERT_TRUE(s.board.begin_stream({t, 0}, false));
        ASSERT_TRUE(s.board.begin_write({t, 0}));
        s.board.finish_write({t, 0});
    }
    s.stream.bandwidth_ = 1e5;  // ten times slower than planned
    s.compute_runs(1.0, 1.0);
    s.controller->tick(1.0);
    ASSERT_FALSE(s.stream.withdrawn.empty());
    // Cheapest first: chunk 0 costs least to compute, its first layer included.
    EXPECT_EQ(s.stream.withdrawn[0], (UnitId{0, 1}));
    for (UnitId u : s.stream.withdrawn) {
        EXPECT_GE(u.l, 1);  // layer 0 is delivered: never taken back
        EXPECT_EQ(s.board.state(u), UnitState::compute_planned);
        const UnitState below = s.board.state({u.t, u.l - 1});
        EXPECT_TRUE(below == UnitState::compute_planned || (u.l == 1 && below == UnitState::ready));
    }
    // The pass-throughs count as compute work: with the compute lane at its predicted speed the
    // controller stops short of moving everything (24 units to compute, 20 queued on the link).
    EXPECT_LT(s.stream.withdrawn.size(), 20u);
    // The link is ten times slower than planned, so the lanes still differ a lot: another tick
    // moves more, each chunk's next unit without any further pass-through.
    const size_t first = s.stream.withdrawn.size();
    s.controller->tick(1.1);
    EXPECT_GT(s.stream.withdrawn.size(), first);
}

// The same plan on a link that is slower than planned but still much faster per unit than the
// CPU (25 ms a unit against 100 ms to compute one): rerunning delivered layers would not pay.
TEST(Controller, NoRerunOfDeliveredLayersWhereTheLinkOutrunsTheCpu) {
    Scene s({0, 0, 0, 0}, 1e7);
    for (int32_t t = 0; t < 4; ++t) {
        ASSERT_TRUE(s.board.begin_stream({t, 0}, false));
        ASSERT_TRUE(s.board.begin_write({t, 0}));
        s.board.finish_write({t, 0});
    }
    s.stream.bandwidth_ = 4e6;
    s.compute_runs(1.0, 1.0);
    s.controller->tick(1.0);
    EXPECT_TRUE(s.stream.withdrawn.empty());
}

// Chunk 1 streams from layer 2 up while chunks 2 and 3 compute all their layers: chunk 2's layer
// 2 waits for chunk 1's, still queued on the link. Chunks 0-2 have their first two layers. The
// link is as slow as it takes for both lanes to have about as much left (no rebalancing).
struct BlockedScene : Scene {
    explicit BlockedScene(std::vector<int32_t> depths) : Scene(std::move(depths)) {
        stream.bandwidth_ = 2.7e5;
        stream.delivered_ = 2.7e5;
        compute_runs(1.0, 1.0);
        for (int32_t t = 0; t < 3; ++t)
            for (int32_t l = 0; l < (t == 0 ? 6 : 2); ++l) {
                if (!board.begin_compute({t, l})) continue;
                board.finish_compute({t, l});
            }
    }
    size_t idle_takeovers() const {
        size_t n = 0;
        for (const auto& e : timeline.events())
            if (e.kind == EventKind::migration && e.note.find("idle") != std::string::npos) ++n;
        return n;
    }
};

TEST(Controller, AnIdleComputeLaneTakesOverTheQueuedUnitItWaitsFor) {
    BlockedScene s({6, 2, 6, 6});
    s.compute.idle = 0.95;  // idle for 50 ms: less than the unit would take to compute
    s.controller->tick(1.0);
    EXPECT_EQ(s.idle_takeovers(), 0u);
    EXPECT_TRUE(s.stream.withdrawn.empty());
    s.compute.idle = 0.5;  // idle for 0.5 s: computing it would have been done by now
    s.controller->tick(1.0);
    ASSERT_GE(s.stream.withdrawn.size(), 3u);
    // Chunk 1's next layers, in order, each needed by chunk 2; never the last layer (it blocks
    // nobody: the last layer's units depend on nothing of earlier chunks).
    EXPECT_EQ(s.stream.withdrawn[0], (UnitId{1, 2}));
    EXPECT_EQ(s.stream.withdrawn[1], (UnitId{1, 3}));
    EXPECT_EQ(s.stream.withdrawn[2], (UnitId{1, 4}));
    EXPECT_EQ(s.idle_takeovers(), 3u);
    EXPECT_EQ(s.board.state({1, 5}), UnitState::stream_planned);
}

TEST(Controller, AnIdleComputeLaneTakesNothingNoPlannedWorkNeeds) {
    BlockedScene s({6, 2, 2, 0});  // chunk 2 streams from layer 2 too: nobody waits for chunk 1
    s.compute.idle = 0.0;
    s.controller->tick(1.0);
    EXPECT_EQ(s.idle_takeovers(), 0u);
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
