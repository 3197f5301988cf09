// The fault matrix, network rows: whatever the server or the link does, the device gets each unit
// intact or a failure with a clear kind, never wrong bytes. (Ingest rows: fault_ingest_test.cpp.
// Two concurrent ingests of one context: the S3 backend's per-attempt prefixes, its own tests.)
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "common/timer.h"
#include "fault_support.h"
#include "net_fixture.h"
#include "store/manifest_signature.h"

namespace sparkv {
namespace {

using testing::fetch_all;
using testing::TestStore;

// Reads one line from fd (blocking).
std::string read_line(int fd) {
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
}

// Re-writes a store's manifest (optionally signed): what an attacker with write access to the
// store, or a malicious server, can do.
void rewrite_manifest(TestStore& store, const Manifest& m, const SigningKey* key) {
    nlohmann::json j = m.to_json();
    if (key) sign_manifest_json(j, *key);
    testing::put_text(*store.backend, manifest_key(m.context_id), j.dump(1));
}

std::shared_ptr<const TrustPolicy> trusting(const SigningKey& key) {
    return std::make_shared<const TrustPolicy>(std::vector<PublicKey>{key.public_key()});
}

ClientConfig client_for(int port, std::shared_ptr<const TrustPolicy> trust = nullptr) {
    ClientConfig config;
    config.port = port;
    config.read_timeout_s = 5;
    config.trust = std::move(trust);
    return config;
}

// Every delivered unit is byte for byte the stored one; returns how many were delivered.
size_t expect_intact(const testing::FetchOutcome& out, const TestStore& store,
                     const std::string& level) {
    for (const auto& [unit, bytes] : out.delivered)
        EXPECT_EQ(bytes, store.unit(level, unit.first, unit.second))
            << "unit (" << unit.first << ", " << unit.second << ") was delivered altered";
    return out.delivered.size();
}

TEST(FaultMatrix, ServerProcessKilledMidUnit) {
    TestStore store(2, 4, {"fp16"}, 100'000);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const std::string store_dir = store.backend->root().string();
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        dup2(fds[1], STDOUT_FILENO);
        testing::close_inherited_fds();
        // 8 Mbit/s: about 0.1 s per unit, so the kill lands inside one.
        execl(SPARKV_BINARY, SPARKV_BINARY, "serve", "--store", store_dir.c_str(), "--listen",
              "127.0.0.1:0", "--rate-mbps", "8", nullptr);
        _exit(127);
    }
    close(fds[1]);
    int port = -1;
    for (std::string line; port < 0 && !(line = read_line(fds[0])).empty();)
        if (const auto at = line.find("http://127.0.0.1:"); at != std::string::npos)
            port = std::stoi(line.substr(at + 17));
    close(fds[0]);
    ASSERT_GT(port, 0);

    UnitClient client(client_for(port));
    client.fetch_manifest(store.manifest.context_id);
    std::atomic<size_t> received{0};
    testing::FetchOutcome out;
    std::mutex mutex;
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : store.manifest.units) schedule->add({u.t, u.l, "fp16"});
    schedule->close();
    ClientCallbacks callbacks;
    callbacks.on_unit = [&](ReceivedUnit&& unit) {
        std::lock_guard lock(mutex);
        out.delivered[{unit.unit.t, unit.unit.l}] = std::move(unit.bytes);
        ++received;
    };
    callbacks.on_failure = [&](const UnitFailure& f) {
        std::lock_guard lock(mutex);
        out.failures.push_back(f);
    };
    client.start(schedule, callbacks);
    const bool started = testing::wait_for([&] { return received >= 2; });
    std::this_thread::sleep_for(std::chrono::milliseconds(40));  // inside the third unit
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    ASSERT_TRUE(started);
    const double killed = now_seconds();
    client.wait();
    EXPECT_LT(now_seconds() - killed, 2.0);  // no unit waits for a timeout
    EXPECT_EQ(expect_intact(out, store, "fp16") + out.failures.size(), 8u);
    ASSERT_GE(out.failures.size(), 1u);
    for (const auto& f : out.failures)
        EXPECT_TRUE(f.kind == FailureKind::connection_lost || f.kind == FailureKind::unreachable)
            << f.reason;
}

// A server that answers from a map of paths to bodies, and resets the connection (RST) halfway
// through the body of one path. It serves one connection at a time, so its clients use one.
class ResettingServer {
  public:
    ResettingServer(std::map<std::string, std::string> objects, std::string reset_path)
        : objects_(std::move(objects)), reset_path_(std::move(reset_path)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
        ::listen(listen_fd_, 16);
        socklen_t length = sizeof(addr);
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ResettingServer() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    int port() const { return port_; }
    int resets() const { return resets_; }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd >= 0) serve_connection(fd);
        }
    }
    void serve_connection(int fd) {
        std::string buffer;
        char chunk[4096];
        while (!stop_) {
            size_t end;
            while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) {
                    if (stop_) break;
                    continue;
                }
                const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
                if (n <= 0) return (void)::close(fd);
                buffer.append(chunk, static_cast<size_t>(n));
            }
            if (stop_) break;
            // The target is the request line's second word.
            const size_t a = buffer.find(' ') + 1, b = buffer.find(' ', a);
            const std::string path = buffer.substr(a, b - a);
            buffer.erase(0, end + 4);
            const auto it = objects_.find(path);
            const std::string body = it == objects_.end() ? std::string("{}") : it->second;
            const std::string head =
                fmt::format("HTTP/1.1 {}\r\nContent-Length: {}\r\n\r\n",
                            it == objects_.end() ? "404 Not Found" : "200 OK", body.size());
            if (path == reset_path_) {
                const std::string half = head + body.substr(0, body.size() / 2);
                (void)::send(fd, half.data(), half.size(), MSG_NOSIGNAL);
                linger hard{1, 0};  // close with RST
                ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
                ++resets_;
                break;
            }
            const std::string reply = head + body;
            (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
        ::close(fd);
    }

    std::map<std::string, std::string> objects_;
    std::string reset_path_;
    int listen_fd_ = -1, port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> resets_{0};
    std::thread thread_;
};

