// The device client against an object store or CDN instead of `sparkv serve`: objects under a
// path prefix, a bucket chosen by the Host header, S3 XML error bodies, 503 SlowDown answers.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "net/unit_client.h"
#include "net_fixture.h"

namespace sparkv {
namespace {

using testing::TestStore;

// Serves the store's files as a bucket website endpoint would: at /<prefix>/<key>, only for
// Host "bucket.web", with S3-style XML errors; the first request of every unit key answers 503.
class FakeBucket {
  public:
    explicit FakeBucket(const TestStore& store) : store_(store) {
        server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
            if (req.get_header_value("Host") != "bucket.web") {
                res.status = 403;
                res.set_content(
                    "<Error><Code>AccessDenied</Code><Message>no such site</Message>"
                    "</Error>",
                    "application/xml");
                return;
            }
            const std::string prefix = "/pfx/";
            if (req.path.rfind(prefix, 0) != 0) return not_found(res);
            const std::string key = req.path.substr(prefix.size());
            if (key.ends_with(".kvu")) {
                std::lock_guard lock(mutex_);
                if (seen_[key]++ == 0) {
                    res.status = 503;
                    res.set_content(
                        "<Error><Code>SlowDown</Code><Message>Please reduce your "
                        "request rate.</Message></Error>",
                        "application/xml");
                    return;
                }
            }
            if (!is_valid_key(key) || !store_.backend->contains(key)) return not_found(res);
            const auto bytes = store_.backend->get(key);
            res.set_header("ETag", "\"0123\"");
            res.set_content(std::string(bytes.begin(), bytes.end()), "application/octet-stream");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~FakeBucket() {
        server_.stop();
        thread_.join();
    }
    int port() const { return port_; }

  private:
    static void not_found(httplib::Response& res) {
        res.status = 404;
        res.set_content("<Error><Code>NoSuchKey</Code><Message>Key not found.</Message></Error>",
                        "application/xml");
    }
    const TestStore& store_;
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::map<std::string, int> seen_;
};

TEST(ObjectStoreClient, StreamsFromABucketUnderAPrefixWithRetries) {
    TestStore store(2, 3, {"q5h"}, 3000);
    FakeBucket bucket(store);
    ClientConfig config =
        client_config_for_server(fmt::format("http://127.0.0.1:{}/pfx", bucket.port()));
    config.host_header = "bucket.web";
    config.retry_backoff_s = 0.001;
    UnitClient client(config);
    client.fetch_manifest(store.manifest.context_id);
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : store.manifest.units) schedule->add({u.t, u.l, "q5h"});
    schedule->close();
    std::atomic<int> received{0};
    std::vector<UnitFailure> failures;
    ClientCallbacks cb;
    cb.on_unit = [&](ReceivedUnit&& u) {
        EXPECT_EQ(u.bytes, store.unit("q5h", u.unit.t, u.unit.l));
        ++received;
    };
    cb.on_failure = [&](const UnitFailure& f) { failures.push_back(f); };
    client.start(schedule, cb);
    client.wait();
    EXPECT_EQ(received.load(), 6);
    EXPECT_TRUE(failures.empty()) << failures.front().reason;
    EXPECT_EQ(client.stats().retries, 6u);  // one 503 per unit, each asked again
}

TEST(ObjectStoreClient, ReportsS3ErrorsInTheStoresWords) {
    TestStore store(1, 2, {"q5h"}, 3000);
    FakeBucket bucket(store);
    ClientConfig config =
        client_config_for_server(fmt::format("http://127.0.0.1:{}/pfx", bucket.port()));
    config.host_header = "bucket.web";
    try {
        UnitClient(config).fetch_manifest(std::string(32, 'a'));
        FAIL() << "a missing manifest was fetched";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("404 for the manifest"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("NoSuchKey: Key not found."), std::string::npos)
            << e.what();
    }
    config.host_header = "other.web";
    try {
        UnitClient(config).fetch_manifest(store.manifest.context_id);
        FAIL() << "the wrong site was served";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("AccessDenied: no such site"), std::string::npos)
            << e.what();
    }
    // Without retries the SlowDown answer is the unit's failure, with its code.
    config.host_header = "bucket.web";
    config.server_error_retries = 0;
    UnitClient client(config);
    client.fetch_manifest(store.manifest.context_id);
    auto schedule = std::make_shared<FetchSchedule>();
    schedule->add({0, 1, "q5h"});
    schedule->close();
    std::vector<UnitFailure> failures;
    ClientCallbacks cb;
    cb.on_unit = [](ReceivedUnit&&) {};
    cb.on_failure = [&](const UnitFailure& f) { failures.push_back(f); };
    client.start(schedule, cb);
    client.wait();
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].kind, FailureKind::http_status);
    EXPECT_NE(failures[0].reason.find("503: SlowDown"), std::string::npos) << failures[0].reason;
}

TEST(ObjectStoreClient, ServerArguments) {
    ClientConfig c = client_config_for_server("10.0.0.1:8080");
    EXPECT_EQ(c.host, "10.0.0.1");
    EXPECT_EQ(c.port, 8080);
    EXPECT_EQ(c.path_prefix, "");
    c = client_config_for_server("http://cdn.example:8443/kv/prod/");
    EXPECT_EQ(c.host, "cdn.example");
    EXPECT_EQ(c.port, 8443);
    EXPECT_EQ(c.path_prefix, "/kv/prod");
    c = client_config_for_server("http://127.0.0.1");
    EXPECT_EQ(c.port, 80);
    for (const char* bad : {"nohost", ":80", "host:0", "host:99999", "host:x", "https://cdn/x",
                            "http://h:1/../x", "http://:80/x"})
        EXPECT_THROW(client_config_for_server(bad), Error) << bad;
}

}  // namespace
}  // namespace sparkv
