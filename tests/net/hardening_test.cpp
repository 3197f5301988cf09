// The server against hostile clients: header and URI limits, slow and idle connections, the
// connection caps, the per-address request rate, methods, byte-range edge cases, and a thousand
// idle connections that must not cost a thread each.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/timer.h"
#include "net/unit_client.h"
#include "net_fixture.h"

namespace sparkv {
namespace {

using testing::TestStore;
using testing::wait_for;

// A client socket connected to the server from `source` (any 127/8 address is local).
class RawConnection {
  public:
    RawConnection(int port, const char* source = "127.0.0.1") {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, source, &local.sin_addr);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    }
    ~RawConnection() { ::close(fd_); }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    bool connected() const { return connected_; }
    bool send(const std::string& bytes) {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }
    // Everything until the server closes (or `seconds` pass).
    std::string read_all(double seconds = 5) {
        std::string reply;
        const double deadline = now_seconds() + seconds;
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            const int left = static_cast<int>((deadline - now_seconds()) * 1000);
            if (left <= 0 || ::poll(&p, 1, left) <= 0) break;
            char buffer[4096];
            const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
            if (n <= 0) {
                closed_ = true;
                break;
            }
            reply.append(buffer, static_cast<size_t>(n));
        }
        return reply;
    }
    bool closed() const { return closed_; }

  private:
    int fd_ = -1;
    bool connected_ = false;
    bool closed_ = false;
};

int status_of(const std::string& reply) {
    return reply.size() >= 12 ? std::stoi(reply.substr(9, 3)) : -1;
}

std::unique_ptr<UnitServer> server_with(const TestStore& store,
                                        const std::function<void(ServerConfig&)>& adjust) {
    ServerConfig config;
    config.keep_alive_s = 2;
    config.threads = 8;
    adjust(config);
    auto server = std::make_unique<UnitServer>(store.backend, config);
    server->start();
    return server;
}

std::string get_request(const std::string& target, const std::string& extra = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

TEST(Hardening, OversizedHeadersAndTargetsAreRefused) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig&) {});
    {
        RawConnection c(server->port());
        ASSERT_TRUE(c.send(get_request("/health", "X-Big: " + std::string(10'000, 'a') + "\r\n")));
        const std::string reply = c.read_all();
        EXPECT_EQ(status_of(reply), 431) << reply.substr(0, 200);
        EXPECT_NE(reply.find("\"error\""), std::string::npos);
        EXPECT_TRUE(c.closed());
    }
    {
        RawConnection c(server->port());
        ASSERT_TRUE(c.send(get_request("/" + std::string(3000, 'x'), "Connection: close\r\n")));
        const std::string reply = c.read_all();
        EXPECT_EQ(status_of(reply), 414) << reply.substr(0, 200);
        EXPECT_TRUE(c.closed());
    }
    EXPECT_EQ(server->stats().header_too_large, 1u);
    EXPECT_EQ(testing::raw_get_status(server->port(), "/health"), 200);
}

TEST(Hardening, SlowlorisHeadersTimeOutWith408) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig& c) { c.limits.header_timeout_s = 0.3; });
    RawConnection c(server->port());
    const double start = now_seconds();
    // One header byte every 50 ms: always active, never done. The deadline counts from the
    // request's first byte, so trickling does not extend it.
    ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\n"));
    std::string reply;
    for (int i = 0; i < 100 && reply.empty(); ++i) {
        c.send("X");
        reply = c.read_all(0.05);
    }
    reply += c.read_all(2);
    EXPECT_EQ(status_of(reply), 408) << reply;
    EXPECT_LT(now_seconds() - start, 2.0);
    EXPECT_TRUE(c.closed());
    EXPECT_EQ(server->stats().header_timeouts, 1u);
}

TEST(Hardening, IdleConnectionsAreClosed) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig& c) { c.keep_alive_s = 1; });
    RawConnection silent(server->port());
    RawConnection after_request(server->port());
    ASSERT_TRUE(after_request.send(get_request("/health")));
    const double start = now_seconds();
    EXPECT_EQ(silent.read_all(5), "");
    EXPECT_TRUE(silent.closed());
    const std::string reply = after_request.read_all(5);
    EXPECT_EQ(status_of(reply), 200);
    EXPECT_TRUE(after_request.closed());
    EXPECT_GT(now_seconds() - start, 0.9);
    EXPECT_EQ(server->stats().idle_closed, 2u);
}

