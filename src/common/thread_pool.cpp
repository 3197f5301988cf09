#include "common/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SPARKV_CPU_RELAX() _mm_pause()
#else
#define SPARKV_CPU_RELAX() ((void)0)
#endif

namespace sparkv {

namespace {
// About 50-100 microseconds of spinning: longer than the gap between two kernels of one layer,
// much shorter than the gap between requests.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    workers_.reserve(n_threads_ - 1);
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_.store(true, std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
}

int ThreadPool::default_threads() {
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

void ThreadPool::run_job(int thread) {
    const auto& fn = *job_;
    for (;;) {
        const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
        if (task >= job_tasks_) break;
        fn(task, thread);
    }
}

void ThreadPool::worker_loop(int thread) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
            SPARKV_CPU_RELAX();
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load(std::memory_order_acquire)) return;
        run_job(thread);
        // The last worker wakes the caller if it stopped spinning (no syscall when nobody waits).
        if (pending_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_workers_.notify_all();
    }
}

void ThreadPool::parallel_for(int64_t n_tasks,
                              const std::function<void(int64_t task, int thread)>& fn) {
    if (n_tasks <= 0) return;
    if (n_threads_ == 1 || n_tasks == 1) {
        for (int64_t task = 0; task < n_tasks; ++task) fn(task, 0);
        return;
    }
    std::lock_guard caller(caller_mutex_);
    job_ = &fn;
    job_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    pending_workers_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
        // Taking the lock orders the publish against a worker that is about to sleep.
        std::lock_guard lock(mutex_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    run_job(0);
    // Spin briefly (workers usually finish within microseconds of the caller), then sleep: on
    // an oversubscribed machine a preempted worker needs the core more than a spinning caller.
    int spin = 0;
    for (int pending = pending_workers_.load(std::memory_order_acquire); pending != 0;
         pending = pending_workers_.load(std::memory_order_acquire)) {
        if (++spin < kSpinIterations) {
            SPARKV_CPU_RELAX();
        } else {
            pending_workers_.wait(pending, std::memory_order_acquire);
        }
    }
    job_ = nullptr;
}

void ThreadPool::run_on_all(const std::function<void(int thread, int n_threads)>& fn) {
    const int n = n_threads_;
    parallel_for(n, [&](int64_t task, int) { fn(static_cast<int>(task), n); });
}

}  // namespace sparkv
