// What the controller sees of the two lanes and what it may ask of them: small interfaces so
// the controller can be driven by scripted lanes in tests. StreamLane and ComputeLane implement
// them; every method is safe to call from the controller's thread.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "plan/plan.h"

namespace sparkv::runtime {

struct ComputeObservation {
    double end_s = 0;
    double predicted_s = 0;
    double actual_s = 0;
};

class ComputeProgress {
  public:
    virtual ~ComputeProgress() = default;
    // Units completed since `since_s` (seconds since the request started), oldest first.
    virtual std::vector<ComputeObservation> observations(double since_s) const = 0;
    // Since when the lane has had nothing it could start (seconds since the request started),
    // while that lasts; nullopt while it works.
    virtual std::optional<double> idle_since() const { return std::nullopt; }
};

class StreamControl {
  public:
    virtual ~StreamControl() = default;
    // The link's recent throughput, bytes/s (nullopt before the first sample).
    virtual std::optional<double> bandwidth() const = 0;
    // How many units the bandwidth estimate has seen.
    virtual size_t bandwidth_samples() const = 0;
    // Bytes per second of wall time over the units delivered in the last `window_s` seconds,
    // latencies included (BandwidthEstimator::delivered_bytes_per_second); nullopt with fewer
    // than `min_units` of them.
    virtual std::optional<double> delivered_rate(double window_s, size_t min_units) const {
        (void)window_s, (void)min_units;
        return std::nullopt;
    }
    // When the unit in flight was requested, or nullopt between units.
    virtual std::optional<double> in_flight_since() const = 0;
    // Hands a unit the stream lane owns to the compute lane; false if it cannot any more.
    virtual bool withdraw(plan::UnitId u) = 0;
    // Adds a unit (already stream_planned on the board) to the end of the schedule.
    virtual void append(plan::UnitId u, int level) = 0;
};

}  // namespace sparkv::runtime