TEST(FaultMatrix, ConnectionResetMidUnit) {
    TestStore store(1, 3, {"fp16"}, 200'000);
    const std::string id = store.manifest.context_id;
    std::map<std::string, std::string> objects;
    objects["/" + manifest_key(id)] = testing::get_text(*store.backend, manifest_key(id));
    for (int l = 0; l < 3; ++l)
        objects["/" + unit_key(store.manifest, "fp16", 0, l)] =
            testing::get_text(*store.backend, unit_key(store.manifest, "fp16", 0, l));
    ResettingServer server(objects, "/" + unit_key(store.manifest, "fp16", 0, 1));
    ClientConfig config = client_for(server.port());
    config.connections = 1;
    UnitClient client(config);
    client.fetch_manifest(id);
    const auto out = fetch_all(client, "fp16");
    EXPECT_EQ(server.resets(), 1);
    ASSERT_EQ(out.failures.size(), 1u);
    EXPECT_EQ(out.failures[0].kind, FailureKind::connection_lost) << out.failures[0].reason;
    EXPECT_EQ(out.failures[0].unit.l, 1);
    EXPECT_EQ(out.delivered.count({0, 1}), 0u);  // the half-received bytes are never delivered
    EXPECT_EQ(expect_intact(out, store, "fp16"), 2u);  // the client reconnects for the rest
}

TEST(FaultMatrix, TruncatedUnitIsASizeMismatch) {
    TestStore store(2, 2, {"q5h"}, 20'000);
    std::filesystem::resize_file(store.unit_file("q5h", 1, 0),
                                 store.manifest.object(1, 0, "q5h").bytes / 2);
    auto server = testing::start_server(store);
    UnitClient client(client_for(server->port()));
    client.fetch_manifest(store.manifest.context_id);
    const auto out = fetch_all(client, "q5h");
    ASSERT_EQ(out.failures.size(), 1u);
    EXPECT_TRUE(out.failed_with(1, 0, FailureKind::size_mismatch)) << out.failures[0].reason;
    EXPECT_NE(out.failures[0].reason.find("size mismatch"), std::string::npos);
    EXPECT_EQ(expect_intact(out, store, "q5h"), 3u);
}

TEST(FaultMatrix, OneFlippedBitIsRefusedWithOrWithoutTrust) {
    TestStore store(2, 2, {"q5h"}, 20'000);
    const SigningKey cloud = SigningKey::generate();
    rewrite_manifest(store, store.manifest, &cloud);
    const std::vector<uint8_t> original = store.unit("q5h", 0, 1);
    testing::flip_bit(store.unit_file("q5h", 0, 1), original.size() / 3, 5);
    auto server = testing::start_server(store);
    for (auto trust : {std::shared_ptr<const TrustPolicy>(), trusting(cloud)}) {
        UnitClient client(client_for(server->port(), trust));
        client.fetch_manifest(store.manifest.context_id);
        const auto out = fetch_all(client, "q5h");
        ASSERT_EQ(out.failures.size(), 1u);
        EXPECT_TRUE(out.failed_with(0, 1, FailureKind::checksum_mismatch))
            << out.failures[0].reason;
        EXPECT_EQ(out.delivered.count({0, 1}), 0u);
        EXPECT_EQ(out.delivered.size(), 3u);
        for (const auto& [unit, bytes] : out.delivered)
            EXPECT_EQ(bytes, store.unit("q5h", unit.first, unit.second));
    }
}

// The xxhash64 is not cryptographic: an attacker can make altered bytes match it. A manifest
// signed by the trusted key also carries the SHA-256, which the altered bytes cannot match.
TEST(FaultMatrix, AlteredUnitMatchingTheXxhashFailsTheSha256) {
    TestStore store(1, 2, {"q5h"}, 20'000);
    const SigningKey cloud = SigningKey::generate();
    const std::vector<uint8_t> original = store.unit("q5h", 0, 0);
    std::vector<uint8_t> poisoned = original;
    poisoned[10] ^= 0xff;
    store.backend->put(unit_key(store.manifest, "q5h", 0, 0), poisoned);
    Manifest m = store.manifest;
    m.unit(0, 0).objects[0].xxh64 = object_checksum(poisoned);  // the "collision"
    rewrite_manifest(store, m, &cloud);  // sha256 still that of the original bytes
    auto server = testing::start_server(store);

    UnitClient trusted(client_for(server->port(), trusting(cloud)));
    trusted.fetch_manifest(m.context_id);
    auto out = fetch_all(trusted, "q5h");
    ASSERT_EQ(out.failures.size(), 1u);
    EXPECT_TRUE(out.failed_with(0, 0, FailureKind::hash_mismatch)) << out.failures[0].reason;
    EXPECT_NE(out.failures[0].reason.find("SHA-256"), std::string::npos);
    EXPECT_EQ(out.delivered.count({0, 0}), 0u);
    EXPECT_EQ(out.delivered.at({0, 1}), store.unit("q5h", 0, 1));
    EXPECT_EQ(failure_kind_name(FailureKind::hash_mismatch), std::string("hash_mismatch"));

    // Without a trust key the device works as before and cannot tell.
    UnitClient unverified(client_for(server->port()));
    unverified.fetch_manifest(m.context_id);
    out = fetch_all(unverified, "q5h");
    EXPECT_TRUE(out.failures.empty());
    EXPECT_EQ(out.delivered.at({0, 0}), poisoned);
}

TEST(FaultMatrix, ManifestFromAnotherModelIsRefused) {
    // The context of model B, served under the id a device of model A asked for.
    TestStore a(1, 2, {"q5h"}, 5000, 1), b(1, 2, {"q5h"}, 5000, 2);
    const SigningKey cloud = SigningKey::generate();
    Manifest forged = b.manifest;
    forged.model.fingerprint = "model-b";
    forged.context_id = a.manifest.context_id;
    // 1. Honestly signed manifests of the wrong model: refused by the fingerprint check.
    rewrite_manifest(
        a,
        [&] {
            Manifest m = a.manifest;
            m.model.fingerprint = "model-b";
            return m;
        }(),
        &cloud);
    auto server = testing::start_server(a);
    ClientConfig config = client_for(server->port(), trusting(cloud));
    config.model_fingerprint = "test-fingerprint";
    {
        UnitClient client(config);
        try {
            client.fetch_manifest(a.manifest.context_id);
            FAIL() << "a manifest of another model was accepted";
        } catch (const UntrustedContext& e) {
            EXPECT_NE(std::string(e.what()).find("computed with model model-b"), std::string::npos)
                << e.what();
        }
    }
    // 2. Another context's manifest copied under this id: it names its own id.
    testing::put_text(*a.backend, manifest_key(a.manifest.context_id),
                      testing::get_text(*b.backend, manifest_key(b.manifest.context_id)));
    config.trust = nullptr;
    config.model_fingerprint.clear();
    {
        UnitClient client(config);
        EXPECT_THROW(client.fetch_manifest(a.manifest.context_id), Error);
    }
    // 3. ... with the id rewritten to match: no longer the signed text (trusted), and the token
    // ids do not match it (untrusted).
    rewrite_manifest(a, forged, nullptr);
    config.trust = trusting(cloud);
    {
        UnitClient client(config);
        EXPECT_THROW(client.fetch_manifest(a.manifest.context_id), UntrustedContext);
    }
    config.trust = nullptr;
    UnitClient client(config);
    client.fetch_manifest(a.manifest.context_id);
    try {
        client.fetch_tokens();
        FAIL() << "token ids of another context were accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("the token ids"), std::string::npos) << e.what();
    }
}

TEST(FaultMatrix, ManifestSignedByAnUntrustedKeyOrUnsignedIsRefusedBeforeAnyUnit) {
    TestStore store(1, 2, {"q5h"}, 5000);
    const SigningKey cloud = SigningKey::generate(), attacker = SigningKey::generate();
    auto server = testing::start_server(store);
    for (const SigningKey* key : {&attacker, static_cast<const SigningKey*>(nullptr)}) {
        rewrite_manifest(store, store.manifest, key);
        UnitClient client(client_for(server->port(), trusting(cloud)));
        try {
            client.fetch_manifest(store.manifest.context_id);
            FAIL() << "refused manifest accepted";
        } catch (const UntrustedContext& e) {
            const std::string why = key ? "not trusted" : "not signed";
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
        }
        EXPECT_THROW(client.start(std::make_shared<FetchSchedule>(), {}), Error);
    }
    EXPECT_EQ(server->stats().requests, 2u);  // the two manifests, no unit
}

}  // namespace
}  // namespace sparkv
