// libFuzzer target for the Mahimahi trace parser (`serve --trace FILE`) and the link arithmetic
// over whatever trace it accepts: parse, walk a cursor at a few scales and offsets, and compare
// the walk with the capacity formula. Any crash, hang or sanitizer report is a bug.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "common/error.h"
#include "net/link_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::shared_ptr<const sparkv::LinkTrace> trace;
    try {
        trace = std::make_shared<const sparkv::LinkTrace>(sparkv::LinkTrace::parse(
            std::string_view(reinterpret_cast<const char*>(data), size), "fuzz"));
    } catch (const sparkv::Error&) {
        return 0;
    }
    (void)trace->mean_bits_per_second();
    (void)trace->opportunities(0, 3 * static_cast<int64_t>(trace->period_ms()) + 7);
    for (const double scale : {0.3, 1.0, 8.0}) {
        sparkv::LinkConfig link;
        link.trace = trace;
        link.trace_scale = scale;
        link.trace_start_ms = size % 1000;
        sparkv::LinkCursor cursor(link);
        int64_t last = cursor.time_ns();
        for (int i = 0; i < 64; ++i) {
            cursor.advance();
            if (cursor.time_ns() < last || cursor.bytes() == 0) std::abort();  // time runs forward
            last = cursor.time_ns();
        }
        (void)link.capacity_bytes(0.0, 2.5);
    }
    return 0;
}
