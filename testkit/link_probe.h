// Measures what an emulated link actually delivers: downloads one object back to back over a
// single keep-alive connection and logs when each piece of body arrives, on the server's link
// clock (recovered from the X-Sparkv-Link-Time header), so delivered bytes per window can be set
// against the trace's capacity in the same window. Used by the pacing test and bench.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparkv {

struct ArrivalLog {
    std::vector<double> link_s;   // link time of each received piece, non-decreasing
    std::vector<uint64_t> bytes;  // its size
    double first_body_s = 0;      // link time the first body started
    double end_s = 0;             // link time the probe stopped
    uint64_t responses = 0;

    uint64_t bytes_in(double from_s, double to_s) const;
};

// Runs for `seconds` of wall time. Throws Error if the server is not pacing (no link header) or
// a request fails.
ArrivalLog probe_link(const std::string& host, int port, const std::string& path, double seconds);

}  // namespace sparkv
