#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sparkv {
namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
    for (int threads : {1, 2, 4}) {
        ThreadPool pool(threads);
        for (int64_t n : {0, 1, 3, 1000}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.parallel_for(n, [&](int64_t task, int thread) {
                EXPECT_GE(thread, 0);
                EXPECT_LT(thread, threads);
                hits[static_cast<size_t>(task)].fetch_add(1);
            });
            for (auto& h : hits) EXPECT_EQ(h.load(), 1);
        }
    }
}

TEST(ThreadPool, ManySmallJobsInARow) {
    ThreadPool pool(2);
    std::atomic<int64_t> sum{0};
    for (int job = 0; job < 2000; ++job)
        pool.parallel_for(4, [&](int64_t task, int) { sum.fetch_add(task); });
    EXPECT_EQ(sum.load(), 2000 * 6);
}

TEST(ThreadPool, RunOnAllCoversEveryPart) {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> parts(3);
    pool.run_on_all([&](int part, int n_parts) {
        EXPECT_EQ(n_parts, 3);
        parts[static_cast<size_t>(part)].fetch_add(1);
    });
    for (auto& p : parts) EXPECT_EQ(p.load(), 1);
}

TEST(ThreadPool, ConcurrentCallersAreSerialised) {
    ThreadPool pool(2);
    std::atomic<int64_t> total{0};
    auto caller = [&] {
        for (int job = 0; job < 200; ++job)
            pool.parallel_for(8, [&](int64_t, int) { total.fetch_add(1); });
    };
    std::thread a(caller), b(caller);
    a.join();
    b.join();
    EXPECT_EQ(total.load(), 2 * 200 * 8);
}

}  // namespace
}  // namespace sparkv