TEST(Hardening, ConnectionCapAnswers503AndRecovers) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig& c) { c.limits.max_connections = 4; });
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 4; ++i)
        held.push_back(std::make_unique<RawConnection>(server->port(), "127.0.0.1"));
    ASSERT_TRUE(wait_for([&] { return server->stats().open_connections == 4; }));
    RawConnection extra(server->port(), "127.0.0.2");
    const std::string reply = extra.read_all();
    EXPECT_EQ(status_of(reply), 503) << reply;
    EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos);
    EXPECT_NE(reply.find("connection limit"), std::string::npos);
    held.pop_back();
    ASSERT_TRUE(wait_for([&] { return server->stats().open_connections == 3; }));
    EXPECT_EQ(testing::raw_get_status(server->port(), "/health"), 200);
    EXPECT_EQ(server->stats().refused_busy, 1u);
}

TEST(Hardening, OneAddressCannotHoldAllConnections) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server =
        server_with(store, [](ServerConfig& c) { c.limits.max_connections_per_address = 3; });
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 3; ++i)
        held.push_back(std::make_unique<RawConnection>(server->port(), "127.0.0.3"));
    ASSERT_TRUE(wait_for([&] { return server->stats().open_connections == 3; }));
    RawConnection fourth(server->port(), "127.0.0.3");
    EXPECT_EQ(status_of(fourth.read_all()), 429);
    // Other addresses are served as usual.
    RawConnection other(server->port(), "127.0.0.4");
    ASSERT_TRUE(other.send(get_request("/health", "Connection: close\r\n")));
    EXPECT_EQ(status_of(other.read_all()), 200);
    EXPECT_EQ(server->stats().refused_address, 1u);
}

TEST(Hardening, RequestFloodsAreRateLimitedPerAddress) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig& c) {
        c.limits.requests_per_second = 0.5;  // no refill to speak of during the test
        c.limits.request_burst = 6;
    });
    // The connection takes one token, five requests the rest; the sixth is refused.
    RawConnection flood(server->port(), "127.0.0.5");
    std::string pipeline;
    for (int i = 0; i < 8; ++i) pipeline += get_request("/health");
    ASSERT_TRUE(flood.send(pipeline));
    const std::string replies = flood.read_all();
    size_t ok = 0;
    for (size_t at = 0; (at = replies.find("HTTP/1.1 200", at)) != std::string::npos; ++at) ++ok;
    EXPECT_EQ(ok, 5u) << replies;
    EXPECT_NE(replies.find("HTTP/1.1 429"), std::string::npos);
    EXPECT_TRUE(flood.closed());
    // The address stays limited (a reconnect costs a token too); others do not notice.
    RawConnection again(server->port(), "127.0.0.5");
    EXPECT_EQ(status_of(again.read_all()), 429);
    RawConnection other(server->port(), "127.0.0.6");
    ASSERT_TRUE(other.send(get_request("/health", "Connection: close\r\n")));
    EXPECT_EQ(status_of(other.read_all()), 200);
    EXPECT_EQ(server->stats().rate_limited, 2u);
}

