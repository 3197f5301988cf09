// Paces response bodies through an emulated bottleneck link. All bodies of a connection share one
// pacer, as they would share one radio link, and so do all connections of a client that names
// its link (X-Sparkv-Link, see server.h): one device, one radio, however many connections. The
// link's clock starts when it is first used; opportunities that pass while no body is being sent
// are lost, and a body that falls behind real time catches up (its packets were queued at the
// bottleneck). Thread-safe: bodies of several connections may wait for credit at once, and each
// opportunity goes to whichever asks for it first.
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

    // Starts a body: if no other body is being sent, the link was idle until now and the
    // opportunities it had are gone. Every begin_body is paired with one end_body.
    void begin_body();
    void end_body();
    // Blocks until the link may carry more of the body, then returns how many bytes (at most
    // max_bytes) may be written now; 0 only if stopped. The unused part of a packet opportunity
    // carries over to the next call of any body on the link.
    size_t wait_for_credit(size_t max_bytes, const StopSignal& stop);

    // Seconds of link time at `when`.
    double link_time(Clock::time_point when) const;
    Clock::time_point start() const { return start_; }

  private:
    int64_t now_ns() const;

    const Clock::time_point start_;
    mutable std::mutex mutex_;  // guards what follows; never held while sleeping
    LinkCursor cursor_;
    uint64_t carry_bytes_ = 0;  // paid-for bytes of the last opportunity not yet written
    int active_bodies_ = 0;
};

}  // namespace sparkv
