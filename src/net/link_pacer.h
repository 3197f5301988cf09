// Paces the response bodies of one connection through an emulated bottleneck link. All bodies of
// a connection share one pacer, as they would share one radio link: the link's clock starts
// when the connection opens, opportunities that pass while no body is being sent are lost, and a
// body that falls behind real time catches up (its packets were queued at the bottleneck).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "net/link_trace.h"

namespace sparkv {

// A stop flag that sleeping threads wake up for.
class StopSignal {
  public:
    void request_stop();
    bool stop_requested() const;
    // Sleeps until deadline; returns false (early) if stop was requested.
    bool sleep_until(std::chrono::steady_clock::time_point deadline) const;
    bool sleep_for(std::chrono::nanoseconds duration) const {
        return sleep_until(std::chrono::steady_clock::now() + duration);
    }

  private:
    mutable std::mutex mutex_;
    mutable std::condition_variable wake_;
    bool stop_ = false;
};

class LinkPacer {
  public:
    using Clock = std::chrono::steady_clock;

    // config must be paced; the link's time 0 is `start`.
    LinkPacer(const LinkConfig& config, Clock::time_point start);

    // Starts a body: the link was idle until now, so the opportunities it had are gone.
    void begin_body();
    // Blocks until the link may carry more of the body, then returns how many bytes (at most
    // max_bytes) may be written now; 0 only if stopped. The unused part of a packet opportunity
    // carries over to the next call of the same body.
    size_t wait_for_credit(size_t max_bytes, const StopSignal& stop);

    // Seconds of link time at `when`.
    double link_time(Clock::time_point when) const;
    Clock::time_point start() const { return start_; }

  private:
    int64_t now_ns() const;

    LinkCursor cursor_;
    Clock::time_point start_;
    uint64_t carry_bytes_ = 0;  // paid-for bytes of the last opportunity not yet written
};

}  // namespace sparkv
