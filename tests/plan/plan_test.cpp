#include "plan/plan.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "plan/link_model.h"
#include "plan/simulator.h"
#include "plan_instances.h"

namespace sparkv::plan {
namespace {

bool mentions(const std::vector<std::string>& errors, const std::string& text) {
    for (const auto& e : errors)
        if (e.find(text) != std::string::npos) return true;
    return false;
}

TEST(Plan, PrefixPlansAreValid) {
    const auto shape = ContextShape::uniform(2500, 1024, 4);
    EXPECT_EQ(shape.n_chunks(), 3);
    EXPECT_EQ(shape.chunk_tokens[2], 452);
    EXPECT_EQ(shape.attention_span(1), 2048);
    const Plan p = Plan::from_prefixes(shape, {4, 2, 0}, 0);
    EXPECT_TRUE(check_plan(shape, p, 1).empty());
    EXPECT_EQ(p.count(Lane::compute), 6u);
    EXPECT_EQ(p.prefixes(shape), (std::vector<int32_t>{4, 2, 0}));
}

TEST(Plan, CheckNamesEveryBrokenRule) {
    const auto shape = ContextShape::uniform(2048, 1024, 3);
    Plan p = Plan::from_prefixes(shape, {3, 3}, 0);

    Plan gap = p;  // (0, 1) streamed under a computed (0, 2)
    gap.lane[shape.index({0, 1})] = Lane::stream;
    gap.level[shape.index({0, 1})] = 0;
    gap.compute_order.erase(gap.compute_order.begin() + 1);
    gap.stream_order.push_back({0, 1});
    EXPECT_TRUE(mentions(check_plan(shape, gap, 1), "streaming yields no hidden state"));

    Plan token = p;  // chunk 1 layer 0 before chunk 0 layer 0
    std::swap(token.compute_order[0], token.compute_order[3]);
    EXPECT_TRUE(mentions(check_plan(shape, token, 1), "whose KV it attends to"));

    Plan twice = p;
    twice.compute_order.push_back({0, 0});
    EXPECT_TRUE(mentions(check_plan(shape, twice, 1), "twice"));

    Plan missing = p;
    missing.compute_order.pop_back();
    EXPECT_TRUE(mentions(check_plan(shape, missing, 1), "missing from the compute order"));

    Plan no_level = Plan::from_prefixes(shape, {3, 0}, 0);
    no_level.level[shape.index({1, 2})] = 5;
    EXPECT_TRUE(mentions(check_plan(shape, no_level, 1), "without a valid level"));

    // The last layer only projects K/V: no token rule for it.
    Plan last = p;
    std::swap(last.compute_order[2], last.compute_order[5]);  // (1, 2) before (0, 2)
    EXPECT_FALSE(mentions(check_plan(shape, last, 1), "attends to"));
}

TEST(LinkModel, ConstantAndTraceArrivals) {
    const ConstantLink constant(1e6);
    EXPECT_DOUBLE_EQ(constant.arrival(2.0, 500'000), 2.5);
    // One packet per millisecond, looping every 10 ms: 1.5 MB/s.
    std::vector<uint32_t> stamps;
    for (uint32_t ms = 1; ms <= 10; ++ms) stamps.push_back(ms);
    const TraceLink trace(stamps, 1.0, 0.0);
    EXPECT_NEAR(trace.mean_rate(0, 1.0), 1.5e6, 1.5e4);
    // 15 packets from t=0: opportunities at 1..10 ms, then 11..15 -> the last leaves during 15 ms.
    EXPECT_NEAR(trace.arrival(0, 15 * 1500), 0.016, 1e-9);
    // Scale 2 doubles what each opportunity carries.
    const TraceLink doubled(stamps, 2.0, 0.0);
    EXPECT_NEAR(doubled.arrival(0, 15 * 1500), 0.009, 1e-9);
    EXPECT_THROW(TraceLink({}, 1.0, 0.0), Error);
    EXPECT_THROW(ConstantLink(0), Error);
}

TEST(Simulator, LocalPlanTakesTheSumOfComputeCosts) {
    auto c = testing::make_instance(2, 3, 0.1, 100'000);
    const Plan p = Plan::from_prefixes(c.shape, {3, 3}, 0);
    const auto r = simulate(c, p, ConstantLink(1e6));
    // The question's layers run as soon as each context layer is complete, between units.
    EXPECT_NEAR(r.ttft_s, c.total_compute_s() + 3 * c.query_layer_s + c.finish_s, 1e-9);
    EXPECT_LE(r.loaded_s, r.ttft_s - c.query_layer_s - c.finish_s + 1e-9);
    EXPECT_GE(r.loaded_s, c.total_compute_s());
    EXPECT_EQ(r.bytes, 0u);
}

TEST(Simulator, StreamedUnitsArriveInOrderAndFeedTheComputeLane) {
    auto c = testing::make_instance(2, 2, 0.1, 100'000);
    c.decode_slowdown = 0;
    c.query_layer_s = 0;
    // Chunk 0 streamed, chunk 1 computed: (1, 0) waits for (0, 0) to arrive and decode.
    const Plan p = Plan::from_prefixes(c.shape, {0, 2}, 0);
    const auto r = simulate(c, p, ConstantLink(1e6));
    const double arrive00 =
        c.request_latency_s + static_cast<double>(c.unit({0, 0}).bytes[0]) / 1e6;
    const double ready00 = arrive00 + c.decode_s({0, 0}, 0);
    EXPECT_NEAR(r.units[c.shape.index({0, 0})].ready_s, ready00, 1e-9);
    EXPECT_NEAR(r.units[c.shape.index({1, 0})].start_s, ready00, 1e-9);
    // The last layer has no token rule: (1, 1) follows (1, 0) at once.
    EXPECT_NEAR(r.units[c.shape.index({1, 1})].start_s, r.units[c.shape.index({1, 0})].ready_s,
                1e-9);
}

TEST(Simulator, SecondConnectionOverlapsRoundTripsWithBodies) {
    auto c = testing::make_instance(2, 5, 0.1, 100'000);
    c.request_latency_s = 0.05;
    const Plan p = Plan::from_prefixes(c.shape, {0, 0}, 0);  // all 10 units streamed
    const ConstantLink link(1e6);                            // 0.1 s per body
    const double one = simulate(c, p, link).loaded_s;
    c.connections = 2;
    const auto two = simulate(c, p, link);
    double bodies = 0;
    for (const auto& u : c.units) bodies += static_cast<double>(u.bytes[0]) / 1e6;
    // One connection waits a round trip before every body; two wait only before the first,
    // since every later round trip (0.05 s) is shorter than the body before it.
    EXPECT_GT(one, bodies + 10 * c.request_latency_s - 1e-9);
    EXPECT_LT(two.loaded_s, bodies + c.request_latency_s + c.decode_s({1, 4}, 0) + 1e-9);
    EXPECT_GE(two.loaded_s, bodies + c.request_latency_s - 1e-9);
    c.connections = 9;
    EXPECT_THROW(c.validate(), Error);
}

TEST(Simulator, RejectsInvalidPlans) {
    auto c = testing::make_instance(2, 2, 0.1, 1000);
    Plan p = Plan::from_prefixes(c.shape, {2, 2}, 0);
    std::swap(p.compute_order[0], p.compute_order[2]);
    EXPECT_THROW(simulate(c, p, ConstantLink(1e6)), Error);
}

}  // namespace
}  // namespace sparkv::plan
