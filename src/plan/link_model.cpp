#include "plan/link_model.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sparkv::plan {

ConstantLink::ConstantLink(double bytes_per_second) : rate_(bytes_per_second) {
    if (!(rate_ > 0) || !std::isfinite(rate_))
        fail("link model: rate must be positive, got {} B/s", rate_);
}

double ConstantLink::arrival(double start, uint64_t bytes) const {
    return start + static_cast<double>(bytes) / rate_;
}

TraceLink::TraceLink(std::vector<uint32_t> timestamps_ms, double scale, double offset_s)
    : stamps_(std::move(timestamps_ms)),
      bytes_per_opportunity_(1500.0 * scale),
      offset_ms_(offset_s * 1000) {
    if (stamps_.empty() || stamps_.back() == 0 || !std::is_sorted(stamps_.begin(), stamps_.end()))
        fail("link model: a trace needs non-decreasing timestamps ending after 0 ms");
    if (!(scale > 0)) fail("link model: trace scale must be positive, got {}", scale);
    if (offset_s < 0) fail("link model: negative trace offset {}", offset_s);
}

uint64_t TraceLink::opportunities_before(int64_t t_ms) const {
    const int64_t period = stamps_.back();
    const int64_t loops = t_ms / period;
    const auto within = static_cast<uint32_t>(t_ms - loops * period);
    const auto in_loop = static_cast<uint64_t>(
        std::lower_bound(stamps_.begin(), stamps_.end(), within) - stamps_.begin());
    return static_cast<uint64_t>(loops) * stamps_.size() + in_loop;
}

double TraceLink::opportunity_time_ms(uint64_t index) const {
    const uint64_t n = stamps_.size();
    return static_cast<double>(index / n) * stamps_.back() + stamps_[index % n];
}

double TraceLink::arrival(double start, uint64_t bytes) const {
    const double start_ms = offset_ms_ + std::max(0.0, start) * 1000;
    if (bytes == 0) return start;
    // The opportunity stamped with the millisecond `start` falls in is still usable.
    const uint64_t first = opportunities_before(static_cast<int64_t>(std::floor(start_ms)));
    const auto needed = static_cast<uint64_t>(
        std::ceil(static_cast<double>(bytes) / bytes_per_opportunity_ - 1e-9));
    const double last_ms = opportunity_time_ms(first + std::max<uint64_t>(needed, 1) - 1);
    // A packet stamped t ms has left by the end of that millisecond.
    return std::max(start, (last_ms + 1 - offset_ms_) / 1000);
}

double TraceLink::mean_rate(double from, double to) const {
    if (!(to > from)) return 0;
    const auto a = static_cast<int64_t>(std::floor(offset_ms_ + from * 1000));
    const auto b = static_cast<int64_t>(std::floor(offset_ms_ + to * 1000));
    const auto packets = static_cast<double>(opportunities_before(b) - opportunities_before(a));
    return packets * bytes_per_opportunity_ / (to - from);
}

}  // namespace sparkv::plan
