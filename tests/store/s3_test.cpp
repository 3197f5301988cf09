// The S3 pieces that need no real object store: store arguments, settings, XML, canonical
// queries, and the client's retries against a scripted HTTP server.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "store/s3_backend.h"
#include "store/s3_client.h"
#include "store/s3_xml.h"
#include "store/store_location.h"
#include "test_support.h"

namespace sparkv {
namespace {

TEST(StoreLocation, DirectoriesAndS3) {
    EXPECT_EQ(parse_store_location("/srv/kv").path, "/srv/kv");
    EXPECT_EQ(parse_store_location("kv").path, "kv");
    EXPECT_EQ(parse_store_location("./a:b").path, "./a:b");
    EXPECT_EQ(parse_store_location("file:///srv/kv").path, "/srv/kv");
    const auto s3 = parse_store_location("s3://my-bucket/team/kv/");
    EXPECT_EQ(s3.kind, StoreLocation::Kind::s3);
    EXPECT_EQ(s3.bucket, "my-bucket");
    EXPECT_EQ(s3.prefix, "team/kv");
    EXPECT_EQ(parse_store_location("s3://b.x").prefix, "");
}

TEST(StoreLocation, UnknownSchemesAreErrors) {
    for (const char* bad : {"gs://bucket/x", "http://host/x", "s3:bucket/x", "S3://bucket/x",
                            "s3://", "s3:///x", "s3://bucket/../x", "s3://bucket/a//b",
                            "s3://bucket/.hidden", "file://relative", "a:b", ""}) {
        EXPECT_THROW(parse_store_location(bad), Error) << bad;
    }
    try {
        parse_store_location("gs://bucket/x");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown scheme"), std::string::npos) << e.what();
    }
    // The case the issue names: no local folder "s3:" may appear.
    testing::TempDir dir;
    const auto cwd = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    EXPECT_THROW(open_store("s4://bucket/x", StoreAccess::create), Error);
    std::filesystem::current_path(cwd);
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(StoreLocation, S3SettingsFromEnvironmentThenFiles) {
    testing::TempDir dir;
    std::ofstream(dir.file("credentials")) << "[default]\naws_access_key_id = FILEKEY\n"
                                              "aws_secret_access_key = FILESECRET\n"
                                              "[other]\naws_access_key_id = OTHERKEY\n"
                                              "aws_secret_access_key = OTHERSECRET\n";
    std::ofstream(dir.file("config")) << "# comment\n[profile other]\nregion = eu-west-3\n"
                                         "endpoint_url = http://127.0.0.1:3900\n";
    for (const char* name :
         {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
          "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"})
        unsetenv(name);
    setenv("AWS_SHARED_CREDENTIALS_FILE", dir.file("credentials").c_str(), 1);
    setenv("AWS_CONFIG_FILE", dir.file("config").c_str(), 1);
    S3Config c = s3_config_from_environment("bucket");
    EXPECT_EQ(c.access_key_id, "FILEKEY");
    EXPECT_EQ(c.region, "us-east-1");
    EXPECT_EQ(c.endpoint, "");
    setenv("AWS_PROFILE", "other", 1);
    c = s3_config_from_environment("bucket");
    EXPECT_EQ(c.access_key_id, "OTHERKEY");
    EXPECT_EQ(c.secret_access_key, "OTHERSECRET");
    EXPECT_EQ(c.region, "eu-west-3");
    EXPECT_EQ(c.endpoint, "http://127.0.0.1:3900");
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    setenv("AWS_REGION", "garage", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
    c = s3_config_from_environment("bucket");
    EXPECT_EQ(c.access_key_id, "ENVKEY");
    EXPECT_EQ(c.region, "garage");
    EXPECT_EQ(c.endpoint, "http://127.0.0.1:9");
    EXPECT_NO_THROW(c.validate());
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_PROFILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", dir.file("missing").c_str(), 1);
    try {
        s3_config_from_environment("bucket").validate();
        FAIL() << "no credentials accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos);
    }
}

TEST(S3Config, RejectsBadSettings) {
    S3Config c;
    c.bucket = "ok-bucket";
    c.access_key_id = "k";
    c.secret_access_key = "s";
    EXPECT_NO_THROW(c.validate());
    for (const auto& mutate : std::vector<std::function<void(S3Config&)>>{
             [](S3Config& x) { x.bucket = "UPPER"; }, [](S3Config& x) { x.bucket = "ab"; },
             [](S3Config& x) { x.bucket = "a/b/c"; }, [](S3Config& x) { x.region = "a b"; },
             [](S3Config& x) { x.endpoint = "ftp://x"; },
             [](S3Config& x) { x.secret_access_key.clear(); },
             [](S3Config& x) { x.part_size = 1024; }, [](S3Config& x) { x.max_attempts = 0; }}) {
        S3Config bad = c;
        mutate(bad);
        EXPECT_THROW(bad.validate(), Error);
    }
}

TEST(S3Signing, CanonicalQueryAndEncoding) {
    EXPECT_EQ(s3_uri_encode("a/b c~d_e.f-g", true), "a/b%20c~d_e.f-g");
    EXPECT_EQ(s3_uri_encode("a/b+c=", false), "a%2Fb%2Bc%3D");
    EXPECT_EQ(s3_canonical_query({{"uploads", ""}}), "uploads=");
    EXPECT_EQ(
        s3_canonical_query(
            {{"prefix", "kv/contexts/"}, {"list-type", "2"}, {"continuation-token", "a+b/c="}}),
        "continuation-token=a%2Bb%2Fc%3D&list-type=2&prefix=kv%2Fcontexts%2F");
    EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_TRUE(s3_status_is_transient(503));
    EXPECT_FALSE(s3_status_is_transient(403));
}

TEST(S3Xml, ParsesResponsesAndRejectsGarbage) {
    const XmlElement doc = parse_xml(
        "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/"
        "2006-03-01/\"><IsTruncated>false</IsTruncated><Contents><Key>a&amp;b</Key>"
        "<Size>12</Size></Contents><Contents><Key>c</Key></Contents></ListBucketResult>");
    EXPECT_EQ(doc.name, "ListBucketResult");
    ASSERT_EQ(doc.children_named("Contents").size(), 2u);
    EXPECT_EQ(doc.children_named("Contents")[0]->child_text("Key"), "a&b");
    EXPECT_EQ(doc.child_text("Missing"), "");
    const auto error = parse_s3_error(
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, "SlowDown");
    EXPECT_FALSE(parse_s3_error("{\"error\": \"json\"}"));
    EXPECT_FALSE(parse_s3_error("<title>404 Not Found</title><Error"));
    for (const char* bad : {"", "<a>", "<a></b>", "not xml", "<a><b></a></b>"})
        EXPECT_THROW(parse_xml(bad), Error) << bad;
    std::string deep;
    for (int i = 0; i < 100; ++i) deep += "<a>";
    EXPECT_THROW(parse_xml(deep), Error);
    EXPECT_EQ(xml_escape("\"x\"<&>"), "&quot;x&quot;&lt;&amp;&gt;");
}

TEST(S3Xml, ParsesListingTimes) {
    const auto t = parse_s3_time("2026-12-02T11:17:12.120Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1796210232);
    EXPECT_FALSE(parse_s3_time("yesterday"));
}

// A scripted S3 endpoint on loopback: answers come from a function of the request.
class FakeS3 {
  public:
    using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
    explicit FakeS3(Handler handler) : handler_(std::move(handler)) {
        const auto route = [this](const httplib::Request& req, httplib::Response& res) {
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(req);
            }
            handler_(req, res);
        };
        server_.Get(".*", route);
        server_.Put(".*", route);
        server_.Post(".*", route);
        server_.Delete(".*", route);
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~FakeS3() {
        server_.stop();
        thread_.join();
    }
    S3Config config() const {
        S3Config c;
        c.endpoint = fmt::format("http://127.0.0.1:{}", port_);
        c.region = "test";
        c.access_key_id = "AKIDTEST";
        c.secret_access_key = "secret";
        c.bucket = "bucket";
        c.backoff_initial_s = 0.01;
        c.max_attempts = 4;
        return c;
    }
    std::vector<httplib::Request> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }

  private:
    Handler handler_;
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<httplib::Request> requests_;
};

TEST(S3Client, SignsWithPayloadHashAndRetriesTransientFailures) {
    std::atomic<int> calls{0};
    FakeS3 fake([&](const httplib::Request&, httplib::Response& res) {
        if (++calls <= 2) {
            res.status = 503;
            res.set_content("<Error><Code>SlowDown</Code><Message>later</Message></Error>",
                            "application/xml");
            return;
        }
        res.status = 200;
    });
    S3Client client(fake.config());
    const std::string body = "hello";
    S3Request put;
    put.method = "PUT";
    put.key = "kv/a b";
    put.body = std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size());
    const S3Response response = client.send(put);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.attempts, 3);
    const auto requests = fake.requests();
    ASSERT_EQ(requests.size(), 3u);
    const auto& r = requests.back();
    EXPECT_EQ(r.path, "/bucket/kv/a b");  // as sent, %20-encoded, and decoded by the server
    EXPECT_EQ(r.body, "hello");
    EXPECT_EQ(r.get_header_value("x-amz-content-sha256"),
              sha256_hex(std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size())));
    EXPECT_EQ(r.get_header_value("Authorization").rfind("AWS4-HMAC-SHA256 Credential=AKIDTEST/", 0),
              0u);
    EXPECT_NE(r.get_header_value("Authorization").find("/test/s3/aws4_request"), std::string::npos);
}

TEST(S3Client, GivesUpAfterTheLastAttemptAndNeverRetriesClientErrors) {
    std::atomic<int> calls{0};
    FakeS3 fake([&](const httplib::Request& req, httplib::Response& res) {
        ++calls;
        res.status = req.path.find("denied") != std::string::npos ? 403 : 503;
        res.set_content("<Error><Code>X</Code><Message>m</Message></Error>", "application/xml");
    });
    S3Client client(fake.config());
    S3Request get;
    get.key = "denied";
    EXPECT_EQ(client.send(get).status, 403);
    EXPECT_EQ(calls.load(), 1);
    get.key = "busy";
    const S3Response busy = client.send(get);
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(busy.attempts, 4);
    EXPECT_EQ(busy.error_text(), "503 X: m");
    // Nobody listening: retried, then an Error naming the request.
    S3Config closed = fake.config();
    closed.endpoint = "http://127.0.0.1:1";
    closed.max_attempts = 2;
    EXPECT_THROW(S3Client(closed).send(get), Error);
}

TEST(S3Client, RetriesAStalledResponse) {
    std::atomic<int> calls{0};
    FakeS3 fake([&](const httplib::Request&, httplib::Response& res) {
        if (++calls == 1) std::this_thread::sleep_for(std::chrono::milliseconds(2500));
        res.set_content("ok", "text/plain");
    });
    S3Config config = fake.config();
    config.stall_timeout_s = 1;
    const S3Response response = S3Client(config).send(S3Request{});
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.text(), "ok");
    EXPECT_EQ(response.attempts, 2);
}

