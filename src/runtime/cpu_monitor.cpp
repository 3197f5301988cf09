#include "runtime/cpu_monitor.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/timer.h"

namespace sparkv::runtime {

CpuMonitor::CpuMonitor() {
    n_cpus_ = std::max(1u, std::thread::hardware_concurrency());
    last_ = read();
}

CpuMonitor::Reading CpuMonitor::read() {
    Reading r;
    r.wall_s = now_seconds();
    std::ifstream stat("/proc/stat");
    std::string line;
    if (std::getline(stat, line) && line.rfind("cpu ", 0) == 0) {
        std::istringstream fields(line.substr(4));
        // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
        uint64_t v[8] = {};
        for (auto& x : v) fields >> x;
        const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
        r.total_busy_s = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / ticks;
    }
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0)
        r.self_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                   static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
    return r;
}

double CpuMonitor::sample(double min_window_s) {
    const Reading now = read();
    const double wall = now.wall_s - last_.wall_s;
    // A zero-length window would divide 0 by 0: keep the last value until time has passed.
    if (wall <= 0 || wall < min_window_s || now.total_busy_s == 0) return last_value_;
    const double others = (now.total_busy_s - last_.total_busy_s) - (now.self_s - last_.self_s);
    last_value_ = std::clamp(1.0 - others / (wall * n_cpus_), 0.05, 1.0);
    last_ = now;
    return last_value_;
}

BackgroundLoad::BackgroundLoad(double duty) {
    pid_ = fork();
    if (pid_ < 0) fail("cannot start a background load ({})", std::strerror(errno));
    if (pid_ == 0) {
        const auto busy =
            std::chrono::microseconds(static_cast<int64_t>(std::clamp(duty, 0.0, 1.0) * 10'000));
        for (;;) {
            const auto start = std::chrono::steady_clock::now();
            while (std::chrono::steady_clock::now() - start < busy) {
            }
            std::this_thread::sleep_until(start + std::chrono::milliseconds(10));
        }
    }
}

BackgroundLoad::~BackgroundLoad() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

}  // namespace sparkv::runtime
