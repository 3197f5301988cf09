#include "common/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SPARKV_CPU_RELAX() _mm_pause()
#else
#define SPARKV_CPU_RELAX() ((void)0)
#endif

namespace sparkv {

namespace {
int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

ThreadPool::ThreadPool(int n_threads, int spin_us)
    : n_threads_(std::max(1, n_threads)),
      spin_ns_(int64_t{spin_us < 0 ? kDefaultSpinUs : spin_us} * 1000) {
    workers_.reserve(n_threads_ - 1);
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_.store(true, std::memory_order_release);
        generation_.store(last_generation_ + 1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
}

bool ThreadPool::keep_spinning(int64_t start, int iteration) const {
    // Reading the clock costs more than a pause; look at it every 64 iterations only.
    if (spin_ns_ == 0) return false;
    return (iteration & 63) != 0 || steady_ns() - start < spin_ns_;
}

int ThreadPool::default_threads() {
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

void ThreadPool::run_tasks(uint32_t generation, int thread) {
    for (;;) {
        // Sequentially consistent: if job_tasks_ already holds a later job's count, the caller
        // closed this job's ticket before storing it, so the compare-exchange below fails.
        uint64_t ticket = ticket_.load(std::memory_order_seq_cst);
        if (static_cast<uint32_t>(ticket >> 32) != generation) return;
        const int64_t task = static_cast<int64_t>(ticket & 0xffffffffu);
        const int64_t n_tasks = job_tasks_.load(std::memory_order_seq_cst);
        if (task >= n_tasks) return;
        if (!ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_seq_cst)) continue;
        // Holding an unfinished task of this job, the caller is still waiting: job_ is ours.
        (*job_.load(std::memory_order_acquire))(task, thread);
        if (int64_t{done_tasks_.fetch_add(1, std::memory_order_acq_rel)} + 1 == n_tasks) {
            // Under the mutex: a caller that found the job unfinished is asleep by now.
            std::lock_guard lock(done_mutex_);
            done_wake_.notify_all();  // no syscall unless the caller went to sleep
        }
    }
}

void ThreadPool::worker_loop(int thread) {
    uint32_t seen = 0;
    for (;;) {
        uint32_t gen = generation_.load(std::memory_order_acquire);
        const int64_t spin_start = gen == seen ? steady_ns() : 0;
        for (int spin = 1; gen == seen && keep_spinning(spin_start, spin); ++spin) {
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
        run_tasks(gen, thread);
    }
}

void ThreadPool::parallel_for(int64_t n_tasks,
                              const std::function<void(int64_t task, int thread)>& fn) {
    if (n_tasks <= 0) return;
    if (n_threads_ == 1 || n_tasks == 1) {
        for (int64_t task = 0; task < n_tasks; ++task) fn(task, 0);
        return;
    }
    constexpr int64_t kMaxTasks = int64_t{1} << 31;  // task indices live in 32 bits of ticket_
    if (n_tasks > kMaxTasks) {
        for (int64_t first = 0; first < n_tasks; first += kMaxTasks) {
            const std::function<void(int64_t, int)> slice = [&](int64_t task, int thread) {
                fn(first + task, thread);
            };
            parallel_for(std::min(kMaxTasks, n_tasks - first), slice);
        }
        return;
    }
    std::lock_guard caller(caller_mutex_);
    const uint32_t gen = ++last_generation_;
    // Close the previous job's ticket before its count changes: a worker that read that ticket
    // and is about to compare-exchange it must fail, or it would take a task of this job under
    // the old generation (run it twice, count it twice). The closed ticket's index is past any
    // job's end.
    ticket_.store((static_cast<uint64_t>(gen) << 32) | 0xffffffffu, std::memory_order_seq_cst);
    job_.store(&fn, std::memory_order_seq_cst);
    job_tasks_.store(n_tasks, std::memory_order_seq_cst);
    done_tasks_.store(0, std::memory_order_relaxed);
    ticket_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
    {
        // Taking the lock orders the publish against a worker that is about to sleep.
        std::lock_guard lock(mutex_);
        generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    run_tasks(gen, 0);
    // Wait for tasks that workers took: spin briefly, then sleep.
    const auto all_done = [&] {
        return int64_t{done_tasks_.load(std::memory_order_acquire)} == n_tasks;
    };
    const int64_t spin_start = steady_ns();
    for (int spin = 1; !all_done(); ++spin) {
        if (keep_spinning(spin_start, spin)) {
            SPARKV_CPU_RELAX();
        } else {
            std::unique_lock lock(done_mutex_);
            done_wake_.wait(lock, all_done);
        }
    }
}

void ThreadPool::run_on_all(const std::function<void(int thread, int n_threads)>& fn) {
    const int n = n_threads_;
    parallel_for(n, [&](int64_t task, int) { fn(static_cast<int>(task), n); });
}

}  // namespace sparkv
