#include "net/bandwidth_estimator.h"

#include <algorithm>
#include <vector>

#include "common/error.h"

namespace sparkv {

double UnitTiming::throughput_bytes_per_s() const {
    // A body is paced from the moment its headers leave, so the transfer time starts there; the
    // floor keeps a body that arrived in one read from dividing by zero.
    if (link_bytes > 0 && link_start_s > 0)
        return static_cast<double>(link_bytes) / std::max(last_byte_s - link_start_s, 1e-6);
    const double seconds = std::max(last_byte_s - headers_s, 1e-6);
    return static_cast<double>(bytes) / seconds;
}

BandwidthEstimator::BandwidthEstimator(BandwidthEstimatorConfig config) : config_(config) {
    if (config_.window == 0) fail("bandwidth estimator: window must be at least 1");
}

namespace {
constexpr size_t kRecentUnits = 256;
}

void BandwidthEstimator::add(const UnitTiming& timing) {
    std::lock_guard lock(mutex_);
    recent_.push_back(timing);
    if (recent_.size() > kRecentUnits) recent_.pop_front();
    latencies_.push_back(std::max(timing.latency_s(), 0.0));
    if (latencies_.size() > config_.window) latencies_.pop_front();
    if (timing.bytes < config_.min_bytes || timing.link_start_s < 0) return;
    throughputs_.push_back(timing.throughput_bytes_per_s());
    if (throughputs_.size() > config_.window) throughputs_.pop_front();
}

std::optional<double> BandwidthEstimator::bytes_per_second() const {
    std::lock_guard lock(mutex_);
    if (throughputs_.empty()) return std::nullopt;
    double inverse_sum = 0;
    for (double x : throughputs_) inverse_sum += 1.0 / x;
    return static_cast<double>(throughputs_.size()) / inverse_sum;
}

std::optional<double> BandwidthEstimator::latency_seconds() const {
    std::lock_guard lock(mutex_);
    if (latencies_.empty()) return std::nullopt;
    double sum = 0;
    for (double x : latencies_) sum += x;
    return sum / static_cast<double>(latencies_.size());
}

std::optional<double> BandwidthEstimator::predict_seconds(uint64_t bytes) const {
    const auto bandwidth = bytes_per_second();
    if (!bandwidth) return std::nullopt;
    return latency_seconds().value_or(0.0) + static_cast<double>(bytes) / *bandwidth;
}

size_t BandwidthEstimator::samples() const {
    std::lock_guard lock(mutex_);
    return throughputs_.size();
}

std::optional<double> BandwidthEstimator::delivered_bytes_per_second(double now_s, double window_s,
                                                                     size_t min_units) const {
    std::lock_guard lock(mutex_);
    size_t units = 0;
    uint64_t bytes = 0;
    double first_request = now_s, last_byte = 0;
    for (auto it = recent_.rbegin(); it != recent_.rend() && it->last_byte_s >= now_s - window_s;
         ++it) {
        ++units;
        bytes += it->bytes;
        first_request = std::min(first_request, it->request_s);
        last_byte = std::max(last_byte, it->last_byte_s);
    }
    if (units == 0 || units < min_units || !(last_byte > first_request)) return std::nullopt;
    return static_cast<double>(bytes) / (last_byte - first_request);
}

std::optional<double> BandwidthEstimator::fitted_bytes_per_second() const {
    const auto per_unit = bytes_per_second();
    std::lock_guard lock(mutex_);
    if (recent_.empty() || !per_unit) return per_unit;
    std::vector<std::pair<double, double>> busy;
    busy.reserve(recent_.size());
    uint64_t bytes = 0;
    for (const auto& u : recent_) {
        bytes += u.bytes;
        busy.emplace_back(u.headers_s, std::max(u.last_byte_s, u.headers_s));
    }
    std::sort(busy.begin(), busy.end());
    double busy_s = 0, open = busy.front().first, close = busy.front().second;
    for (const auto& [from, to] : busy) {
        if (from > close) {
            busy_s += close - open;
            open = from;
        }
        close = std::max(close, to);
    }
    busy_s += close - open;
    if (!(busy_s > 0)) return per_unit;
    return static_cast<double>(bytes) / busy_s;
}

}  // namespace sparkv
