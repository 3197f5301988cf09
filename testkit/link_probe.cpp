#include "testkit/link_probe.h"

#include <httplib.h>

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "common/timer.h"

namespace sparkv {

uint64_t ArrivalLog::bytes_in(double from_s, double to_s) const {
    const auto begin = std::lower_bound(link_s.begin(), link_s.end(), from_s) - link_s.begin();
    const auto end = std::lower_bound(link_s.begin(), link_s.end(), to_s) - link_s.begin();
    uint64_t total = 0;
    for (auto i = begin; i < end; ++i) total += bytes[static_cast<size_t>(i)];
    return total;
}

ArrivalLog probe_link(const std::string& host, int port, const std::string& path, double seconds) {
    httplib::Client http(host, port);
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);
    http.set_read_timeout(30, 0);
    http.set_decompress(false);

    std::vector<double> local_s;
    std::vector<uint64_t> sizes;
    local_s.reserve(1 << 16);
    sizes.reserve(1 << 16);
    // local clock minus link clock, estimated per response; the smallest is the least delayed.
    double offset = std::numeric_limits<double>::infinity();
    double first_body_link = -1;
    const double start = now_seconds();
    bool done = false;
    uint64_t responses = 0;
    while (!done) {
        std::string link_header;
        int status = 0;
        auto result = http.Get(
            path, httplib::Headers{},
            [&](const httplib::Response& r) {
                status = r.status;
                link_header = r.get_header_value("X-Sparkv-Link-Time");
                if (!link_header.empty()) {
                    const double link = std::stod(link_header);
                    offset = std::min(offset, now_seconds() - link);
                    if (first_body_link < 0) first_body_link = link;
                }
                return status == 200 || status == 206;
            },
            [&](const char*, size_t n) {
                const double now = now_seconds();
                local_s.push_back(now);
                sizes.push_back(n);
                done = now - start >= seconds;
                return !done;
            });
        if (status != 200 && status != 206) fail("link probe: GET {} answered {}", path, status);
        if (link_header.empty())
            fail("link probe: the server does not pace this link (no X-Sparkv-Link-Time header)");
        if (!result && !done)
            fail("link probe: GET {} failed: {}", path, httplib::to_string(result.error()));
        ++responses;
        done = done || now_seconds() - start >= seconds;
    }
    ArrivalLog log;
    log.responses = responses;
    log.first_body_s = first_body_link;
    log.end_s = now_seconds() - offset;
    log.link_s.reserve(local_s.size());
    for (double t : local_s) log.link_s.push_back(t - offset);
    log.bytes = std::move(sizes);
    return log;
}

}  // namespace sparkv
