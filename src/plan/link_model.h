// When bytes asked for at some moment have arrived, for the planner's simulator: a constant-rate
// link (what a planner predicts from its bandwidth estimate) or a replayed Mahimahi trace (what
// the oracle knows happened). Same semantics as the server's pacer (net/link_pacer.h): delivery
// opportunities that pass while nothing is being sent are lost, each carries 1500 bytes x scale.
// Plain data: the planner never sees a socket.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace sparkv::plan {

class LinkModel {
  public:
    virtual ~LinkModel() = default;
    // Seconds (from the start of loading) at which a body of `bytes` whose first byte may leave
    // at `start` has fully arrived. Request round trips are the caller's to add.
    virtual double arrival(double start, uint64_t bytes) const = 0;
    // Mean capacity over [from, to), bytes per second.
    virtual double mean_rate(double from, double to) const = 0;
};

class ConstantLink final : public LinkModel {
  public:
    explicit ConstantLink(double bytes_per_second);
    double arrival(double start, uint64_t bytes) const override;
    double mean_rate(double, double) const override { return rate_; }

  private:
    double rate_;
};

class TraceLink final : public LinkModel {
  public:
    // timestamps_ms: a Mahimahi trace (non-decreasing, looping with the last stamp as period);
    // offset_s: link time at the start of loading (the connection opened a little earlier).
    TraceLink(std::vector<uint32_t> timestamps_ms, double scale, double offset_s);
    double arrival(double start, uint64_t bytes) const override;
    double mean_rate(double from, double to) const override;

  private:
    uint64_t opportunities_before(int64_t t_ms) const;
    double opportunity_time_ms(uint64_t index) const;

    std::vector<uint32_t> stamps_;
    double bytes_per_opportunity_;
    double offset_ms_;
};

}  // namespace sparkv::plan
