#include "net/byte_ranges.h"

#include <gtest/gtest.h>

#include <cstring>

#include "net/response_body.h"

namespace sparkv {
namespace {

using Kind = RangeAnswer::Kind;
using Requested = std::vector<std::pair<int64_t, int64_t>>;

TEST(ByteRanges, NoRangeIsTheWholeObject) {
    EXPECT_EQ(resolve_ranges({}, 100).kind, Kind::whole);
}

TEST(ByteRanges, ClampsSuffixesAndOpenEnds) {
    struct Case {
        Requested requested;
        std::vector<ByteRange> expected;
    };
    for (const Case& c : std::vector<Case>{
             {{{0, 9}}, {{0, 9}}},
             {{{90, -1}}, {{90, 99}}},
             {{{90, 500}}, {{90, 99}}},  // past the end: clamped
             {{{-1, 10}}, {{90, 99}}},   // the last 10 bytes
             {{{-1, 1000}}, {{0, 99}}},  // a suffix longer than the object: all of it
             {{{0, -1}}, {{0, 99}}},     // "0-": the whole object as one part
             {{{99, 99}}, {{99, 99}}},   // the last byte
         }) {
        const RangeAnswer a = resolve_ranges(c.requested, 100);
        EXPECT_EQ(a.kind, Kind::partial);
        EXPECT_EQ(a.ranges, c.expected);
    }
}

TEST(ByteRanges, MergesOverlappingAndAdjacentRangesInOrder) {
    const RangeAnswer a = resolve_ranges({{50, 59}, {0, 9}, {5, 14}, {15, 19}, {-1, 5}}, 100);
    ASSERT_EQ(a.kind, Kind::partial);
    EXPECT_EQ(a.ranges, (std::vector<ByteRange>{{0, 19}, {50, 59}, {95, 99}}));
    // A range inside another adds nothing.
    EXPECT_EQ(resolve_ranges({{0, 50}, {10, 20}}, 100).ranges, (std::vector<ByteRange>{{0, 50}}));
}

TEST(ByteRanges, UnsatisfiableOnlyWhenNoRangeIsSatisfiable) {
    EXPECT_EQ(resolve_ranges({{100, 200}}, 100).kind, Kind::unsatisfiable);
    EXPECT_EQ(resolve_ranges({{100, -1}}, 100).kind, Kind::unsatisfiable);
    EXPECT_EQ(resolve_ranges({{-1, 0}}, 100).kind, Kind::unsatisfiable);  // "-0"
    EXPECT_EQ(resolve_ranges({{0, 0}}, 0).kind, Kind::unsatisfiable);     // empty object
    EXPECT_EQ(resolve_ranges({{-1, 5}}, 0).kind, Kind::unsatisfiable);
    // One bad range among good ones is dropped, not fatal.
    const RangeAnswer a = resolve_ranges({{500, 600}, {0, 0}}, 100);
    EXPECT_EQ(a.kind, Kind::partial);
    EXPECT_EQ(a.ranges, (std::vector<ByteRange>{{0, 0}}));
}

TEST(ByteRanges, TooManyPartsFallBackToTheWholeObject) {
    Requested many;
    for (int64_t i = 0; i < static_cast<int64_t>(kMaxRangeParts) + 1; ++i)
        many.emplace_back(i * 10, i * 10 + 1);
    EXPECT_EQ(resolve_ranges(many, 1000).kind, Kind::whole);
    many.pop_back();
    EXPECT_EQ(resolve_ranges(many, 1000).ranges.size(), kMaxRangeParts);
}

}  // namespace
}  // namespace sparkv

namespace sparkv {
namespace {

// An object in memory, as a store would serve it.
class MemoryObject final : public ObjectReader {
  public:
    explicit MemoryObject(std::string bytes) : bytes_(std::move(bytes)) {}
    uint64_t size() const override { return bytes_.size(); }
    size_t read_at(uint64_t offset, std::span<uint8_t> dst) override {
        if (offset >= bytes_.size()) return 0;
        const size_t n = std::min<size_t>(dst.size(), bytes_.size() - offset);
        std::memcpy(dst.data(), bytes_.data() + offset, n);
        return n;
    }

  private:
    std::string bytes_;
};

std::string read_whole(const ResponseBody& body, ObjectReader& object, size_t piece) {
    std::string out;
    std::vector<uint8_t> buffer(piece);
    for (uint64_t offset = 0; offset < body.size();) {
        const size_t n = body.read(object, offset, buffer);
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(buffer.data()), n);
        offset += n;
    }
    return out;
}

TEST(ResponseBody, LaysOutMultipartByterangesReadInAnyPieces) {
    MemoryObject object("0123456789abcdefghij");
    const ResponseBody body =
        ResponseBody::multipart({{2, 4}, {15, 19}}, 20, "application/octet-stream", "B");
    const std::string expected =
        "--B\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 2-4/20\r\n\r\n234"
        "\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 15-19/20\r\n"
        "\r\nfghij\r\n--B--\r\n";
    EXPECT_EQ(body.size(), expected.size());
    for (size_t piece : {1, 3, 7, 1000}) EXPECT_EQ(read_whole(body, object, piece), expected);
    EXPECT_EQ(read_whole(ResponseBody::range(5, 3), object, 2), "567");
    EXPECT_NE(random_boundary(), random_boundary());
}

TEST(ResponseBody, StopsShortWhenTheObjectShrank) {
    MemoryObject shorter("0123");
    const ResponseBody body = ResponseBody::range(0, 10);
    std::vector<uint8_t> buffer(10);
    EXPECT_EQ(body.read(shorter, 0, buffer), 4u);
}

}  // namespace
}  // namespace sparkv
