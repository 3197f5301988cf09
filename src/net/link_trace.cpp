#include "net/link_trace.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace sparkv {

LinkTrace LinkTrace::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("link trace {}: cannot open", path);
    std::ostringstream text;
    text << in.rdbuf();
    const auto slash = path.find_last_of('/');
    return parse(text.str(), slash == std::string::npos ? path : path.substr(slash + 1));
}

LinkTrace LinkTrace::parse(std::string_view text, std::string name) {
    std::vector<uint32_t> timestamps;
    int64_t line_number = 0;
    for (size_t start = 0; start < text.size();) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string line(text.substr(start, end - start));
        start = end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        char* parsed_end = nullptr;
        errno = 0;
        const unsigned long long value = std::strtoull(line.c_str(), &parsed_end, 10);
        if (parsed_end == line.c_str() || *parsed_end != '\0' || errno != 0 ||
            line.front() == '-' || line.size() != std::strlen(line.c_str()) ||
            value > 0xffffffffULL)
            fail("link trace {}: line {} is not a millisecond timestamp: \"{}\"", name, line_number,
                 line.substr(0, 40));
        timestamps.push_back(static_cast<uint32_t>(value));
    }
    return from_timestamps(std::move(timestamps), std::move(name));
}

LinkTrace LinkTrace::from_timestamps(std::vector<uint32_t> timestamps_ms, std::string name) {
    if (timestamps_ms.empty()) fail("link trace {}: no delivery opportunities", name);
    if (!std::is_sorted(timestamps_ms.begin(), timestamps_ms.end()))
        fail("link trace {}: timestamps must not decrease", name);
    if (timestamps_ms.back() == 0)
        fail("link trace {}: the last timestamp (the loop period) must be positive", name);
    LinkTrace trace;
    trace.name_ = std::move(name);
    trace.timestamps_ = std::move(timestamps_ms);
    return trace;
}

double LinkTrace::mean_bits_per_second() const {
    return static_cast<double>(timestamps_.size()) * kLinkPacketBytes * 8.0 /
           (static_cast<double>(period_ms()) / 1000.0);
}

uint64_t LinkTrace::opportunities_before(int64_t t_ms) const {
    if (t_ms <= 0) return 0;
    const auto period = static_cast<int64_t>(period_ms());
    const int64_t loops = t_ms / period;
    const auto rest = static_cast<uint32_t>(t_ms % period);
    uint64_t count =
        static_cast<uint64_t>(loops) * timestamps_.size() +
        static_cast<uint64_t>(std::lower_bound(timestamps_.begin(), timestamps_.end(), rest) -
                              timestamps_.begin());
    // Entries stamped with the period itself happen at the start of the next loop: exactly at
    // t_ms when t_ms is a multiple of the period, so they are not before it.
    if (rest == 0 && loops > 0)
        count -= static_cast<uint64_t>(timestamps_.end() - std::lower_bound(timestamps_.begin(),
                                                                            timestamps_.end(),
                                                                            period_ms()));
    return count;
}

uint64_t LinkTrace::opportunities(int64_t from_ms, int64_t to_ms) const {
    if (to_ms <= from_ms) return 0;
    return opportunities_before(to_ms) - opportunities_before(from_ms);
}

void LinkConfig::validate() const {
    if (trace && rate_mbps > 0) fail("link: choose either a trace or a fixed rate, not both");
    if (!(trace_scale > 0) || !std::isfinite(trace_scale))
        fail("link: trace scale must be positive, got {}", trace_scale);
    if (trace_start_ms < 0) fail("link: trace start must be >= 0 ms, got {}", trace_start_ms);
    if (!(rate_mbps >= 0) || !std::isfinite(rate_mbps))
        fail("link: rate must be >= 0 Mbit/s, got {}", rate_mbps);
    if (!(rtt_ms >= 0) || rtt_ms > 60'000)
        fail("link: RTT must be in [0, 60000] ms, got {}", rtt_ms);
}

std::string LinkConfig::describe() const {
    std::string link;
    if (trace)
        link = fmt::format("trace {} x{} (mean {:.2f} Mbit/s, period {} s, starting at {} ms)",
                           trace->name(), trace_scale,
                           trace->mean_bits_per_second() * trace_scale / 1e6,
                           trace->period_ms() / 1000.0, trace_start_ms);
    else if (rate_mbps > 0)
        link = fmt::format("fixed rate {} Mbit/s", rate_mbps);
    else
        link = "unpaced";
    return fmt::format("{}, base RTT {} ms", link, rtt_ms);
}

double LinkConfig::capacity_bytes(double from_s, double to_s) const {
    if (to_s <= from_s) return 0;
    if (trace) {
        // Opportunities sit on whole trace milliseconds: [a, b) covers those with ceil(a) <= t <
        // ceil(b), exactly what a LinkCursor walking that span visits.
        const auto at = [&](double s) {
            return static_cast<int64_t>(std::ceil(s * 1000.0 - 1e-9)) + trace_start_ms;
        };
        const int64_t a = at(from_s), b = at(to_s);
        const uint64_t before_a = trace->opportunities_before(a);
        const uint64_t before_b = trace->opportunities_before(b);
        const double packets = std::floor(static_cast<double>(before_b) * trace_scale) -
                               std::floor(static_cast<double>(before_a) * trace_scale);
        return packets * kLinkPacketBytes;
    }
    if (rate_mbps > 0) return (to_s - from_s) * rate_mbps * 1e6 / 8.0;
    return 0;
}

LinkCursor::LinkCursor(const LinkConfig& config) {
    config.validate();
    if (!config.paced()) fail("link cursor: the link is not paced");
    trace_ = config.trace.get();
    scale_ = config.trace_scale;
    offset_ns_ = config.trace_start_ms * 1'000'000;
    if (!trace_) interval_ns_ = kLinkPacketBytes * 8.0 / (config.rate_mbps * 1e6) * 1e9;
    skip_to(0);
}

void LinkCursor::settle() {
    if (!trace_) {
        time_ns_ = static_cast<int64_t>(std::llround(static_cast<double>(index_) * interval_ns_));
        bytes_ = kLinkPacketBytes;
        return;
    }
    const uint64_t n = trace_->timestamps_ms().size();
    for (;;) {
        // Packets of opportunity g: floor((g+1)x) - floor(gx), so any scale keeps the exact mean.
        const auto g = static_cast<double>(index_);
        const auto packets =
            static_cast<uint64_t>(std::floor((g + 1) * scale_) - std::floor(g * scale_));
        if (packets > 0) {
            const uint64_t loop = index_ / n;
            const int64_t trace_ms = static_cast<int64_t>(loop * trace_->period_ms()) +
                                     trace_->timestamps_ms()[index_ % n];
            time_ns_ = trace_ms * 1'000'000 - offset_ns_;
            bytes_ = packets * kLinkPacketBytes;
            return;
        }
        ++index_;
    }
}

void LinkCursor::advance() {
    ++index_;
    settle();
}

void LinkCursor::skip_to(int64_t t_ns) {
    uint64_t target;
    if (trace_) {
        const int64_t trace_ns = t_ns + offset_ns_;
        const int64_t first_ms = trace_ns <= 0 ? 0 : trace_ns / 1'000'000;
        target = trace_->opportunities_before(first_ms);
    } else {
        target =
            t_ns <= 0
                ? 0
                : static_cast<uint64_t>(std::ceil(static_cast<double>(t_ns) / interval_ns_ - 1e-9));
    }
    if (target > index_ || (target == 0 && index_ == 0)) index_ = std::max(index_, target);
    settle();
}

}  // namespace sparkv
