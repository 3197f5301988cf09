#include "net/endpoint.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace sparkv {
namespace {

TEST(Endpoint, AcceptsEveryFormTheCommandsDocument) {
    auto e = parse_endpoint("127.0.0.1:8080");
    EXPECT_EQ(e.host, "127.0.0.1");
    EXPECT_EQ(e.port, 8080);
    EXPECT_EQ(e.path, "");
    e = parse_endpoint("http://kv.example.com:9000/bucket/prefix/");
    EXPECT_EQ(e.host, "kv.example.com");
    EXPECT_EQ(e.port, 9000);
    EXPECT_EQ(e.path, "/bucket/prefix");
    EXPECT_EQ(e.url(), "http://kv.example.com:9000/bucket/prefix");
    EXPECT_EQ(parse_endpoint("http://cdn.example.com").port, 80);
    e = parse_endpoint("[::1]:7000");
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.port, 7000);
    EXPECT_EQ(e.url(), "http://[::1]:7000");
    EXPECT_EQ(parse_endpoint("http://[::1]:7000/").port, 7000);
    EXPECT_EQ(parse_endpoint("0.0.0.0:0", true).port, 0);
}

TEST(Endpoint, RejectsWhatItCannotServe) {
    for (const char* bad : {"localhost", "127.0.0.1:80x", "127.0.0.1:", ":8080", "127.0.0.1:70000",
                            "::1:8080", "https://example.com", "ftp://x:1", "127.0.0.1:8080/path",
                            "http://x:1/a//b", "http://x:1/../etc", "[::1", "127.0.0.1:0"})
        EXPECT_THROW(parse_endpoint(bad), Error) << bad;
}

}  // namespace
}  // namespace sparkv