TEST(Hardening, OnlyGetAndHeadAreAllowed) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig&) {});
    RawConnection c(server->port());
    ASSERT_TRUE(c.send("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    const std::string reply = c.read_all();
    EXPECT_EQ(status_of(reply), 405) << reply;
    EXPECT_NE(reply.find("Allow: GET, HEAD"), std::string::npos);
    EXPECT_TRUE(c.closed());  // the unread body never becomes a "request"
    httplib::Client http("127.0.0.1", server->port());
    auto head = http.Head(fmt::format("/{}", manifest_key(store.manifest.context_id)).c_str());
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_TRUE(head->body.empty());
}

TEST(Hardening, PipelinedRequestsAreAnsweredInOrder) {
    TestStore store(1, 1, {"int8"}, 500);
    auto server = server_with(store, [](ServerConfig&) {});
    RawConnection c(server->port());
    ASSERT_TRUE(c.send(get_request("/health") + get_request("/nothing") +
                       get_request("/health", "Connection: close\r\n")));
    const std::string replies = c.read_all();
    const size_t first = replies.find("HTTP/1.1 200"), second = replies.find("HTTP/1.1 404"),
                 third = replies.find("HTTP/1.1 200", first + 1);
    EXPECT_NE(first, std::string::npos);
    EXPECT_NE(third, std::string::npos);
    EXPECT_TRUE(first < second && second < third) << replies;
    EXPECT_TRUE(c.closed());
}

TEST(Hardening, AThousandIdleConnectionsHoldNoThreadsAndHonestClientsAreServed) {
    TestStore store(2, 2, {"int8"}, 4000);
    auto server = server_with(store, [](ServerConfig& c) {
        c.keep_alive_s = 30;
        c.threads = 8;
    });
    auto threads = [] {
        size_t n = 0;
        for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
        return n;
    };
    ASSERT_EQ(testing::raw_get_status(server->port(), "/health"), 200);  // workers are up
    const size_t threads_before = threads();
    std::vector<std::unique_ptr<RawConnection>> idle;
    for (int i = 0; i < 1000; ++i) {
        // 16 client addresses (the per-address limit is 64).
        const std::string source = fmt::format("127.0.1.{}", i % 16 + 1);
        idle.push_back(std::make_unique<RawConnection>(server->port(), source.c_str()));
        ASSERT_TRUE(idle.back()->connected()) << i;
    }
    ASSERT_TRUE(wait_for([&] { return server->stats().open_connections == 1000; }))
        << server->stats().open_connections;
    EXPECT_LE(threads(), threads_before + 2);  // idle connections cost no thread

    ClientConfig config;
    config.port = server->port();
    UnitClient client(config);
    client.fetch_manifest(store.manifest.context_id);
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : store.manifest.units) schedule->add({u.t, u.l, "int8"});
    schedule->close();
    std::atomic<int> received{0}, failed{0};
    ClientCallbacks callbacks;
    callbacks.on_unit = [&](ReceivedUnit&&) { ++received; };
    callbacks.on_failure = [&](const UnitFailure&) { ++failed; };
    client.start(schedule, callbacks);
    client.wait();
    EXPECT_EQ(received, 4);
    EXPECT_EQ(failed, 0);
}

// Ranges over HTTP: what byte_ranges_test checks as logic, here as bytes on the wire.
TEST(Hardening, ByteRangeEdgeCases) {
    TestStore store(1, 1, {"int8"}, 10'000);
    auto server = server_with(store, [](ServerConfig&) {});
    const auto whole_bytes = store.unit("int8", 0, 0);
    const std::string whole(whole_bytes.begin(), whole_bytes.end());
    const size_t size = whole.size();
    httplib::Client http("127.0.0.1", server->port());
    const std::string path = fmt::format("/{}", unit_key(store.manifest, "int8", 0, 0));

    // Overlapping and adjacent ranges merge into one part.
    auto res = http.Get(path.c_str(), {{"Range", "bytes=0-99,50-149,150-199"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 206);
    EXPECT_EQ(res->body, whole.substr(0, 200));
    EXPECT_EQ(res->get_header_value("Content-Range"), fmt::format("bytes 0-199/{}", size));

    // Disjoint ranges: multipart/byteranges, each part with its Content-Range; an out-of-bounds
    // range among them is dropped.
    res = http.Get(path.c_str(),
                   {{"Range", fmt::format("bytes=10-19,-5,{}-{}", size + 10, size + 20)}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 206);
    const std::string type = res->get_header_value("Content-Type");
    ASSERT_EQ(type.rfind("multipart/byteranges; boundary=", 0), 0u) << type;
    const std::string boundary = type.substr(type.find('=') + 1);
    EXPECT_NE(res->body.find(fmt::format("Content-Range: bytes 10-19/{}\r\n\r\n{}", size,
                                         whole.substr(10, 10))),
              std::string::npos);
    EXPECT_NE(res->body.find(fmt::format("Content-Range: bytes {}-{}/{}\r\n\r\n{}", size - 5,
                                         size - 1, size, whole.substr(size - 5))),
              std::string::npos);
    EXPECT_NE(res->body.find("--" + boundary + "--"), std::string::npos);

    // Nothing satisfiable: 416 with the object's size.
    res = http.Get(path.c_str(), {{"Range", fmt::format("bytes={}-,-0", size)}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 416);
    EXPECT_EQ(res->get_header_value("Content-Range"), fmt::format("bytes */{}", size));

    // Many tiny ranges: the whole object, once.
    std::string many = "bytes=";
    for (int i = 0; i < 40; ++i) many += fmt::format("{}{}-{}", i ? "," : "", i * 20, i * 20 + 1);
    res = http.Get(path.c_str(), {{"Range", many}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, whole);
}

}  // namespace
}  // namespace sparkv
