#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/error.h"
#include "runtime/unit_board.h"

namespace sparkv::runtime {
namespace {

plan::Plan half_and_half(const plan::ContextShape& shape) {
    return plan::Plan::from_prefixes(shape, {shape.n_layers, 2, 0}, 0);
}

TEST(UnitBoard, FollowsThePlanAndItsTransitions) {
    const auto shape = plan::ContextShape::uniform(300, 100, 4);
    UnitBoard board(shape);
    board.apply(half_and_half(shape));
    EXPECT_EQ(board.state({0, 3}), UnitState::compute_planned);
    EXPECT_EQ(board.state({1, 2}), UnitState::stream_planned);
    EXPECT_EQ(board.count(UnitState::compute_planned), 6u);
    EXPECT_EQ(board.stream_pending(), 6u);

    // Stream lane: one unit, request -> write -> ready.
    EXPECT_FALSE(board.begin_write({1, 2}));  // not requested yet
    EXPECT_TRUE(board.begin_stream({1, 2}));
    EXPECT_FALSE(board.begin_compute({1, 2}));  // the stream lane owns it
    EXPECT_TRUE(board.begin_write({1, 2}));
    board.finish_write({1, 2});
    EXPECT_TRUE(board.is_ready({1, 2}));
    EXPECT_FALSE(board.begin_stream({1, 2}));  // never twice

    // A failed unit goes back to the compute lane.
    EXPECT_TRUE(board.begin_stream({2, 0}));
    board.stream_failed({2, 0});
    EXPECT_EQ(board.state({2, 0}), UnitState::unassigned);
    const auto queue = board.compute_queue();
    EXPECT_NE(std::find(queue.begin(), queue.end(), UnitId{2, 0}), queue.end());
    EXPECT_TRUE(board.begin_compute({2, 0}));
    board.finish_compute({2, 0});
    EXPECT_THROW(board.finish_compute({2, 0}), Error);

    // Controller moves.
    EXPECT_TRUE(board.move_to_compute({2, 1}));
    EXPECT_FALSE(board.begin_stream({2, 1}));  // the fetch thread skips it
    EXPECT_TRUE(board.move_to_stream({2, 1}));
    EXPECT_FALSE(board.move_to_stream({0, 0}) && board.move_to_stream({0, 0}));
    EXPECT_THROW(board.state({3, 0}), Error);
}

TEST(UnitBoard, MeetInTheMiddleClaimsWholeChunks) {
    const auto shape = plan::ContextShape::uniform(300, 100, 3);
    UnitBoard board(shape);
    plan::Plan cake = plan::Plan::from_prefixes(shape, {3, 3, 3}, 0);
    cake.dispatch = plan::Dispatch::meet_in_the_middle;
    board.apply(cake);
    EXPECT_EQ(board.count(UnitState::unassigned), 9u);
    EXPECT_TRUE(board.begin_stream({2, 0}, true));  // claims chunk 2
    EXPECT_EQ(board.state({2, 2}), UnitState::stream_planned);
    EXPECT_TRUE(board.begin_compute({1, 0}));        // the compute lane took chunk 1 first
    EXPECT_FALSE(board.begin_stream({1, 0}, true));  // so the stream lane cannot
    EXPECT_FALSE(board.begin_stream({1, 1}, true));
}

// Many threads race for the same units: each unit is won by exactly one lane.
TEST(UnitBoard, EveryUnitHasExactlyOneWriterUnderContention) {
    const auto shape = plan::ContextShape::uniform(64 * 16, 64, 8);
    UnitBoard board(shape);
    plan::Plan cake = plan::Plan::from_prefixes(shape, std::vector<int32_t>(16, 8), 0);
    cake.dispatch = plan::Dispatch::meet_in_the_middle;
    board.apply(cake);
    std::vector<std::atomic<int>> writers(shape.n_units());
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([&, k] {
            for (size_t i = 0; i < shape.n_units(); ++i) {
                const UnitId u = shape.unit(k % 2 ? shape.n_units() - 1 - i : i);
                const bool mine = k < 2 ? board.begin_compute(u)
                                        : (board.begin_stream(u, true) && board.begin_write(u));
                if (!mine) continue;
                ++writers[shape.index(u)];
                k < 2 ? board.finish_compute(u) : board.finish_write(u);
            }
        });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < shape.n_units(); ++i) EXPECT_LE(writers[i].load(), 1) << i;
    // Whatever a stream thread claimed but did not write is handed back; the rest is ready.
    size_t ready = board.count(UnitState::ready);
    EXPECT_EQ(ready + board.stream_pending(), shape.n_units());
}

}  // namespace
}  // namespace sparkv::runtime
