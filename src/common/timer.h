#pragma once

#include <chrono>

namespace sparkv {

// Seconds on a monotonic clock; differences are what matter.
inline double now_seconds() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace sparkv
