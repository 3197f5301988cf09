#include "store/manifest.h"

#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "store/content_id.h"

namespace sparkv {
namespace {

Manifest filled_manifest(int64_t n_tokens = 2500, int32_t chunk_size = 1024) {
    const std::vector<int32_t> tokens{1, 2, 3};
    ModelInfo model{"fp-abc", "SmolLM2-135M", 3, 3, 64};
    Manifest m = make_manifest(context_id(model.fingerprint, tokens, chunk_size), model, n_tokens,
                               chunk_size, {"fp16", "q5h"});
    uint64_t seed = 1;
    for (auto& u : m.units)
        for (auto& o : u.objects) o = {1000 + seed, seed * 0x9e3779b97f4a7c15ULL}, ++seed;
    m.tokens = {static_cast<uint64_t>(n_tokens) * 4, 0x1234};
    m.attempt = "20261202T101500Z-0123456789abcdef";
    return m;
}

TEST(Manifest, SkeletonHasChunksAndFeatures) {
    const Manifest m = filled_manifest();
    ASSERT_EQ(m.n_chunks(), 3);
    EXPECT_EQ(m.chunks[2].first_token, 2048);
    EXPECT_EQ(m.chunks[2].n_tokens, 452);  // the last chunk is shorter
    EXPECT_EQ(m.units.size(), 9u);
    EXPECT_EQ(m.unit(1, 2).attention_span, 2048);
    EXPECT_EQ(m.unit(2, 0).attention_span, 2500);
    EXPECT_EQ(m.unit(2, 0).first_token, 2048);
    EXPECT_THROW(m.unit(3, 0), Error);
    EXPECT_THROW(m.require_level("q3h"), Error);
}

TEST(Manifest, JsonRoundTripIsExact) {
    const Manifest m = filled_manifest();
    const Manifest back = Manifest::parse(m.dump());
    EXPECT_EQ(back.to_json(), m.to_json());
    EXPECT_EQ(back.object(2, 1, "q5h").bytes, m.object(2, 1, "q5h").bytes);
    EXPECT_EQ(back.object(2, 1, "q5h").xxh64, m.object(2, 1, "q5h").xxh64);
    EXPECT_EQ(back.total_bytes("fp16"), m.total_bytes("fp16"));
}

TEST(Manifest, OldVersionsAskForAReingest) {
    nlohmann::json j = filled_manifest().to_json();
    j["version"] = 2;
    try {
        Manifest::parse(j.dump());
        FAIL() << "a version 2 manifest was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("re-ingest"), std::string::npos) << e.what();
    }
}

TEST(Manifest, SkeletonWithoutObjectsDoesNotValidate) {
    Manifest m = filled_manifest();
    m.unit(1, 1).objects[0] = {};
    try {
        m.validate();
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unit (1, 1) at level fp16"), std::string::npos)
            << e.what();
    }
}

// Each mutation of a valid manifest must be reported as an Error, never crash or pass.
TEST(Manifest, RejectsCorruptManifests) {
    const nlohmann::json good = filled_manifest().to_json();
    const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> mutations = {
        {"not an object", [](auto& j) { j = nlohmann::json::array(); }},
        {"wrong format", [](auto& j) { j["format"] = "other"; }},
        {"future version", [](auto& j) { j["version"] = Manifest::kFormatVersion + 1; }},
        {"old version", [](auto& j) { j["version"] = 1; }},
        {"version 2 (no attempt)", [](auto& j) { j["version"] = 2; }},
        {"no attempt", [](auto& j) { j.erase("attempt"); }},
        {"empty attempt", [](auto& j) { j["attempt"] = ""; }},
        {"attempt path", [](auto& j) { j["attempt"] = "../x"; }},
        {"attempt with slash", [](auto& j) { j["attempt"] = "a/b"; }},
        {"no token ids", [](auto& j) { j.erase("tokens"); }},
        {"token ids of the wrong size", [](auto& j) { j["tokens"]["bytes"] = 4; }},
        {"bad token hash", [](auto& j) { j["tokens"]["xxh64"] = "0x12"; }},
        {"missing model", [](auto& j) { j.erase("model"); }},
        {"layers as string", [](auto& j) { j["model"]["n_layers"] = "3"; }},
        {"negative tokens", [](auto& j) { j["n_tokens"] = -5; }},
        {"huge tokens", [](auto& j) { j["n_tokens"] = 1e300; }},
        {"uint64 overflow", [](auto& j) { j["n_tokens"] = 18446744073709551615ULL; }},
        {"zero chunk size", [](auto& j) { j["chunk_size"] = 0; }},
        {"chunk count", [](auto& j) { j["chunks"].erase(0); }},
        {"chunk gap", [](auto& j) { j["chunks"][1]["first_token"] = 1000; }},
        {"bad id", [](auto& j) { j["context_id"] = "../../etc"; }},
        {"level path", [](auto& j) { j["levels"][0] = "../x"; }},
        {"duplicate level", [](auto& j) { j["levels"][1] = "fp16"; }},
        {"unit order", [](auto& j) { std::swap(j["units"][0], j["units"][1]); }},
        {"unit span", [](auto& j) { j["units"][4]["attention_span"] = 7; }},
        {"missing object", [](auto& j) { j["units"][2]["objects"].erase("q5h"); }},
        {"zero bytes", [](auto& j) { j["units"][2]["objects"]["q5h"]["bytes"] = 0; }},
        {"bad hash", [](auto& j) { j["units"][2]["objects"]["q5h"]["xxh64"] = "xyz"; }},
        {"hash as number", [](auto& j) { j["units"][2]["objects"]["q5h"]["xxh64"] = 5; }},
        {"units not array", [](auto& j) { j["units"] = nlohmann::json::object(); }},
        {"too many units", [](auto& j) { j["units"].push_back(j["units"][0]); }},
    };
    ASSERT_NO_THROW(Manifest::parse(good.dump()));
    for (const auto& [name, mutate] : mutations) {
        nlohmann::json j = good;
        mutate(j);
        EXPECT_THROW(Manifest::parse(j.dump()), Error) << name;
    }
    EXPECT_THROW(Manifest::parse("{\"format\": \"sparkv-manifest\", "), Error);
    EXPECT_THROW(Manifest::parse(""), Error);
    const std::string text = good.dump();
    for (size_t cut = 0; cut < text.size(); cut += 97)
        EXPECT_THROW(Manifest::parse(text.substr(0, cut)), Error) << "truncated at " << cut;
}

TEST(ContentId, DeterministicAndSensitiveToEveryInput) {
    const std::vector<int32_t> tokens{10, 20, 30, 40};
    const std::string id = context_id("model-a", tokens, 1024);
    EXPECT_TRUE(is_context_id(id));
    EXPECT_EQ(id, context_id("model-a", tokens, 1024));
    EXPECT_NE(id, context_id("model-b", tokens, 1024));
    EXPECT_NE(id, context_id("model-a", tokens, 512));
    std::vector<int32_t> other = tokens;
    other[3] = 41;
    EXPECT_NE(id, context_id("model-a", other, 1024));
    other.pop_back();
    EXPECT_NE(id, context_id("model-a", other, 1024));
    // Length prefixes keep fingerprint bytes from sliding into the token stream.
    EXPECT_NE(context_id("ab", {}, 1), context_id("a", {}, 1));
    EXPECT_THROW(context_id("m", tokens, 0), Error);
}

TEST(ContentId, HexRoundTrip) {
    for (uint64_t v : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}, uint64_t{0x0123456789abcdef}})
        EXPECT_EQ(parse_hex64(hex64(v)), v);
    EXPECT_FALSE(parse_hex64("0123456789ABCDEF"));
    EXPECT_FALSE(parse_hex64("123"));
    EXPECT_FALSE(is_context_id("0123456789abcdef0123456789abcdeg"));
}

}  // namespace
}  // namespace sparkv
