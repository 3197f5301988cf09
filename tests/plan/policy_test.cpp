#include "plan/policy.h"

#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "plan/search.h"
#include "plan/simulator.h"
#include "plan_instances.h"

namespace sparkv::plan {
namespace {

using testing::make_instance;

double ttft(const CostInstance& c, const Plan& p, double bandwidth) {
    return simulate(c, p, ConstantLink(bandwidth)).ttft_s;
}

// No schedule of any policy may break the dependency rules, on any instance.
TEST(Policies, NeverViolateTheDagOnRandomInstances) {
    std::mt19937 rng(42);
    for (int round = 0; round < 40; ++round) {
        const int32_t chunks = 1 + static_cast<int32_t>(rng() % 6);
        const int32_t layers = 2 + static_cast<int32_t>(rng() % 9);
        auto c = make_instance(chunks, layers, 0.01 + 0.1 * (rng() % 100) / 100.0,
                               1000 + rng() % 200'000, static_cast<uint32_t>(round));
        c.shape.chunk_tokens.back() = 1 + static_cast<int32_t>(rng() % 1024);
        const double bandwidth = 1e4 * (1 + rng() % 10'000);
        std::vector<uint32_t> stamps;
        for (uint32_t ms = 1 + rng() % 3; ms < 500; ms += 1 + rng() % 5) stamps.push_back(ms);
        const TraceLink realised(stamps, 0.5 + (rng() % 16), 0.0);
        PlannerSettings settings;
        settings.oracle_budget = 300;
        for (Policy policy : all_policies()) {
            const Plan p = make_plan(policy, c, bandwidth, settings, &realised);
            const auto errors = check_plan(c.shape, p, 1);
            EXPECT_TRUE(errors.empty()) << policy_name(policy) << ": " << errors.front();
            EXPECT_NO_THROW(simulate(c, p, realised)) << policy_name(policy);
            EXPECT_EQ(p.policy, policy_name(policy));
        }
    }
}

TEST(Policies, LocalWinsWhenTheLinkIsUselessAndSparkvFindsIt) {
    const auto c = make_instance(4, 6, 0.05, 2'000'000);
    const double bandwidth = 1e4;  // 200 s per unit
    const Plan local = plan_local(c);
    const Plan sparkv = make_plan(Policy::sparkv, c, bandwidth);
    EXPECT_EQ(sparkv.count(Lane::stream), 0u);
    EXPECT_NEAR(ttft(c, sparkv, bandwidth), ttft(c, local, bandwidth), 1e-9);
    // CacheGen computes chunks that fit no level, after the stream: here all of them.
    const Plan stream = make_plan(Policy::stream, c, bandwidth);
    EXPECT_EQ(stream.count(Lane::stream), 0u);
}

TEST(Policies, StreamingEverythingWinsOnAFastLinkAndSparkvFindsIt) {
    const auto c = make_instance(4, 6, 0.5, 10'000);
    const double bandwidth = 1e9;
    const Plan sparkv = make_plan(Policy::sparkv, c, bandwidth);
    const Plan stream = make_plan(Policy::stream, c, bandwidth);
    EXPECT_EQ(stream.count(Lane::compute), 0u);
    EXPECT_LE(ttft(c, sparkv, bandwidth), ttft(c, stream, bandwidth) * 1.0001);
}

// sparkv streams deepest layers first (each chunk's next layer stays pending for the controller)
// unless the question's tail after the last unit is a large part of a short request.
TEST(Policies, SparkvStreamsDeepestFirstUnlessTheQuestionTailDominates) {
    const auto is_down = [](const ContextShape& shape, const Plan& p) {
        return p.stream_order == stream_order(shape, p, StreamOrder::down);
    };
    const auto is_up = [](const ContextShape& shape, const Plan& p) {
        return p.stream_order == stream_order(shape, p, StreamOrder::up);
    };
    // Both lanes busy for seconds, a short question: deepest first.
    auto slow = make_instance(4, 6, 0.05, 500'000);
    const double balanced = 24 * 500'000 / slow.total_compute_s();
    const Plan both = make_plan(Policy::sparkv, slow, balanced);
    ASSERT_GT(both.count(Lane::stream), 0u);
    EXPECT_TRUE(is_down(slow.shape, both));
    // A link that delivers everything in a blink and question layers that cost as much as the
    // link: layer 0 first, so the question follows the units up the layers.
    auto fast = make_instance(4, 6, 0.5, 10'000);
    fast.query_layer_s = 0.01;
    const Plan all = make_plan(Policy::sparkv, fast, 1e7);
    ASSERT_EQ(all.count(Lane::compute), 0u);
    EXPECT_TRUE(is_up(fast.shape, all));
    PlannerSettings never;
    never.order_margin = 1;  // up would have to take no time at all
    EXPECT_TRUE(is_down(fast.shape, make_plan(Policy::sparkv, fast, 1e7, never)));
}

// A mixed plan is kept only when it is predicted clearly shorter than streaming everything; on
// the way from a slow link to a fast one there are links where it is not, and sparkv then streams
// everything.
TEST(Policies, SparkvStreamsEverythingUnlessMixingIsClearlyShorter) {
    const auto c = make_instance(4, 6, 0.05, 500'000);
    PlannerSettings no_margin;
    no_margin.mixed_margin = 0;
    const PlannerSettings defaults;
    int switched = 0;
    for (double bandwidth = 1e7; bandwidth < 1e10; bandwidth *= 1.25) {
        // Streaming everything, in the order sparkv would pick for it.
        const std::vector<int32_t> none(4, 0);
        const double down_s = ttft(c, plan_from_depths(c, none, StreamOrder::down), bandwidth);
        const double up_s = ttft(c, plan_from_depths(c, none, StreamOrder::up), bandwidth);
        const double stream_s = up_s < (1 - defaults.order_margin) * down_s ? up_s : down_s;
        const Plan mixed = make_plan(Policy::sparkv, c, bandwidth, no_margin);
        const Plan chosen = make_plan(Policy::sparkv, c, bandwidth, defaults);
        if (chosen.count(Lane::compute) > 0) {
            EXPECT_LE(chosen.predicted_ttft_s, (1 - defaults.mixed_margin) * stream_s + 1e-9)
                << "bandwidth " << bandwidth;
        }
        if (mixed.count(Lane::compute) > 0 && chosen.count(Lane::compute) == 0) {
            ++switched;
            EXPECT_GT(mixed.predicted_ttft_s, (1 - defaults.mixed_margin) * stream_s - 1e-9);
        }
    }
    EXPECT_GT(switched, 0);
}

// Layer 0 first strands what is still to stream (the compute lane cannot take a layer above a
// streamed one), so sparkv picks that order only when its gain at the estimate is at least
// `order_regret_weight` of what it would lose if the link delivered `order_risk` of the estimate
// (against planning for that slower link). Against a planner blind to that risk: where the two
// differ, the blind plan is stranded on the slower link by more than what the guarded plan gives
// up at the estimate; on the fastest links both stream layer 0 first.
TEST(Policies, SparkvStreamsLayerZeroFirstOnlyWhenASlowerLinkWouldNotStrandIt) {
    // Shaped like the reference model's 8,192-token context: 8 chunks x 30 layers, units of
    // 165 kB at q5h, 45-110 ms to compute, 7.4 ms per question layer.
    auto c = make_instance(8, 30, 0.045, 165'000);
    c.query_layer_s = 0.0074;
    const PlannerSettings defaults;
    PlannerSettings blind;
    blind.order_regret_weight = 0;  // any gain at the estimate flips the order
    int differ = 0, up_on_fast_links = 0;
    for (double bandwidth = 5e6; bandwidth < 1e10; bandwidth *= 1.25) {
        const Plan guarded = make_plan(Policy::sparkv, c, bandwidth, defaults);
        const Plan risky = make_plan(Policy::sparkv, c, bandwidth, blind);
        const double slower = defaults.order_risk * bandwidth;
        if (guarded.stream_order != risky.stream_order || guarded.lane != risky.lane) {
            ++differ;
            const double replanned =
                ttft(c, make_plan(Policy::sparkv, c, slower, defaults), slower);
            const double stranded = ttft(c, risky, slower) - replanned;
            const double given_up = ttft(c, guarded, bandwidth) - ttft(c, risky, bandwidth);
            EXPECT_GT(stranded, 0) << "bandwidth " << bandwidth;
            EXPECT_LT(given_up, stranded) << "bandwidth " << bandwidth;
        } else if (guarded.count(Lane::compute) == 0 &&
                   guarded.stream_order == stream_order(c.shape, guarded, StreamOrder::up)) {
            ++up_on_fast_links;
        }
    }
    EXPECT_GT(differ, 0);
    EXPECT_GT(up_on_fast_links, 0);
}

// Near-ties on the estimate go to the plan that is shortest on the hedge link, never to one
// outside the tolerance; with no tolerance the search's best stands.
TEST(DepthSearch, BreaksNearTiesByTheHedgeLink) {
    for (uint32_t seed = 1; seed <= 4; ++seed) {
        const auto c = make_instance(6, 10, 0.03, 200'000, seed);
        const double bandwidth = 60 * 200'000 / c.total_compute_s();
        const ConstantLink link(bandwidth), slower(bandwidth / 2);
        DepthSearch search(c, link, 300);
        search.start_from_split_points();
        search.improve();
        const Plan& best = search.best();
        const Plan none = search.best_hedged(slower, 0, 64);
        EXPECT_EQ(none.prefixes(c.shape), best.prefixes(c.shape));
        const Plan hedged = search.best_hedged(slower, 0.05, 64);
        EXPECT_LE(ttft(c, hedged, bandwidth), 1.05 * search.best_ttft() + 1e-9);
        EXPECT_NEAR(hedged.predicted_ttft_s, ttft(c, hedged, bandwidth), 1e-9);
        EXPECT_LE(ttft(c, hedged, bandwidth / 2), ttft(c, best, bandwidth / 2) + 1e-9);
    }
}

// Where both lanes matter, sparkv beats every baseline and the oracle bounds it.
TEST(Policies, SparkvBeatsTheBaselinesWhenBothLanesMatter) {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
        const auto c = make_instance(8, 12, 0.05, 500'000, seed);
        // Bandwidth at which streaming everything takes about as long as computing everything.
        const double bandwidth = 96 * 500'000 / c.total_compute_s();
        const ConstantLink link(bandwidth);
        const double local = ttft(c, make_plan(Policy::local, c, bandwidth), bandwidth);
        const double stream = ttft(c, make_plan(Policy::stream, c, bandwidth), bandwidth);
        const double cake = ttft(c, make_plan(Policy::cake, c, bandwidth), bandwidth);
        const double sparkv = ttft(c, make_plan(Policy::sparkv, c, bandwidth), bandwidth);
        const Plan oracle = make_plan(Policy::oracle, c, bandwidth, {}, &link);
        EXPECT_LT(sparkv, std::min({local, stream, cake})) << "seed " << seed;
        EXPECT_LT(sparkv, 0.8 * std::min(local, stream)) << "seed " << seed;
        EXPECT_LE(oracle.predicted_ttft_s, sparkv + 1e-9);
        EXPECT_LE(oracle.lower_bound_s, oracle.predicted_ttft_s + 1e-9);
        EXPECT_GT(oracle.lower_bound_s, 0.5 * oracle.predicted_ttft_s);  // the bound is not vacuous
    }
}

TEST(Policies, OracleIsExactOnSmallInstances) {
    // 2 chunks x 3 layers: the exhaustive search must beat or tie every other policy and every
    // depth vector searched by hand.
    for (uint32_t seed = 1; seed <= 4; ++seed) {
        const auto c = make_instance(2, 3, 0.1, 150'000, seed);
        const double bandwidth = 1.5e6;
        const ConstantLink link(bandwidth);
        const Plan oracle = make_plan(Policy::oracle, c, bandwidth, {}, &link);
        EXPECT_NEAR(oracle.predicted_ttft_s, simulate(c, oracle, link).ttft_s, 1e-12);
        for (int32_t k0 = 0; k0 <= 3; ++k0)
            for (int32_t k1 = 0; k1 <= 3; ++k1) {
                const Plan p = plan_from_depths(c, {k0, k1});
                EXPECT_LE(oracle.predicted_ttft_s, ttft(c, p, bandwidth) + 1e-12);
            }
        for (Policy policy : {Policy::local, Policy::stream, Policy::cake, Policy::sparkv})
            EXPECT_LE(oracle.predicted_ttft_s,
                      ttft(c, make_plan(policy, c, bandwidth), bandwidth) + 1e-12);
    }
}

TEST(Policies, CakeMeetsWhereTheLanesCross) {
    const auto c = make_instance(6, 4, 0.1, 100'000);
    const Plan cake = plan_cake(c);
    EXPECT_EQ(cake.dispatch, Dispatch::meet_in_the_middle);
    // A link that streams a chunk in the time the CPU computes one: about half each way.
    double chunk_compute = 0;
    for (int32_t l = 0; l < 4; ++l) chunk_compute += c.unit({0, l}).compute_s;
    const auto r = simulate(c, cake, ConstantLink(4 * 100'000 / chunk_compute));
    size_t computed = 0;
    for (const auto& u : r.units) computed += u.lane == Lane::compute;
    EXPECT_GE(computed, 8u);
    EXPECT_LE(computed, 16u);
}

TEST(Policies, StreamFitsLevelsToTheBudget) {
    auto c = make_instance(3, 4, 0.1, 400'000);
    c.levels = {"int8", "q5h", "q3h"};
    c.decode_s_per_byte = {1e-9, 1e-9, 1e-9};
    c.default_level = 1;
    for (auto& u : c.units) u = {0.1, {800'000, 400'000, 200'000}};
    // A chunk computes in 0.4 s. At 3 MB/s its q5h units need 0.53 s (over budget), q3h 0.27 s.
    const Plan p = plan_stream(c, 3e6);
    EXPECT_EQ(p.count(Lane::compute), 0u);
    for (size_t i = 0; i < c.units.size(); ++i) EXPECT_EQ(p.level[i], 2);
    // A level the user asked for is a floor: without adaptation q5h does not fit, so CacheGen
    // computes every chunk.
    EXPECT_EQ(plan_stream(c, 3e6, false).count(Lane::stream), 0u);
    // At 1.5 MB/s not even q3h fits: every chunk is computed, after the (empty) stream.
    EXPECT_EQ(plan_stream(c, 1.5e6).count(Lane::stream), 0u);
    EXPECT_EQ(p.dispatch, Dispatch::stream_then_compute);
    // Never a level above the default: int8 is not used even on a fast link.
    const Plan fast = plan_stream(c, 1e9);
    for (size_t i = 0; i < c.units.size(); ++i) EXPECT_EQ(fast.level[i], 1);
}

TEST(Policies, BadRequestsAreErrors) {
    auto c = make_instance(2, 2, 0.1, 1000);
    EXPECT_THROW(make_plan(Policy::oracle, c, 1e6), Error);  // needs the realised link
    EXPECT_THROW(make_plan(Policy::sparkv, c, 0), Error);
    EXPECT_THROW(policy_from_name("fastest"), Error);
    c.units.pop_back();
    EXPECT_THROW(make_plan(Policy::local, c, 1e6), Error);
}

}  // namespace
}  // namespace sparkv::plan
