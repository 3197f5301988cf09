#include "net/byte_ranges.h"

#include <algorithm>

namespace sparkv {

RangeAnswer resolve_ranges(const std::vector<std::pair<int64_t, int64_t>>& requested,
                           uint64_t size) {
    RangeAnswer answer;
    if (requested.empty()) return answer;
    std::vector<ByteRange> ranges;
    for (const auto& [a, b] : requested) {
        if (a < 0 && b < 0) continue;  // "-": not a range
        if (a < 0) {                   // suffix: the last b bytes
            if (b == 0 || size == 0) continue;
            const auto n = std::min<uint64_t>(static_cast<uint64_t>(b), size);
            ranges.push_back({size - n, size - 1});
            continue;
        }
        const auto first = static_cast<uint64_t>(a);
        if (first >= size) continue;  // starts past the end: unsatisfiable on its own
        if (b >= 0 && b < a) continue;
        const uint64_t last =
            b < 0 ? size - 1 : std::min<uint64_t>(static_cast<uint64_t>(b), size - 1);
        ranges.push_back({first, last});
    }
    if (ranges.empty()) {
        answer.kind = RangeAnswer::Kind::unsatisfiable;
        return answer;
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const ByteRange& x, const ByteRange& y) { return x.first < y.first; });
    std::vector<ByteRange> merged;
    for (const ByteRange& r : ranges) {
        if (!merged.empty() && r.first <= merged.back().last + 1)
            merged.back().last = std::max(merged.back().last, r.last);
        else
            merged.push_back(r);
    }
    if (merged.size() > kMaxRangeParts) return answer;  // whole object
    answer.kind = RangeAnswer::Kind::partial;
    answer.ranges = std::move(merged);
    return answer;
}

}  // namespace sparkv
