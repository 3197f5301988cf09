// A response body made of segments: literal bytes (the boundaries and part headers of a
// multipart/byteranges body) and ranges of one stored object, read only as they are sent. The
// server sends the whole object, one range of it, or several ranges as multipart/byteranges
// (RFC 9110 section 14.6) through the same paced provider. httplib 0.11's own multipart writer
// labels every part "bytes a-b/0" for streamed bodies, so the parts are laid out here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "net/byte_ranges.h"
#include "store/storage_backend.h"

namespace sparkv {

class ResponseBody {
  public:
    // The object's bytes [first, first + length).
    static ResponseBody range(uint64_t first, uint64_t length);
    // The ranges as multipart/byteranges parts of `part_type`, separated by `boundary`.
    static ResponseBody multipart(const std::vector<ByteRange>& ranges, uint64_t object_size,
                                  const std::string& part_type, const std::string& boundary);

    uint64_t size() const { return size_; }
    // Copies the body's bytes at `offset` into dst (as many as fit); returns how many, fewer
    // only at the body's end or if the object is shorter than it was.
    size_t read(ObjectReader& object, uint64_t offset, std::span<uint8_t> dst) const;

  private:
    struct Segment {
        uint64_t body_offset = 0;
        std::string literal;  // or, when empty:
        uint64_t object_first = 0;
        uint64_t length = 0;
    };
    void add_literal(std::string text);
    void add_object(uint64_t first, uint64_t length);

    std::vector<Segment> segments_;
    uint64_t size_ = 0;
};

// A multipart boundary that no object's bytes can be expected to contain.
std::string random_boundary();

}  // namespace sparkv
