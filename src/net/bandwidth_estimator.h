// Predicts how long a unit takes to stream, from how fast recent units arrived (DESIGN.md
// section 4): bandwidth is the harmonic mean of the last few per-unit throughputs, which a single
// fast outlier cannot inflate; the latency to the first byte (RTT plus server time) is tracked
// separately so that small and large units are both predicted right.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

namespace sparkv {

// When one unit's bytes arrived (seconds on the steady clock, see common/timer.h).
struct UnitTiming {
    uint64_t bytes = 0;
    double request_s = 0;     // request sent
    double headers_s = 0;     // response headers received (the RTT has passed)
    double first_byte_s = 0;  // first body byte
    double last_byte_s = 0;   // last body byte
    // Set by a client streaming on several connections at once (0: unset): the body bytes the
    // link carried for all of them from link_start_s to this unit's last byte. Bodies that share
    // the link each see part of it; this is the whole.
    // link_start_s < 0: the unit ended with others and says nothing about the link's rate.
    uint64_t link_bytes = 0;
    double link_start_s = 0;

    double latency_s() const { return headers_s - request_s; }
    // The link rate the unit saw: body bytes over the time from the headers to the last byte,
    // or link_bytes over the time since link_start_s when those are set.
    double throughput_bytes_per_s() const;
};

struct BandwidthEstimatorConfig {
    size_t window = 8;               // recent units averaged
    uint64_t min_bytes = 16 * 1024;  // smaller bodies say more about timing noise than bandwidth
};

class BandwidthEstimator {
  public:
    explicit BandwidthEstimator(BandwidthEstimatorConfig config = {});

    void add(const UnitTiming& timing);  // thread-safe
    // Harmonic mean of the recent throughputs; nullopt before the first usable sample.
    std::optional<double> bytes_per_second() const;
    // Mean of the recent latencies to the first byte.
    std::optional<double> latency_seconds() const;
    // latency + bytes / bandwidth; nullopt without a bandwidth estimate.
    std::optional<double> predict_seconds(uint64_t bytes) const;
    // Bytes per second of wall time over the units whose last byte came in the `window_s`
    // seconds before `now_s` (steady clock), from the first one's request to the last one's last
    // byte: latencies and gaps included, so it says how long the rest of a queue takes on a
    // bursty link better than per-unit rates do. nullopt with fewer than `min_units` units.
    std::optional<double> delivered_bytes_per_second(double now_s, double window_s,
                                                     size_t min_units) const;
    // The link rate over the time the link was busy with the units kept (the last 256): the
    // union of their [headers, last byte] intervals, so round trips the link waited through are
    // left out and bodies that overlapped on several connections are counted once. What a
    // planner that prices a unit as latency + bytes / rate should use next time.
    std::optional<double> fitted_bytes_per_second() const;
    size_t samples() const;

  private:
    BandwidthEstimatorConfig config_;
    mutable std::mutex mutex_;
    std::deque<double> throughputs_;
    std::deque<double> latencies_;
    std::deque<UnitTiming> recent_;  // the last kRecentUnits units, any size
};

}  // namespace sparkv
