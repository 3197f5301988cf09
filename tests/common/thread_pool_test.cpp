#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

// No spinning: whenever a worker still runs a task when the caller is done with its own, the
// caller sleeps and must be woken. A lost wake-up hangs here (the test's timeout fails it), as
// it once hung `sparkv eval`.
TEST(ThreadPool, ACallerThatSleepsIsAlwaysWokenWhenTheLastTaskEnds) {
    ThreadPool pool(2, /*spin_us=*/0);
    std::atomic<int64_t> sum{0};
    std::atomic<int> worker_tasks{0};
    for (int job = 0; job < 5000; ++job)
        pool.parallel_for(2, [&](int64_t task, int thread) {
            // Long enough (tens of microseconds) for the woken worker to take the second task,
            // and longer on the worker so that the caller usually waits for it.
            std::atomic<int> spin{0};
            const int n = thread == 0 ? 2000 : 6000;
            while (spin.fetch_add(1, std::memory_order_relaxed) < n) {
            }
            if (thread != 0) worker_tasks.fetch_add(1);
            sum.fetch_add(task + 1);
        });
    EXPECT_EQ(sum.load(), 5000 * 3);
    EXPECT_GT(worker_tasks.load(), 0);  // the sleeping path was taken at all
}

// A worker that read the last ticket of a finished job and was preempted before its
// compare-exchange must not take a task once the caller publishes the next job: that ran one
// task of the next job twice and counted it twice, so the caller either returned while a task
// still ran or waited forever (`sparkv eval` and `codec-bench` hung on it). More threads than
// cores, and jobs of alternating sizes so that a stale index is a valid task of the next job.
TEST(ThreadPool, AStaleWorkerNeverTakesATaskOfTheNextJob) {
    std::atomic<bool> finished{false};
    std::thread watchdog([&] {
        for (int i = 0; i < 400 && !finished.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!finished.load()) {
            std::fprintf(stderr, "ThreadPool: a job never finished (hung for 20 s)\n");
            std::_Exit(1);
        }
    });
    ThreadPool pool(6);
    std::vector<std::atomic<int>> runs(16);
    std::atomic<int> in_flight{0};
    int64_t duplicates = 0, missing = 0, early_returns = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    for (int job = 0; std::chrono::steady_clock::now() < deadline; ++job) {
        const int64_t n = job % 2 == 0 ? 2 : 16;
        for (auto& r : runs) r.store(0, std::memory_order_relaxed);
        pool.parallel_for(n, [&](int64_t task, int) {
            in_flight.fetch_add(1);
            runs[static_cast<size_t>(task)].fetch_add(1);
            in_flight.fetch_sub(1);
        });
        early_returns += in_flight.load() != 0;
        for (int64_t t = 0; t < n; ++t) {
            const int r = runs[static_cast<size_t>(t)].load();
            duplicates += r > 1;
            missing += r == 0;
        }
    }
    finished.store(true);
    watchdog.join();
    EXPECT_EQ(duplicates, 0);
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(early_returns, 0);
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