TEST(S3Backend, ListsEveryPageAndOnlyStoreKeys) {
    FakeS3 fake([&](const httplib::Request& req, httplib::Response& res) {
        const bool second = req.has_param("continuation-token");
        EXPECT_EQ(req.get_param_value("prefix"), "kv/contexts/");
        std::string xml = "<ListBucketResult>";
        if (!second)
            xml +=
                "<IsTruncated>true</IsTruncated><NextContinuationToken>t/2+=</"
                "NextContinuationToken><Contents><Key>kv/contexts/a</Key><Size>1</Size>"
                "<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>"
                "<Contents><Key>kv/contexts/.hidden</Key><Size>1</Size></Contents>";
        else
            xml +=
                "<IsTruncated>false</IsTruncated><Contents><Key>kv/contexts/b/c</Key>"
                "<Size>22</Size></Contents>";
        res.set_content(xml + "</ListBucketResult>", "application/xml");
    });
    S3Backend backend(fake.config(), "kv");
    const auto infos = backend.list_info("contexts");
    ASSERT_EQ(infos.size(), 2u);
    EXPECT_EQ(infos[0].key, "contexts/a");
    EXPECT_EQ(infos[1].key, "contexts/b/c");
    EXPECT_EQ(infos[1].size, 22u);
    const auto requests = fake.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[1].get_param_value("continuation-token"), "t/2+=");
}

TEST(S3Backend, ReportsErrorsWithTheStoresWords) {
    FakeS3 fake([&](const httplib::Request&, httplib::Response& res) {
        res.status = 403;
        res.set_content(
            "<Error><Code>AccessDenied</Code><Message>Forbidden: Invalid signature</Message>"
            "</Error>",
            "application/xml");
    });
    S3Backend backend(fake.config(), "");
    try {
        backend.get("contexts/x");
        FAIL() << "403 accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("AccessDenied: Forbidden: Invalid signature"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(backend.size("x"), Error);
    EXPECT_THROW(backend.put("x", std::vector<uint8_t>(3)), Error);
}

}  // namespace
}  // namespace sparkv
