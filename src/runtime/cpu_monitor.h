// How much of the machine's CPU other processes are leaving us: the cost model's "CPU
// availability" feature. Reads /proc/stat (all CPUs) and this process's own CPU time
// (getrusage) at two instants: availability = 1 - (busy time of everyone else) / (CPUs x wall
// time). Linux only; elsewhere it reports 1.
#pragma once

#include <cstdint>

namespace sparkv::runtime {

class CpuMonitor {
  public:
    CpuMonitor();  // takes the first reading
    // Availability in (0, 1] since the last reading (or construction), and takes a new reading.
    // Windows shorter than min_window_s return the previous value (the counters tick at 100 Hz).
    double sample(double min_window_s = 0.05);
    int n_cpus() const { return n_cpus_; }

  private:
    struct Reading {
        double wall_s = 0;
        double total_busy_s = 0;  // all processes, all CPUs
        double self_s = 0;        // this process
    };
    static Reading read();

    int n_cpus_ = 1;
    Reading last_;
    double last_value_ = 1.0;
};

// Another process keeping one core busy for `duty` of every 10 ms until destroyed: the
// contention the profiler samples under and the fault benchmarks inject.
class BackgroundLoad {
  public:
    explicit BackgroundLoad(double duty = 1.0);
    ~BackgroundLoad();
    BackgroundLoad(const BackgroundLoad&) = delete;
    BackgroundLoad& operator=(const BackgroundLoad&) = delete;

  private:
    int pid_ = -1;
};

}  // namespace sparkv::runtime
