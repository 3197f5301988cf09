// A fork-join pool for the compute kernels. The calling thread takes part in every job, workers
// spin briefly before sleeping so that the hundreds of small parallel regions of one forward pass
// do not each pay a futex wake-up. The caller waits only for tasks that were handed out, never
// for workers to check in: on an oversubscribed machine a worker that is not scheduled simply
// takes no task, instead of stalling the job until the OS runs it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sparkv {

class ThreadPool {
  public:
    // Spin budget of an idle worker (and of a caller waiting for workers) before it sleeps:
    // about what 20,000 pause instructions took on the machines the kernels were tuned on.
    static constexpr int kDefaultSpinUs = 500;

    // n_threads counts the calling thread: ThreadPool(1) runs everything inline. spin_us < 0
    // means kDefaultSpinUs; 0 sleeps at once (for a pool sharing its cores with other busy
    // threads, which a spinning worker would otherwise hold off the CPU).
    explicit ThreadPool(int n_threads, int spin_us = -1);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    int spin_us() const { return static_cast<int>(spin_ns_ / 1000); }

    // Runs fn(task, thread) for every task in [0, n_tasks), handing tasks out dynamically.
    // Returns when all tasks are done. Callers from several threads are serialised; fn must not
    // call back into the pool.
    void parallel_for(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

    // Runs fn(part, n_parts) for every part in [0, size()): a static split into one part per
    // thread, for kernels that partition their work themselves.
    void run_on_all(const std::function<void(int thread, int n_threads)>& fn);

    // Default thread count: the machine's hardware threads.
    static int default_threads();

  private:
    void worker_loop(int thread);
    // Takes and runs tasks of job `generation` until none is left or a newer job replaced it.
    void run_tasks(uint32_t generation, int thread);

    // True while a spin that started at `start` (steady clock, ns) is within its budget.
    bool keep_spinning(int64_t start, int iteration) const;

    const int n_threads_;
    const int64_t spin_ns_;
    std::vector<std::thread> workers_;

    // The current job. ticket_ holds (generation << 32) | next task index: a task is taken by a
    // compare-exchange that also checks the generation, so a worker that wakes up late can never
    // take a task of a later job with the function of an earlier one. A new job first closes the
    // old ticket (index 0xffffffff under the new generation), then sets job_ and job_tasks_,
    // then opens its own: a stale compare-exchange can never succeed against a changed count.
    std::atomic<const std::function<void(int64_t, int)>*> job_{nullptr};
    std::atomic<int64_t> job_tasks_{0};
    std::atomic<uint64_t> ticket_{0};
    // Tasks of the current job finished. A caller that stops spinning sleeps on done_wake_; the
    // last task's worker takes done_mutex_ before it notifies. (The hangs once blamed on
    // std::atomic::wait losing wake-ups match the stale-ticket race above: one caught in gdb had
    // counted 17 tasks of a 16-task job, so the count never equalled the job's size.)
    std::atomic<uint32_t> done_tasks_{0};
    std::mutex done_mutex_;
    std::condition_variable done_wake_;
    uint32_t last_generation_ = 0;  // guarded by caller_mutex_
    std::atomic<uint32_t> generation_{0};
    std::atomic<bool> stop_{false};

    std::mutex caller_mutex_;  // one job at a time
    std::mutex mutex_;
    std::condition_variable wake_;
};

}  // namespace sparkv
