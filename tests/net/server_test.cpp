#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/timer.h"
#include "net/unit_client.h"
#include "net_fixture.h"

namespace sparkv {
namespace {

using testing::raw_get_status;
using testing::raw_http;
using testing::start_server;
using testing::TestStore;

std::string unit_path(const Manifest& m, const std::string& level, int t, int l) {
    return fmt::format("/{}", unit_key(m, level, t, l));
}

std::string as_string(const std::vector<uint8_t>& bytes) {
    return {bytes.begin(), bytes.end()};
}

TEST(Server, ServesHealthListManifestAndUnits) {
    TestStore store(2, 3, {"int8", "q3h"}, 3000);
    auto server = start_server(store);
    httplib::Client http("127.0.0.1", server->port());

    auto health = http.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "ok");

    auto list = http.Get("/contexts");
    ASSERT_TRUE(list);
    const auto contexts = nlohmann::json::parse(list->body)["contexts"];
    ASSERT_EQ(contexts.size(), 1u);
    EXPECT_EQ(contexts[0]["id"], store.manifest.context_id);
    EXPECT_EQ(contexts[0]["bytes"]["q3h"], store.manifest.total_bytes("q3h"));

    auto manifest = http.Get(fmt::format("/{}", manifest_key(store.manifest.context_id)));
    ASSERT_TRUE(manifest);
    EXPECT_EQ(manifest->status, 200);
    EXPECT_EQ(manifest->get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(Manifest::parse(manifest->body).to_json(), store.manifest.to_json());

    auto unit = http.Get(unit_path(store.manifest, "q3h", 1, 2));
    ASSERT_TRUE(unit);
    EXPECT_EQ(unit->status, 200);
    EXPECT_EQ(unit->body, as_string(store.unit("q3h", 1, 2)));
    EXPECT_EQ(unit->get_header_value("Accept-Ranges"), "bytes");
    // The URL is the file's path relative to the store: a static server would serve the same.
    std::ifstream file(store.backend->root() / unit_key(store.manifest, "q3h", 1, 2),
                       std::ios::binary);
    EXPECT_EQ(unit->body, std::string(std::istreambuf_iterator<char>(file), {}));

    // The token ids are an immutable object of the context too.
    auto tokens = http.Get(fmt::format("/{}", tokens_key(store.manifest)));
    ASSERT_TRUE(tokens);
    EXPECT_EQ(tokens->status, 200);
    EXPECT_EQ(tokens->body.size(), store.manifest.tokens.bytes);
    EXPECT_EQ(tokens->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
}

TEST(Server, UnknownObjectsAre404WithJsonError) {
    TestStore store(1, 2, {"int8"}, 500);
    auto server = start_server(store);
    httplib::Client http("127.0.0.1", server->port());
    const std::string other_id(64, 'e');
    const std::vector<std::string> paths = {
        fmt::format("/{}", manifest_key(other_id)),
        unit_path(store.manifest, "int8", 5, 0),
        unit_path(store.manifest, "fp16", 0, 0),
        "/contexts/" + store.manifest.context_id + "/units/int8/t0_lx.kvu",
        "/contexts/" + store.manifest.context_id + "/other.json",
        "/nothing-here",
    };
    for (const auto& path : paths) {
        auto res = http.Get(path);
        ASSERT_TRUE(res) << path;
        EXPECT_EQ(res->status, 404) << path;
        const auto body = nlohmann::json::parse(res->body);
        EXPECT_TRUE(body["error"].is_string()) << path;
    }
    auto res = http.Get(unit_path(store.manifest, "int8", 5, 0));
    EXPECT_NE(res->body.find("unit (5, 0) at level int8 not found"), std::string::npos)
        << res->body;
}

TEST(Server, RejectsPathsThatLeaveTheStore) {
    TestStore store(1, 1, {"int8"}, 500);
    // A secret next to the store, and a symlink inside the store that points at it.
    std::ofstream(store.dir.path() / "secret.txt") << "secret";
    const auto units_dir = store.unit_file("int8", 0, 0).parent_path();
    std::filesystem::create_symlink(store.dir.path() / "secret.txt", units_dir / "t0_l9.kvu");
    auto server = start_server(store);
    const int port = server->port();
    const std::string id = store.manifest.context_id;
    const std::string units = "/contexts/" + id + "/attempts/" + store.manifest.attempt + "/units";
    for (const std::string& target : std::vector<std::string>{
             "/../secret.txt", "/contexts/../../secret.txt", "/contexts/%2e%2e/%2e%2e/secret.txt",
             units + "/int8/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/secret.txt",
             units + "/..%2f..%2f..%2f..%2f..%2f..%2fsecret.txt", "//etc/passwd",
             "/contexts/" + id + "/attempts/..%2f..%2f..%2fsecret.txt/tokens.i32",
             "/contexts/" + id + "/./manifest.json", "/contexts/" + id + "/.tmp-x",
             "/contexts/%00/manifest.json"}) {
        const int status = raw_get_status(port, target);
        EXPECT_TRUE(status == 400 || status == 404) << target << " -> " << status;
    }
    EXPECT_EQ(raw_get_status(port, units + "/int8/t0_l9.kvu"), 403);
    const std::string reply = raw_http(port, "GET " + units +
                                                 "/int8/t0_l9.kvu HTTP/1.1\r\nHost: x\r\n"
                                                 "Connection: close\r\n\r\n");
    EXPECT_EQ(reply.find("secret\n"), std::string::npos);
    EXPECT_EQ(reply.find("\r\n\r\nsecret"), std::string::npos);
    EXPECT_EQ(raw_get_status(port, fmt::format("/{}", manifest_key(id))),
              200);  // the server still works
    EXPECT_GE(server->stats().rejected, 8u);
}

TEST(Server, ServesByteRanges) {
    TestStore store(1, 1, {"int8"}, 10'000);
    auto server = start_server(store);
    httplib::Client http("127.0.0.1", server->port());
    const std::string path = unit_path(store.manifest, "int8", 0, 0);
    const std::string whole = as_string(store.unit("int8", 0, 0));
    const size_t size = whole.size();
    struct Case {
        std::string range;
        size_t first, length;
    };
    for (const Case& c : std::vector<Case>{{"bytes=0-99", 0, 100},
                                           {"bytes=100-", 100, size - 100},
                                           {"bytes=-50", size - 50, 50},
                                           {"bytes=9000-99999999", 9000, size - 9000},
                                           {"bytes=-99999999", 0, size}}) {
        auto res = http.Get(path, {{"Range", c.range}});
        ASSERT_TRUE(res) << c.range;
        EXPECT_EQ(res->status, 206) << c.range;
        EXPECT_EQ(res->body, whole.substr(c.first, c.length)) << c.range;
        EXPECT_EQ(res->get_header_value("Content-Range"),
                  fmt::format("bytes {}-{}/{}", c.first, c.first + c.length - 1, size));
    }
    auto unsatisfiable = http.Get(path, {{"Range", fmt::format("bytes={}-", size)}});
    ASSERT_TRUE(unsatisfiable);
    EXPECT_EQ(unsatisfiable->status, 416);
    EXPECT_TRUE(nlohmann::json::parse(unsatisfiable->body)["error"].is_string());
    // Several ranges: a multipart/byteranges body (tests/net/hardening_test.cpp has the details).
    auto multi = http.Get(path, {{"Range", "bytes=0-1,5-9"}});
    ASSERT_TRUE(multi);
    EXPECT_EQ(multi->status, 206);
    EXPECT_EQ(multi->get_header_value("Content-Type").rfind("multipart/byteranges", 0), 0u);
    auto res = http.Get(path, {{"Range", "bytes=abc"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 416);
    res = http.Get(path);  // the connection still serves whole objects afterwards
    EXPECT_EQ(res->body, whole);
}

TEST(Server, ServesManyConcurrentClientsWithoutErrors) {
    TestStore store(4, 6, {"q5h"}, 40'000);
    auto server = start_server(store, {}, 40);
    constexpr int kClients = 24;
    std::atomic<int> failures{0}, received{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            ClientConfig config;
            config.port = server->port();
            UnitClient client(config);
            client.fetch_manifest(store.manifest.context_id);
            auto schedule = std::make_shared<FetchSchedule>();
            for (int i = 0; i < 24; ++i) {
                const int unit = (i + c) % 24;
                schedule->add({unit / 6, unit % 6, "q5h"});
            }
            schedule->close();
            ClientCallbacks callbacks;
            callbacks.on_unit = [&](ReceivedUnit&&) { ++received; };
            callbacks.on_failure = [&](const UnitFailure&) { ++failures; };
            client.start(schedule, callbacks);
            client.wait();
        });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(received, kClients * 24);
    EXPECT_GE(server->stats().connections, static_cast<uint64_t>(kClients));
    EXPECT_EQ(server->stats().aborted_bodies, 0u);
}

TEST(Server, AppliesTheBaseRtt) {
    TestStore store(1, 1, {"int8"}, 1000);
    LinkConfig link;
    link.rtt_ms = 120;
    auto slow = start_server(store, link);
    auto fast = start_server(store);
    const std::string path = unit_path(store.manifest, "int8", 0, 0);
    auto first_byte_s = [&](int port) {
        httplib::Client http("127.0.0.1", port);
        http.Get("/health");  // connect first, so only the request is timed
        const double start = now_seconds();
        double first = 0;
        http.Get(
            path,
            [&](const httplib::Response&) {
                first = now_seconds() - start;
                return true;
            },
            [](const char*, size_t) { return true; });
        return first;
    };
    const double with_rtt = first_byte_s(slow->port());
    const double without = first_byte_s(fast->port());
    EXPECT_GE(with_rtt, 0.120);
    EXPECT_LT(with_rtt, 0.120 + 0.05 * testing::kSlowBuildFactor);
    EXPECT_LT(without, 0.03 * testing::kSlowBuildFactor);
}

TEST(Server, StopsPromptlyWhileBodiesArePaced) {
    TestStore store(1, 1, {"int8"}, 400'000);
    LinkConfig link;
    link.rate_mbps = 1;  // the body would take ~3 s
    auto server = start_server(store, link);
    std::thread client([&] {
        httplib::Client http("127.0.0.1", server->port());
        http.Get(unit_path(store.manifest, "int8", 0, 0));
    });
    // Stop only once the paced body is under way (a loaded machine may take a while to get there).
    for (int i = 0; i < 500 && server->stats().body_bytes_sent == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(server->stats().body_bytes_sent, 0u);
    const double start = now_seconds();
    server->stop();
    EXPECT_LT(now_seconds() - start, 1.0);
    client.join();
    EXPECT_EQ(server->stats().aborted_bodies, 1u);
}

}  // namespace
}  // namespace sparkv
