// Byte ranges of a GET (RFC 9110 section 14), resolved against an object's size before any byte
// is sent. httplib parses the Range header; this decides what to answer:
//   * every range is clamped to the object; ranges that start past its end are dropped, and a
//     suffix range "-N" means the last N bytes (all of them if N exceeds the size);
//   * nothing left: 416 with "Content-Range: bytes */size";
//   * overlapping or adjacent ranges are merged (RFC 9110 allows coalescing), so no byte is sent
//     twice; one range left: a 206 single part; several: a 206 multipart/byteranges;
//   * more than kMaxParts ranges after merging: the Range header is ignored (200, whole object),
//     which RFC 9110 permits and which bounds the work a many-range request can cause.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sparkv {

struct ByteRange {
    uint64_t first = 0;
    uint64_t last = 0;  // inclusive
    uint64_t length() const { return last - first + 1; }
    bool operator==(const ByteRange&) const = default;
};

struct RangeAnswer {
    enum class Kind { whole, partial, unsatisfiable } kind = Kind::whole;
    std::vector<ByteRange> ranges;  // sorted, disjoint, non-adjacent; set for partial
};

inline constexpr size_t kMaxRangeParts = 16;

// `requested` as httplib parses it: (first, last) with -1 for an absent bound ((-1, n) is the
// suffix "-n"); an empty list means no Range header.
RangeAnswer resolve_ranges(const std::vector<std::pair<int64_t, int64_t>>& requested,
                           uint64_t size);

}  // namespace sparkv
