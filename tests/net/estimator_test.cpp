#include <gtest/gtest.h>

#include "common/error.h"
#include "net/bandwidth_estimator.h"

namespace sparkv {
namespace {

UnitTiming timing(uint64_t bytes, double latency_s, double transfer_s) {
    UnitTiming t;
    t.bytes = bytes;
    t.request_s = 100;
    t.headers_s = 100 + latency_s;
    t.first_byte_s = t.headers_s + 0.001;
    t.last_byte_s = t.headers_s + transfer_s;
    return t;
}

// Back-to-back units whose own rates swing 10x: the delivered rate is bytes over wall time,
// latencies and all, over the units that finished inside the window.
TEST(BandwidthEstimator, DeliveredRateIsBytesOverWallTimeInTheWindow) {
    BandwidthEstimator estimator;
    double t = 10;
    const auto unit = [&](uint64_t bytes, double latency_s, double transfer_s) {
        UnitTiming u;
        u.bytes = bytes;
        u.request_s = t;
        u.headers_s = u.first_byte_s = t + latency_s;
        u.last_byte_s = t = u.headers_s + transfer_s;
        estimator.add(u);
    };
    EXPECT_FALSE(estimator.delivered_bytes_per_second(t, 1.0, 1));
    unit(100'000, 0.01, 0.1);   // 1 MB/s on its own
    unit(100'000, 0.01, 0.01);  // 10 MB/s on its own
    unit(100'000, 0.01, 0.1);
    unit(100'000, 0.01, 0.01);
    // 400 kB from the first request (10.0) to the last byte (10.26).
    EXPECT_NEAR(*estimator.delivered_bytes_per_second(t, 1.0, 4), 400'000 / 0.26, 1e-6);
    EXPECT_FALSE(estimator.delivered_bytes_per_second(t, 1.0, 5));  // too few units
    // A window that holds only the last unit (it ended at 10.26; the one before at 10.24).
    EXPECT_NEAR(*estimator.delivered_bytes_per_second(t, 0.01, 1), 100'000 / 0.02, 1e-6);
    // Nothing finished in the last second: no evidence.
    EXPECT_FALSE(estimator.delivered_bytes_per_second(t + 2, 1.0, 1));
    // Fitted: 0.26 s of wall time, 4 x 10 ms of it latency, 400 kB over the remaining 0.22 s.
    EXPECT_NEAR(*estimator.fitted_bytes_per_second(), 400'000 / 0.22, 1e-3);
}

// Two connections: bodies overlap on the link, and each unit's own rate is its share of it.
TEST(BandwidthEstimator, OverlappingBodiesMeasureTheLink) {
    BandwidthEstimator estimator({.window = 8, .min_bytes = 1000});
    // A link of 1 MB/s carrying two 100 kB bodies at once from 0.01 s: both end at 0.21 s.
    for (int i = 0; i < 2; ++i) {
        UnitTiming u;
        u.bytes = 100'000;
        u.request_s = 0;
        u.headers_s = u.first_byte_s = 0.01;
        u.last_byte_s = 0.21;
        // What the client's link accounting reports: the first unit to end saw both bodies'
        // bytes since the link became busy; the second ended with it, so it is no sample.
        u.link_start_s = i == 0 ? 0.01 : -1.0;
        u.link_bytes = i == 0 ? 200'000 : 0;
        if (i == 0) {
            EXPECT_NEAR(u.throughput_bytes_per_s(), 1e6, 1);
        }
        estimator.add(u);
    }
    EXPECT_EQ(estimator.samples(), 1u);
    EXPECT_NEAR(*estimator.bytes_per_second(), 1e6, 1);
    // Busy from 0.01 to 0.21 s, counted once: 200 kB over 0.2 s.
    EXPECT_NEAR(*estimator.fitted_bytes_per_second(), 1e6, 1);
}

TEST(BandwidthEstimator, HarmonicMeanOfRecentThroughputs) {
    BandwidthEstimator estimator({.window = 3, .min_bytes = 1000});
    EXPECT_FALSE(estimator.bytes_per_second());
    EXPECT_FALSE(estimator.predict_seconds(100));
    estimator.add(timing(1'000'000, 0.05, 1.0));  // 1 MB/s
    EXPECT_DOUBLE_EQ(*estimator.bytes_per_second(), 1e6);
    estimator.add(timing(1'000'000, 0.05, 0.25));                              // 4 MB/s
    EXPECT_DOUBLE_EQ(*estimator.bytes_per_second(), 2 / (1 / 1e6 + 1 / 4e6));  // 1.6 MB/s
    EXPECT_NEAR(*estimator.latency_seconds(), 0.05, 1e-12);
    // prediction = latency + bytes / bandwidth
    EXPECT_NEAR(*estimator.predict_seconds(800'000), 0.05 + 0.5, 1e-9);
}

TEST(BandwidthEstimator, WindowForgetsOldSamples) {
    BandwidthEstimator estimator({.window = 2, .min_bytes = 1000});
    estimator.add(timing(1'000'000, 0.01, 10.0));  // 0.1 MB/s, soon forgotten
    estimator.add(timing(2'000'000, 0.01, 1.0));
    estimator.add(timing(2'000'000, 0.01, 1.0));
    EXPECT_EQ(estimator.samples(), 2u);
    EXPECT_DOUBLE_EQ(*estimator.bytes_per_second(), 2e6);
}

TEST(BandwidthEstimator, OutlierCannotInflateTheEstimate) {
    BandwidthEstimator estimator({.window = 4, .min_bytes = 1000});
    for (int i = 0; i < 3; ++i) estimator.add(timing(1'000'000, 0.01, 1.0));
    estimator.add(timing(1'000'000, 0.01, 0.001));     // one absurdly fast unit: 1 GB/s
    EXPECT_LT(*estimator.bytes_per_second(), 1.34e6);  // arithmetic mean would be ~250 MB/s
}

TEST(BandwidthEstimator, SmallBodiesOnlyInformLatency) {
    BandwidthEstimator estimator({.window = 4, .min_bytes = 16 * 1024});
    estimator.add(timing(500, 0.2, 0.00001));
    EXPECT_FALSE(estimator.bytes_per_second());
    EXPECT_NEAR(*estimator.latency_seconds(), 0.2, 1e-12);
    EXPECT_THROW(BandwidthEstimator({.window = 0, .min_bytes = 1}), Error);
}

}  // namespace
}  // namespace sparkv
