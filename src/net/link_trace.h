// Emulated bottleneck links. A Mahimahi trace lists the millisecond timestamps at which one
// 1500-byte packet may leave (a repeated timestamp is one more packet in that millisecond) and
// loops with a period equal to its last timestamp, as Mahimahi's link shell replays it. A fixed
// rate is the same thing with evenly spaced opportunities.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv {

constexpr uint32_t kLinkPacketBytes = 1500;

class LinkTrace {
  public:
    // Reads a Mahimahi trace file; a malformed file is an Error naming the line.
    static LinkTrace load(const std::string& path);
    // The same from the file's text; `name` is used in messages.
    static LinkTrace parse(std::string_view text, std::string name);
    // timestamps_ms: non-decreasing, last one > 0.
    static LinkTrace from_timestamps(std::vector<uint32_t> timestamps_ms, std::string name);

    const std::string& name() const { return name_; }
    const std::vector<uint32_t>& timestamps_ms() const { return timestamps_; }
    uint32_t period_ms() const { return timestamps_.back(); }
    double mean_bits_per_second() const;

    // Packet opportunities at trace times in [from_ms, to_ms), the trace looping forever.
    uint64_t opportunities(int64_t from_ms, int64_t to_ms) const;
    // Opportunities at trace times < t_ms (t_ms >= 0).
    uint64_t opportunities_before(int64_t t_ms) const;

  private:
    std::string name_;
    std::vector<uint32_t> timestamps_;
};

// How a server connection's link behaves. One home for the link settings of `sparkv serve`.
struct LinkConfig {
    std::shared_ptr<const LinkTrace> trace;  // Mahimahi trace, or null for a fixed rate
    double trace_scale = 1.0;                // multiplies the trace's capacity (x8: LTE -> Wi-Fi)
    int64_t trace_start_ms = 0;              // link time 0 is this point of the trace
    double rate_mbps = 0;                    // fixed rate without a trace; 0 = unpaced
    double rtt_ms = 0;                       // delay before each response's first byte

    bool paced() const { return trace != nullptr || rate_mbps > 0; }
    // Throws Error for settings that make no sense (negative, both trace and rate, ...).
    void validate() const;
    std::string describe() const;
    // Bytes the link can deliver in [from_s, to_s) of link time (the accuracy reference).
    double capacity_bytes(double from_s, double to_s) const;
};

// Walks a link's delivery opportunities in time order, each with the bytes it can carry.
class LinkCursor {
  public:
    explicit LinkCursor(const LinkConfig& config);

    int64_t time_ns() const { return time_ns_; }  // link time of the current opportunity
    uint64_t bytes() const { return bytes_; }     // what it carries (> 0)
    void advance();
    // Drops the opportunities an idle link wasted before t_ns. Trace opportunities have
    // millisecond resolution, as in Mahimahi: the one stamped with the millisecond that t_ns falls
    // in is still usable.
    void skip_to(int64_t t_ns);

  private:
    void settle();  // moves forward to an opportunity that carries at least one packet

    const LinkTrace* trace_ = nullptr;
    double scale_ = 1.0;
    int64_t offset_ns_ = 0;   // trace time of link time 0
    double interval_ns_ = 0;  // fixed rate spacing
    uint64_t index_ = 0;      // global opportunity index (across trace loops)
    int64_t time_ns_ = 0;
    uint64_t bytes_ = 0;
};

}  // namespace sparkv
