#include "net/response_body.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace sparkv {

ResponseBody ResponseBody::range(uint64_t first, uint64_t length) {
    ResponseBody body;
    body.add_object(first, length);
    return body;
}

ResponseBody ResponseBody::multipart(const std::vector<ByteRange>& ranges, uint64_t object_size,
                                     const std::string& part_type, const std::string& boundary) {
    ResponseBody body;
    for (size_t i = 0; i < ranges.size(); ++i) {
        body.add_literal(
            fmt::format("{}--{}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{}"
                        "\r\n\r\n",
                        i == 0 ? "" : "\r\n", boundary, part_type, ranges[i].first, ranges[i].last,
                        object_size));
        body.add_object(ranges[i].first, ranges[i].length());
    }
    body.add_literal(fmt::format("\r\n--{}--\r\n", boundary));
    return body;
}

void ResponseBody::add_literal(std::string text) {
    const uint64_t length = text.size();
    segments_.push_back({size_, std::move(text), 0, length});
    size_ += length;
}

void ResponseBody::add_object(uint64_t first, uint64_t length) {
    segments_.push_back({size_, {}, first, length});
    size_ += length;
}

size_t ResponseBody::read(ObjectReader& object, uint64_t offset, std::span<uint8_t> dst) const {
    size_t done = 0;
    for (const Segment& s : segments_) {
        if (done == dst.size()) break;
        const uint64_t at = offset + done;
        if (at < s.body_offset || at >= s.body_offset + s.length) continue;
        const uint64_t within = at - s.body_offset;
        const auto n =
            static_cast<size_t>(std::min<uint64_t>(dst.size() - done, s.length - within));
        if (!s.literal.empty()) {
            std::memcpy(dst.data() + done, s.literal.data() + within, n);
            done += n;
            continue;
        }
        const size_t got = object.read_at(s.object_first + within, dst.subspan(done, n));
        done += got;
        if (got != n) break;  // the object shrank
    }
    return done;
}

std::string random_boundary() {
    std::random_device random;
    return fmt::format("sparkv-{:08x}{:08x}{:08x}", random(), random(), random());
}

}  // namespace sparkv
