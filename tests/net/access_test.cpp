// Per-tenant access: bearer tokens from a config file, 401/403 with JSON bodies, filtered listing.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "net/access_control.h"
#include "net/unit_client.h"
#include "net_fixture.h"

namespace sparkv {
namespace {

using testing::TestStore;

const std::string kTokenA = "token-of-tenant-a-0123456789";
const std::string kTokenB = "token-of-tenant-b-9876543210";

// A second context in the same store, readable by tenant "b" only.
Manifest add_context(TestStore& store, const std::string& fingerprint) {
    const std::vector<int32_t> tokens(50, 5);
    ContextWriter writer(store.store,
                         make_manifest(context_id(fingerprint, tokens, 64),
                                       {fingerprint, "m", 1, 3, 64}, 50, 64, {"int8"}));
    writer.put_tokens(tokens);
    writer.put_unit(0, 0, "int8", std::vector<uint8_t>(500, 1));
    return writer.commit();
}

AccessControl config_for(const std::string& id_a, const std::string& id_b) {
    const nlohmann::json j = {
        {"tenants", {{"a", {{"contexts", {id_a}}}}, {"b", {{"prefix", id_b.substr(0, 6)}}}}},
        {"tokens",
         {{{"tenant", "a"}, {"token", kTokenA}},
          {{"tenant", "b"}, {"sha256", to_hex(sha256(std::string_view(kTokenB)))}}}}};
    return AccessControl::parse(j.dump(), "test");
}

TEST(AccessControl, AuthenticatesBearerTokensInConstantTimeAgainstEveryEntry) {
    const std::string id_a(64, 'a'), id_b(64, 'b');
    const AccessControl ac = config_for(id_a, id_b);
    EXPECT_EQ(ac.tenant_count(), 2u);
    EXPECT_EQ(ac.token_count(), 2u);
    const Tenant* a = ac.authenticate("Bearer " + kTokenA);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->name, "a");
    EXPECT_TRUE(a->may_read(id_a));
    EXPECT_FALSE(a->may_read(id_b));
    const Tenant* b = ac.authenticate("bearer " + kTokenB);  // the scheme is case-insensitive
    ASSERT_TRUE(b);
    EXPECT_EQ(b->name, "b");
    EXPECT_TRUE(b->may_read(id_b));
    EXPECT_FALSE(b->may_read(id_a));
    for (const std::string& header : std::vector<std::string>{
             "", "Bearer", "Bearer ", "Basic " + kTokenA, "Bearer " + kTokenA + "x",
             "Bearer " + kTokenA.substr(1), kTokenA})
        EXPECT_EQ(ac.authenticate(header), nullptr) << header;
}

TEST(AccessControl, BadConfigsAreErrorsThatNeverQuoteTokens) {
    auto expect_error = [](const nlohmann::json& j, const std::string& what) {
        try {
            AccessControl::parse(j.dump(), "cfg");
            ADD_FAILURE() << "accepted: " << what;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
            EXPECT_EQ(std::string(e.what()).find("short-secret"), std::string::npos);
        }
    };
    const nlohmann::json tenants = {{"a", {{"prefix", ""}}}};
    expect_error({{"tenants", tenants}}, "needs an object");
    expect_error({{"tenants", tenants}, {"tokens", nlohmann::json::array()}}, "no tokens");
    expect_error({{"tenants", tenants}, {"tokens", {{{"tenant", "a"}, {"token", "short-secret"}}}}},
                 "characters");
    expect_error({{"tenants", tenants}, {"tokens", {{{"tenant", "zz"}, {"token", kTokenA}}}}},
                 "not in \"tenants\"");
    expect_error({{"tenants", tenants},
                  {"tokens", {{{"tenant", "a"}, {"token", kTokenA}, {"sha256", "00"}}}}},
                 "exactly one");
    expect_error({{"tenants", {{"a", nlohmann::json::object()}}},
                  {"tokens", {{{"tenant", "a"}, {"token", kTokenA}}}}},
                 "may read nothing");
    expect_error({{"tenants", {{"a", {{"contexts", {"nope"}}}}}},
                  {"tokens", {{{"tenant", "a"}, {"token", kTokenA}}}}},
                 "not a context id");
    EXPECT_THROW(AccessControl::parse("{", "cfg"), Error);
    EXPECT_THROW(AccessControl::load("/nonexistent/auth.json"), Error);
}

class AuthServer : public ::testing::Test {
  protected:
    void SetUp() override {
        b_manifest_ = add_context(store_, "fingerprint-b");
        ServerConfig config;
        config.keep_alive_s = 2;
        config.access_log = true;
        config.access = std::make_shared<const AccessControl>(
            config_for(store_.manifest.context_id, b_manifest_.context_id));
        server_ = std::make_unique<UnitServer>(store_.backend, config);
        server_->start();
    }

