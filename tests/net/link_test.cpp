#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "net/link_pacer.h"
#include "net/link_trace.h"
#include "test_support.h"

namespace sparkv {
namespace {

using testing::TempDir;

TEST(LinkTrace, LoadsMahimahiFormat) {
    TempDir dir;
    std::ofstream(dir.file("t.down")) << "0\n0\n3\n5\r\n\n10\n";
    const LinkTrace trace = LinkTrace::load(dir.file("t.down"));
    EXPECT_EQ(trace.name(), "t.down");
    EXPECT_EQ(trace.timestamps_ms().size(), 5u);
    EXPECT_EQ(trace.period_ms(), 10u);
    EXPECT_DOUBLE_EQ(trace.mean_bits_per_second(), 5 * 1500 * 8 / 0.010);
}

TEST(LinkTrace, RejectsMalformedFiles) {
    TempDir dir;
    for (const char* text : {"", "0\n", "1\nx\n", "5\n3\n", "-1\n4\n", "1.5\n", "99999999999\n"}) {
        std::ofstream(dir.file("bad")) << text;
        EXPECT_THROW(LinkTrace::load(dir.file("bad")), Error) << text;
    }
    EXPECT_THROW(LinkTrace::load(dir.file("missing")), Error);
    EXPECT_THROW(LinkTrace::parse(std::string("1\n2\0junk\n", 9), "nul"), Error);
    EXPECT_EQ(LinkTrace::parse("1\r\n\n3\n", "crlf").timestamps_ms(),
              (std::vector<uint32_t>{1, 3}));
}

TEST(LinkTrace, CountsOpportunitiesAcrossLoops) {
    // Period 10: packets at 0, 0, 3, 10; the entry at 10 is the next loop's time 10.
    const auto trace = LinkTrace::from_timestamps({0, 0, 3, 10}, "t");
    EXPECT_EQ(trace.opportunities_before(0), 0u);
    EXPECT_EQ(trace.opportunities_before(1), 2u);
    EXPECT_EQ(trace.opportunities_before(4), 3u);
    EXPECT_EQ(trace.opportunities_before(10), 3u);  // the "10" happens at 10, not before
    EXPECT_EQ(trace.opportunities_before(11), 6u);  // 10 (old loop), 10 and 10 (new loop's 0s)
    EXPECT_EQ(trace.opportunities_before(20), 7u);
    EXPECT_EQ(trace.opportunities(0, 100), 4u * 10 - 1);  // the 10th loop's "10" is at 100
    EXPECT_EQ(trace.opportunities(0, 101), 4u * 10 + 2);
    EXPECT_EQ(trace.opportunities(5, 15), 4u);  // 10, 10, 10, 13
}

// Walking a cursor over a span must agree with the capacity the accuracy checks use.
TEST(LinkCursor, WalkMatchesCapacityForScalesAndOffsets) {
    auto trace = std::make_shared<LinkTrace>(
        LinkTrace::from_timestamps({0, 0, 1, 4, 4, 4, 9, 15, 15, 20}, "t"));
    for (double scale : {1.0, 0.37, 2.5, 8.0}) {
        for (int64_t start_ms : {0, 3, 17}) {
            LinkConfig link;
            link.trace = trace;
            link.trace_scale = scale;
            link.trace_start_ms = start_ms;
            LinkCursor cursor(link);
            uint64_t walked = 0;
            const int64_t end_ns = 333'000'000;
            for (; cursor.time_ns() < end_ns; cursor.advance()) {
                EXPECT_GT(cursor.bytes(), 0u);
                walked += cursor.bytes();
            }
            EXPECT_EQ(static_cast<double>(walked), link.capacity_bytes(0, 0.333))
                << "scale " << scale << " start " << start_ms;
        }
    }
    // The scale multiplies capacity: x8 over many periods is 8 times x1.
    LinkConfig one, eight;
    one.trace = eight.trace = trace;
    eight.trace_scale = 8;
    EXPECT_DOUBLE_EQ(eight.capacity_bytes(0, 10), 8 * one.capacity_bytes(0, 10));
}

TEST(LinkCursor, SkipDropsIdleOpportunities) {
    LinkConfig link;
    link.rate_mbps = 12;  // one 1500-byte packet per millisecond
    LinkCursor cursor(link);
    EXPECT_EQ(cursor.time_ns(), 0);
    cursor.skip_to(5'500'000);
    EXPECT_EQ(cursor.time_ns(), 6'000'000);
    cursor.skip_to(1'000'000);  // never backwards
    EXPECT_EQ(cursor.time_ns(), 6'000'000);
    EXPECT_DOUBLE_EQ(link.capacity_bytes(0, 1), 1.5e6);
}

TEST(LinkConfig, ValidatesSettings) {
    LinkConfig link;
    link.rate_mbps = -1;
    EXPECT_THROW(link.validate(), Error);
    link.rate_mbps = 10;
    link.trace = std::make_shared<LinkTrace>(LinkTrace::from_timestamps({1}, "t"));
    EXPECT_THROW(link.validate(), Error);  // both a trace and a rate
    link.rate_mbps = 0;
    link.trace_scale = 0;
    EXPECT_THROW(link.validate(), Error);
    link.trace_scale = 1;
    link.rtt_ms = -3;
    EXPECT_THROW(link.validate(), Error);
}

// The pacer alone, without sockets: credit granted over time follows the link's capacity.
TEST(LinkPacer, GrantsCreditAtTheLinkRate) {
    LinkConfig link;
    link.rate_mbps = 120;  // 10 packets per millisecond
    StopSignal stop;
    LinkPacer pacer(link, LinkPacer::Clock::now());
    pacer.begin_body();
    const auto start = LinkPacer::Clock::now();
    size_t granted = 0;
    while (granted < 3'000'000) granted += pacer.wait_for_credit(64 * 1024, stop);
    const double seconds = std::chrono::duration<double>(LinkPacer::Clock::now() - start).count();
    EXPECT_NEAR(seconds, 3e6 / 15e6, 0.2 * 0.05);  // 0.2 s within 5%
}

TEST(LinkPacer, StopWakesAWaitingPacer) {
    LinkConfig link;
    link.trace = std::make_shared<LinkTrace>(LinkTrace::from_timestamps({0, 60000}, "gap"));
    StopSignal stop;
    LinkPacer pacer(link, LinkPacer::Clock::now());
    pacer.begin_body();
    // A body that starts within millisecond 0 may use its opportunity (Mahimahi's granularity).
    EXPECT_EQ(pacer.wait_for_credit(1500, stop), 1500u);
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        stop.request_stop();
    });
    const auto start = LinkPacer::Clock::now();
    EXPECT_EQ(pacer.wait_for_credit(1500, stop), 0u);  // would wait 60 s
    EXPECT_LT(LinkPacer::Clock::now() - start, std::chrono::seconds(2));
    stopper.join();
}

}  // namespace
}  // namespace sparkv
