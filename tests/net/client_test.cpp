#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/timer.h"
#include "net/unit_client.h"
#include "net_fixture.h"

namespace sparkv {
namespace {

using testing::start_server;
using testing::TestStore;

// Collects what a client hands over, thread-safely.
struct Sink {
    std::mutex mutex;
    std::vector<ReceivedUnit> units;
    std::vector<UnitFailure> failures;
    std::atomic<int> arrivals{0};

    ClientCallbacks callbacks() {
        ClientCallbacks c;
        c.on_unit = [this](ReceivedUnit&& u) {
            std::lock_guard lock(mutex);
            units.push_back(std::move(u));
            ++arrivals;
        };
        c.on_failure = [this](const UnitFailure& f) {
            std::lock_guard lock(mutex);
            failures.push_back(f);
        };
        return c;
    }
    std::vector<std::pair<int, int>> order() {
        std::lock_guard lock(mutex);
        std::vector<std::pair<int, int>> out;
        for (const auto& u : units) out.emplace_back(u.unit.t, u.unit.l);
        return out;
    }
};

ClientConfig config_for(const UnitServer& server, int connections = ClientConfig{}.connections) {
    ClientConfig config;
    config.port = server.port();
    config.connections = connections;
    return config;
}

std::shared_ptr<FetchSchedule> all_units(const Manifest& m, const std::string& level,
                                         bool close = true) {
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : m.units) schedule->add({u.t, u.l, level});
    if (close) schedule->close();
    return schedule;
}

TEST(UnitClient, StreamsVerifiedUnitsOnOneConnection) {
    TestStore store(3, 4, {"int8", "q3h"}, 20'000);
    auto server = start_server(store);
    UnitClient client(config_for(*server, 1));
    EXPECT_EQ(client.fetch_manifest(store.manifest.context_id).to_json(), store.manifest.to_json());
    Sink sink;
    BandwidthEstimator estimator({.window = 8, .min_bytes = 4096});
    auto callbacks = sink.callbacks();
    callbacks.on_timing = [&](const UnitTiming& t) { estimator.add(t); };
    client.start(all_units(store.manifest, "q3h"), callbacks);
    client.wait();
    ASSERT_TRUE(sink.failures.empty()) << sink.failures.front().reason;
    ASSERT_EQ(sink.units.size(), 12u);
    for (const auto& u : sink.units) {
        EXPECT_EQ(u.bytes, store.unit("q3h", u.unit.t, u.unit.l));
        EXPECT_EQ(u.timing.bytes, u.bytes.size());
        EXPECT_LE(u.timing.request_s, u.timing.headers_s);
        EXPECT_LE(u.timing.headers_s, u.timing.first_byte_s);
        EXPECT_LE(u.timing.first_byte_s, u.timing.last_byte_s);
    }
    EXPECT_EQ(sink.order().front(), std::make_pair(0, 0));  // schedule order kept
    EXPECT_EQ(sink.order().back(), std::make_pair(2, 3));
    EXPECT_EQ(client.stats().connections_opened, 1u);  // manifest and all units on one connection
    EXPECT_EQ(client.stats().units_received, 12u);
    EXPECT_TRUE(estimator.bytes_per_second().has_value());
}

TEST(UnitClient, FollowsScheduleChangesWhileRunning) {
    TestStore store(4, 5, {"q5h"}, 30'000);
    LinkConfig link;
    link.rate_mbps = 40;  // ~6 ms per unit, so the schedule changes land mid-stream
    auto server = start_server(store, link);
    UnitClient client(config_for(*server));
    client.fetch_manifest(store.manifest.context_id);
    auto schedule = all_units(store.manifest, "q5h", /*close=*/false);
    ASSERT_FALSE(schedule->add({0, 0, "q5h"}));  // already pending
    Sink sink;
    client.start(schedule, sink.callbacks());
    ASSERT_TRUE(testing::wait_for([&] { return sink.arrivals >= 2; }));
    // The planner changes its mind: (3, 4) is urgent, (2, 2) is no longer needed, and (1, 1)
    // was taken out and comes back last.
    const long arrived_before = static_cast<long>(sink.arrivals.load());
    ASSERT_TRUE(schedule->move_to_front(3, 4));
    ASSERT_TRUE(schedule->remove(2, 2));
    ASSERT_TRUE(schedule->remove(1, 1));
    ASSERT_TRUE(schedule->add({1, 1, "q5h"}));
    schedule->close();
    client.wait();
    ASSERT_TRUE(sink.failures.empty());
    const auto order = sink.order();
    ASSERT_EQ(order.size(), 19u);
    const auto position = [&](int t, int l) {
        return std::find(order.begin(), order.end(), std::make_pair(t, l)) - order.begin();
    };
    // Only units already in or on their way came before it (each connection may have taken one
    // more while the schedule was being changed).
    EXPECT_LE(position(3, 4), arrived_before + 2 * ClientConfig{}.connections);
    EXPECT_EQ(position(2, 2), static_cast<long>(order.size()));  // never fetched
    // Taken last; a unit another connection took just before may still arrive after it.
    EXPECT_GE(position(1, 1), static_cast<long>(order.size()) - ClientConfig{}.connections);
}

// Several connections of one client are one device on one radio: an emulating server paces them
// as one link, and the client measures that link, not each body's share of it.
TEST(UnitClient, ConnectionsShareOneEmulatedLink) {
    TestStore store(2, 4, {"fp16"}, 100'000);
    LinkConfig link;
    link.rate_mbps = 8;  // 1 MB/s: 8 units of ~100 KB take ~0.8 s on one link, ~0.4 s on two
    auto server = start_server(store, link);
    UnitClient client(config_for(*server, 2));
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    BandwidthEstimator estimator({.window = 8, .min_bytes = 4096});
    auto callbacks = sink.callbacks();
    callbacks.on_timing = [&](const UnitTiming& t) { estimator.add(t); };
    const double start = now_seconds();
    client.start(all_units(store.manifest, "fp16"), callbacks);
    client.wait();
    const double seconds = now_seconds() - start;
    ASSERT_TRUE(sink.failures.empty()) << sink.failures.front().reason;
    ASSERT_EQ(sink.units.size(), 8u);
    EXPECT_EQ(client.stats().connections_opened, 2u);
    uint64_t bytes = 0;
    for (const auto& u : sink.units) bytes += u.bytes.size();
    EXPECT_GT(seconds, 0.85 * static_cast<double>(bytes) / 1e6);  // not twice the link
    ASSERT_TRUE(estimator.bytes_per_second().has_value());
    EXPECT_NEAR(*estimator.bytes_per_second(), 1e6, 0.3e6);  // the link, not half of it
}

// With a round trip per request, a second connection asks for the next unit while the current
// one is on the link.
TEST(UnitClient, SecondConnectionHidesTheRoundTrip) {
    TestStore store(2, 6, {"fp16"}, 40'000);
    LinkConfig link;
    link.rate_mbps = 64;  // 8 MB/s: ~5 ms per unit
    link.rtt_ms = 40;
    auto server = start_server(store, link);
    const auto stream_with = [&](int connections) {
        UnitClient client(config_for(*server, connections));
        client.fetch_manifest(store.manifest.context_id);
        Sink sink;
        const double start = now_seconds();
        client.start(all_units(store.manifest, "fp16"), sink.callbacks());
        client.wait();
        EXPECT_TRUE(sink.failures.empty());
        EXPECT_EQ(sink.units.size(), 12u);
        return now_seconds() - start;
    };
    const double one = stream_with(1), two = stream_with(2);
    EXPECT_GT(one, 12 * 0.040);  // a round trip per unit
    EXPECT_LT(two, 0.7 * one) << "one connection " << one << " s, two " << two << " s";
}

TEST(UnitClient, WithdrawsOneOfTwoUnitsInFlight) {
    TestStore store(1, 2, {"fp16"}, 200'000);
    LinkConfig link;
    link.rate_mbps = 2;  // both units on the link at once, ~1.6 s together
    auto server = start_server(store, link);
    UnitClient client(config_for(*server, 2));
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    client.start(all_units(store.manifest, "fp16"), sink.callbacks());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(client.cancel_unit(0, 1));
    client.wait();
    ASSERT_EQ(sink.failures.size(), 1u);
    EXPECT_EQ(sink.failures[0].kind, FailureKind::cancelled);
    EXPECT_EQ(sink.failures[0].unit.l, 1);
    ASSERT_EQ(sink.units.size(), 1u);
    EXPECT_EQ(sink.units[0].bytes, store.unit("fp16", 0, 0));
}

TEST(UnitClient, CancelsPromptlyMidUnit) {
    TestStore store(1, 2, {"fp16"}, 500'000);
    LinkConfig link;
    link.rate_mbps = 1;  // one unit takes ~4 s
    auto server = start_server(store, link);
    UnitClient client(config_for(*server));
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    client.start(all_units(store.manifest, "fp16"), sink.callbacks());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const double start = now_seconds();
    client.cancel();
    client.wait();
    EXPECT_LT(now_seconds() - start, 0.2);
    EXPECT_TRUE(sink.units.empty());
    EXPECT_TRUE(sink.failures.empty());  // cancellation is not a failure
}

TEST(UnitClient, ReportsFailuresWhenTheServerDiesMidTransfer) {
    TestStore store(2, 4, {"fp16"}, 100'000);
    LinkConfig link;
    link.rate_mbps = 8;  // 0.1 s per unit
    auto server = start_server(store, link);
    UnitClient client(config_for(*server, 1));  // the first failure: the unit cut mid-transfer
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    client.start(all_units(store.manifest, "fp16"), sink.callbacks());
    ASSERT_TRUE(testing::wait_for([&] { return sink.arrivals >= 2; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(40));  // mid-unit
    server->stop();
    const double stopped = now_seconds();
    client.wait();
    EXPECT_LT(now_seconds() - stopped, 1.0);  // the rest fails promptly, no hanging
    ASSERT_EQ(sink.units.size() + sink.failures.size(), 8u);
    ASSERT_GE(sink.failures.size(), 5u);
    EXPECT_EQ(sink.failures.front().kind, FailureKind::connection_lost)
        << sink.failures.front().reason;
    EXPECT_NE(sink.failures.front().reason.find("connection lost after"), std::string::npos);
    for (const auto& f : sink.failures)
        EXPECT_TRUE(f.kind == FailureKind::connection_lost || f.kind == FailureKind::unreachable)
            << f.reason;
    EXPECT_EQ(sink.failures.back().kind, FailureKind::unreachable) << sink.failures.back().reason;
    for (const auto& u : sink.units) EXPECT_EQ(u.bytes, store.unit("fp16", u.unit.t, u.unit.l));
}

TEST(UnitClient, ReportsDamagedUnitsAndGoesOn) {
    TestStore store(2, 4, {"q5h"}, 20'000);
    auto server = start_server(store);
    {  // flip one byte in place: same size, wrong checksum
        std::fstream f(store.unit_file("q5h", 0, 1),
                       std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(100);
        const char c = static_cast<char>(f.get());
        f.seekp(100);
        f.put(static_cast<char>(c ^ 0x40));
    }
    std::ofstream(store.unit_file("q5h", 0, 3), std::ios::app) << "trailing junk";  // longer
    std::filesystem::resize_file(store.unit_file("q5h", 1, 0), 1000);               // shorter
    std::filesystem::remove(store.unit_file("q5h", 1, 2));                          // gone
    UnitClient client(config_for(*server, 1));  // failures in schedule order
    client.fetch_manifest(store.manifest.context_id);
    auto schedule = all_units(store.manifest, "q5h", false);
    schedule->add({7, 0, "q5h"});  // no such chunk
    schedule->remove(0, 0);
    schedule->add({0, 0, "fp16"});  // no such level
    schedule->close();
    Sink sink;
    client.start(schedule, sink.callbacks());
    client.wait();
    EXPECT_EQ(sink.units.size(), 3u);
    const auto& f = sink.failures;
    ASSERT_EQ(f.size(), 6u);
    EXPECT_EQ(f[0].kind, FailureKind::checksum_mismatch);
    EXPECT_EQ(f[0].reason, "unit (0, 1): checksum mismatch");
    EXPECT_EQ(f[1].kind, FailureKind::size_mismatch) << f[1].reason;
    EXPECT_EQ(f[2].kind, FailureKind::size_mismatch) << f[2].reason;
    EXPECT_NE(f[2].reason.find("received 1000 bytes"), std::string::npos) << f[2].reason;
    EXPECT_EQ(f[3].kind, FailureKind::http_status) << f[3].reason;
    EXPECT_NE(f[3].reason.find("404"), std::string::npos) << f[3].reason;
    EXPECT_EQ(f[4].kind, FailureKind::not_in_manifest) << f[4].reason;
    EXPECT_EQ(f[5].kind, FailureKind::not_in_manifest) << f[5].reason;
    for (const auto& u : sink.units) EXPECT_EQ(u.bytes, store.unit("q5h", u.unit.t, u.unit.l));
}

TEST(UnitClient, TimesOutOnAStalledLink) {
    TestStore store(1, 2, {"q5h"}, 30'000);
    // 10 packets over the first 100 ms (more in a sanitizer build: a slow server must still get
    // the small manifest through), then nothing for 60 s.
    const auto step_ms = static_cast<uint32_t>(10 * testing::kSlowBuildFactor);
    std::vector<uint32_t> ms;
    for (uint32_t i = 0; i < 10; ++i) ms.push_back(i * step_ms);
    ms.push_back(60000);
    LinkConfig link;
    link.trace = std::make_shared<LinkTrace>(LinkTrace::from_timestamps(ms, "stall"));
    auto server = start_server(store, link);
    ClientConfig config = config_for(*server);
    config.read_timeout_s = 0.4;
    UnitClient client(config);
    client.fetch_manifest(store.manifest.context_id);  // small enough to pass before the stall
    Sink sink;
    const double start = now_seconds();
    client.start(all_units(store.manifest, "q5h"), sink.callbacks());
    client.wait();
    EXPECT_LT(now_seconds() - start, 2.0);
    ASSERT_EQ(sink.failures.size(), 2u);
    EXPECT_EQ(sink.failures[0].kind, FailureKind::timeout) << sink.failures[0].reason;
    EXPECT_NE(sink.failures[0].reason.find("timed out"), std::string::npos);
    EXPECT_EQ(sink.failures[1].kind, FailureKind::timeout) << sink.failures[1].reason;
}

TEST(UnitClient, RunsTheDecodeHookOffTheFetchThread) {
    TestStore store(1, 3, {"q5h"}, 5'000);
    auto server = start_server(store);
    UnitClient client(config_for(*server));
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    auto callbacks = sink.callbacks();
    callbacks.decode = [](const UnitRequest& u, std::span<const uint8_t> bytes) {
        if (u.l == 1) fail("bad unit header");
        return std::vector<uint8_t>(bytes.rbegin(), bytes.rend());
    };
    client.start(all_units(store.manifest, "q5h"), callbacks);
    client.wait();
    ASSERT_EQ(sink.units.size(), 2u);
    for (const auto& u : sink.units) {
        auto expected = store.unit("q5h", u.unit.t, u.unit.l);
        std::reverse(expected.begin(), expected.end());
        EXPECT_EQ(u.decoded, expected);
        EXPECT_GE(u.decode_s, 0);
    }
    ASSERT_EQ(sink.failures.size(), 1u);
    EXPECT_EQ(sink.failures[0].kind, FailureKind::decode);
    EXPECT_EQ(sink.failures[0].reason, "unit (0, 1): decode failed: bad unit header");
}

TEST(UnitClient, FetchesVerifiedTokenIds) {
    TestStore store(2, 1, {"q5h"}, 1000);
    auto server = start_server(store);
    UnitClient client(config_for(*server));
    EXPECT_THROW(client.fetch_tokens(), Error);  // no manifest yet
    client.fetch_manifest(store.manifest.context_id);
    EXPECT_EQ(client.fetch_tokens(), store.store.read_tokens(store.manifest));

    // Swapped token ids are refused even when the manifest's checksum is made to match them.
    const auto path = store.dir.path() / "store" / tokens_key(store.manifest);
    std::vector<int32_t> other(static_cast<size_t>(store.manifest.n_tokens), 5);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(other.data()),
               static_cast<std::streamsize>(other.size() * 4));
    EXPECT_THROW(client.fetch_tokens(), Error);
}

TEST(UnitClient, AThrowingUnitCallbackIsAReportedFailure) {
    TestStore store(1, 3, {"q5h"}, 5'000);
    auto server = start_server(store);
    UnitClient client(config_for(*server));
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    auto callbacks = sink.callbacks();
    callbacks.on_unit = [&](ReceivedUnit&& u) {
        if (u.unit.l == 2) fail("cache refused the unit");
        std::lock_guard lock(sink.mutex);
        sink.units.push_back(std::move(u));
    };
    client.start(all_units(store.manifest, "q5h"), callbacks);
    client.wait();
    EXPECT_EQ(sink.units.size(), 2u);
    ASSERT_EQ(sink.failures.size(), 1u);
    EXPECT_EQ(sink.failures[0].kind, FailureKind::decode);
    EXPECT_EQ(sink.failures[0].unit.l, 2);
    EXPECT_NE(sink.failures[0].reason.find("cache refused the unit"), std::string::npos);
}

TEST(UnitClient, WithdrawsAUnitInFlight) {
    TestStore store(1, 2, {"fp16"}, 500'000);
    LinkConfig link;
    link.rate_mbps = 2;  // one unit takes ~2 s
    auto server = start_server(store, link);
    // One connection: (0, 1) waits in the schedule while (0, 0) is in flight.
    UnitClient client(config_for(*server, 1));
    client.fetch_manifest(store.manifest.context_id);
    Sink sink;
    client.start(all_units(store.manifest, "fp16"), sink.callbacks());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // (0, 0) is mid-transfer
    EXPECT_FALSE(client.cancel_unit(0, 1));  // still pending in the schedule, not in flight
    const double start = now_seconds();
    EXPECT_TRUE(client.cancel_unit(0, 0));
    ASSERT_TRUE(testing::wait_for([&] {
        std::lock_guard lock(sink.mutex);
        return !sink.failures.empty();
    }));
    EXPECT_LT(now_seconds() - start, 1.0);  // cut, not waited out
    client.wait();
    ASSERT_EQ(sink.failures.size(), 1u);
    EXPECT_EQ(sink.failures[0].kind, FailureKind::cancelled);
    EXPECT_EQ(sink.failures[0].unit.l, 0);
    EXPECT_EQ(sink.order(), (std::vector<std::pair<int, int>>{{0, 1}}));
    EXPECT_EQ(client.stats().units_failed, 0u);  // a withdrawal is not a failure
}

TEST(UnitClient, ManifestErrorsAreActionable) {
    TestStore store(1, 1, {"q5h"}, 1000);
    auto server = start_server(store);
    {
        UnitClient client(config_for(*server));
        EXPECT_THROW(client.fetch_manifest("nope"), Error);
        try {
            client.fetch_manifest(std::string(64, 'a'));
            FAIL();
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
        }
        EXPECT_THROW(client.start(std::make_shared<FetchSchedule>(), {}), Error);  // no manifest
    }
    server->stop();
    UnitClient orphan(config_for(*server));
    EXPECT_THROW(orphan.fetch_manifest(store.manifest.context_id), Error);
}

}  // namespace
}  // namespace sparkv