    httplib::Result get(const std::string& path, const std::string& token) {
        httplib::Client http("127.0.0.1", server_->port());
        if (!token.empty()) http.set_bearer_token_auth(token.c_str());
        return http.Get(path.c_str());
    }

    TestStore store_{1, 2, {"int8"}, 800};
    Manifest b_manifest_;
    std::unique_ptr<UnitServer> server_;
};

TEST_F(AuthServer, NeedsATokenForEverythingButHealth) {
    const std::string manifest_a = fmt::format("/{}", manifest_key(store_.manifest.context_id));
    EXPECT_EQ(get("/health", "")->status, 200);
    for (const std::string& path : {std::string("/contexts"), manifest_a}) {
        auto res = get(path, "");
        ASSERT_TRUE(res) << path;
        EXPECT_EQ(res->status, 401) << path;
        EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"sparkv\"");
        EXPECT_TRUE(nlohmann::json::parse(res->body)["error"].is_string());
        res = get(path, "not-a-token-anybody-has");
        EXPECT_EQ(res->status, 401) << path;
        EXPECT_NE(res->get_header_value("WWW-Authenticate").find("invalid_token"),
                  std::string::npos);
    }
    auto res = get(manifest_a, kTokenA);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(server_->stats().unauthorized, 4u);
}

TEST_F(AuthServer, ATenantReadsOnlyItsContextsAndAnIdGrantsNothing) {
    const std::string a = store_.manifest.context_id, b = b_manifest_.context_id;
    EXPECT_EQ(get(fmt::format("/{}", manifest_key(a)), kTokenA)->status, 200);
    EXPECT_EQ(get(fmt::format("/{}", unit_key(store_.manifest, "int8", 0, 1)), kTokenA)->status,
              200);
    auto res = get(fmt::format("/{}", manifest_key(b)), kTokenA);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 403);
    EXPECT_NE(nlohmann::json::parse(res->body)["error"].get<std::string>().find("may not read"),
              std::string::npos);
    EXPECT_EQ(get(fmt::format("/{}", unit_key(b_manifest_, "int8", 0, 0)), kTokenA)->status, 403);
    EXPECT_EQ(get(fmt::format("/{}", tokens_key(b_manifest_)), kTokenA)->status, 403);
    // Whether a context exists is not revealed to a tenant that may not read it.
    EXPECT_EQ(get(fmt::format("/{}", manifest_key(std::string(64, 'f'))), kTokenA)->status, 403);
    // Tenant b reads by prefix; a context it may read but which does not exist is a 404.
    EXPECT_EQ(get(fmt::format("/{}", manifest_key(b)), kTokenB)->status, 200);
    EXPECT_EQ(get(fmt::format("/{}", manifest_key(a)), kTokenB)->status, 403);
    EXPECT_EQ(get(fmt::format("/{}", manifest_key(b.substr(0, 6) + std::string(58, '0'))), kTokenB)
                  ->status,
              404);
    EXPECT_GE(server_->stats().forbidden, 5u);
}

TEST_F(AuthServer, ListsOnlyWhatTheCallerMayRead) {
    for (const auto& [token, id] : std::vector<std::pair<std::string, std::string>>{
             {kTokenA, store_.manifest.context_id}, {kTokenB, b_manifest_.context_id}}) {
        auto res = get("/contexts", token);
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 200);
        const auto list = nlohmann::json::parse(res->body)["contexts"];
        ASSERT_EQ(list.size(), 1u) << res->body;
        EXPECT_EQ(list[0]["id"], id);
    }
}

TEST_F(AuthServer, TheClientSendsItsTokenAndTokensAreNeverLogged) {
    ::testing::internal::CaptureStderr();
    ClientConfig config;
    config.port = server_->port();
    config.bearer_token = kTokenA;
    {
        UnitClient client(config);
        client.fetch_manifest(store_.manifest.context_id);
        EXPECT_EQ(client.fetch_tokens().size(), static_cast<size_t>(store_.manifest.n_tokens));
    }
    config.bearer_token = "wrong-token-0123456789abcdef";
    UnitClient wrong(config);
    try {
        wrong.fetch_manifest(store_.manifest.context_id);
        ADD_FAILURE() << "a wrong token was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("401"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("wrong-token"), std::string::npos) << e.what();
    }
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("manifest.json -> 200"), std::string::npos) << log;  // it does log
    EXPECT_EQ(log.find(kTokenA), std::string::npos) << log;
    EXPECT_EQ(log.find("wrong-token"), std::string::npos) << log;
}

}  // namespace
}  // namespace sparkv
