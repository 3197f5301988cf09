// The stream lane: fetch -> verify -> decode -> commit, straight into the engine's KV cache.
// It drives a UnitClient whose manifest is already fetched: the fetch thread asks the board
// before each request (a unit the controller moved to the compute lane is skipped), the delivery
// thread decodes each verified unit into its place in the cache and commits it, and every
// failure (network, checksum, decode) hands the unit back to the compute lane through the board,
// so nothing ever waits for a unit that will not come.
//
// Threads: start()/withdraw()/stop() from the owner or the controller; callbacks run on the
// client's fetch thread (before_request, on_timing) and delivery thread (decode + commit).
// The decoder and its scratch belong to the delivery thread; counters are atomic; the
// bandwidth estimator, schedule, board and timeline lock themselves.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "common/timer.h"
#include "engine/kv_cache.h"
#include "net/unit_client.h"
#include "runtime/lane_views.h"
#include "runtime/timeline.h"
#include "runtime/unit_board.h"

namespace sparkv::runtime {

struct StreamLaneStats {
    uint64_t units = 0;     // decoded into the cache
    uint64_t bytes = 0;     // unit bytes received (including units that then failed to decode)
    uint64_t failures = 0;  // units handed back to the compute lane (not counting withdrawals)
    uint64_t withdrawn = 0;
    double decode_s = 0;  // delivery thread time spent decoding
};

class StreamLane : public StreamControl {
  public:
    // origin_s: the request's start on the steady clock (common/timer.h now_seconds()), the
    // timeline's zero. `levels` are the manifest's level names, indexed like plan levels.
    StreamLane(UnitClient& client, UnitBoard& board, KvCache& cache, Timeline& timeline,
               double origin_s);
    ~StreamLane();

    // Starts streaming `order` (unit, level index). With chunk_claims, the lane claims a whole
    // unassigned chunk when it reaches its first unit (meet-in-the-middle).
    void start(const std::vector<std::pair<UnitId, int>>& order, bool chunk_claims);
    // Moves a unit the stream lane owns to the compute lane: from the schedule if it is still
    // pending, by cutting the transfer if it is in flight. False if the lane no longer owns it
    // or it is already being written.
    bool withdraw(UnitId u) override;
    // Puts a unit at the end (or front) of the schedule: it must be stream_planned on the board.
    void append(UnitId u, int level) override { append(u, level, false); }
    void append(UnitId u, int level, bool front);
    // Stops everything at once (error paths); units not delivered go back to the compute lane.
    void stop();
    // Waits until the schedule is drained (every unit delivered, failed or withdrawn).
    void finish();

    const BandwidthEstimator& estimator() const { return estimator_; }
    std::optional<double> bandwidth() const override { return estimator_.bytes_per_second(); }
    size_t bandwidth_samples() const override { return estimator_.samples(); }
    std::optional<double> delivered_rate(double window_s, size_t min_units) const override {
        return estimator_.delivered_bytes_per_second(now_seconds(), window_s, min_units);
    }
    FetchSchedule& schedule() { return *schedule_; }
    StreamLaneStats stats() const;
    std::vector<UnitFailure> failures() const;
    // Seconds since origin at which the stream lane last delivered or failed a unit.
    double last_activity_s() const { return last_activity_s_.load(); }
    // When the oldest unit still on its way was requested (seconds since origin), or nullopt
    // when none is: what the controller needs to notice a stalled link.
    std::optional<double> in_flight_since() const override;

  private:
    void on_unit(ReceivedUnit&& unit);
    void on_failure(const UnitFailure& failure);
    double now_s() const;

    UnitClient& client_;
    UnitBoard& board_;
    KvCache& cache_;
    Timeline& timeline_;
    const double origin_s_;
    const Manifest& manifest_;
    uint64_t fingerprint_ = 0;
    std::vector<std::string> level_names_;
    std::shared_ptr<FetchSchedule> schedule_;
    BandwidthEstimator estimator_;
    bool chunk_claims_ = false;
    bool started_ = false;

    codec::Decoder decoder_;  // delivery thread only

    std::atomic<uint64_t> units_{0}, bytes_{0}, failures_{0}, withdrawn_{0};
    std::atomic<double> decode_s_{0}, last_activity_s_{0};
    // Units requested and not yet in (the client streams on several connections), with the
    // time each was requested.
    mutable std::mutex in_flight_mutex_;
    std::vector<std::pair<UnitId, double>> in_flight_;
    void request_sent(UnitId u);
    void request_done(UnitId u);
    mutable std::mutex failures_mutex_;
    std::vector<UnitFailure> failure_list_;
};

}  // namespace sparkv::runtime
