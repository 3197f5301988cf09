// Compares SparKV's tokenizer with llama.cpp, token for token, on the fixtures written by
// bench/tokenizer_fixtures.mjs: the reference model (plus the whole demo text) and the small test
// vocabularies, which this test rebuilds with the same generator the script used.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/paths.h"
#include "engine/gguf.h"
#include "engine/tokenizer/tokenizer.h"
#include "test_support.h"
#include "test_vocabs.h"

namespace sparkv {
namespace {

using Json = nlohmann::json;

Json load_fixture(const std::string& name) {
    const std::string path = std::string(SPARKV_TEST_DATA_DIR) + "/tokenizer/" + name;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open fixture " + path);
    return Json::parse(in);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string fnv1a64_hex(std::string_view bytes) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : bytes) {
        h ^= static_cast<uint8_t>(c);
        h *= 0x100000001b3ull;
    }
    return fmt::format("{:016x}", h);
}

// Little-endian integers of `width` bytes (2 or 4), base64-encoded.
std::vector<int32_t> decode_ids_base64(std::string_view text, size_t width) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::vector<uint8_t> bytes;
    uint32_t buffer = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = value(c);
        if (v < 0) continue;  // padding
        buffer = (buffer << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes.push_back(static_cast<uint8_t>(buffer >> bits));
        }
    }
    std::vector<int32_t> out;
    for (size_t i = 0; i + width <= bytes.size(); i += width) {
        uint32_t id = 0;
        for (size_t k = 0; k < width; ++k) id |= static_cast<uint32_t>(bytes[i + k]) << (8 * k);
        out.push_back(static_cast<int32_t>(id));
    }
    return out;
}

// Token lists side by side from the first difference, with the pieces, for a readable failure.
std::string describe_difference(const Tokenizer& tok, const std::vector<int32_t>& expected,
                                const std::vector<int32_t>& actual) {
    size_t i = 0;
    while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
    std::string out =
        fmt::format("first difference at index {} of {} (llama.cpp) / {} (SparKV):", i,
                    expected.size(), actual.size());
    for (size_t k = i; k < i + 6; ++k) {
        auto show = [&](const std::vector<int32_t>& v) {
            return k < v.size() ? fmt::format("{} '{}'", v[k], tok.token_to_piece(v[k], true))
                                : std::string("-");
        };
        out += fmt::format("\n  [{}] llama.cpp {} | SparKV {}", k, show(expected), show(actual));
    }
    return out;
}

struct Tally {
    int strings = 0;
    int tokens = 0;
    int mismatches = 0;
};

void compare_vocab(const Tokenizer& tok, const Json& fixture, Tally& tally) {
    const std::string vocab = fixture["vocab"];
    EXPECT_EQ(tok.n_vocab(), fixture["n_vocab"].get<int32_t>()) << vocab;
    EXPECT_EQ(tok.bos(), fixture["bos"].is_null() ? -1 : fixture["bos"].get<int32_t>()) << vocab;
    EXPECT_EQ(tok.eos(), fixture["eos"].is_null() ? -1 : fixture["eos"].get<int32_t>()) << vocab;
    const auto eog = fixture["eog"].get<std::vector<int32_t>>();
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
        const bool expected = std::find(eog.begin(), eog.end(), id) != eog.end();
        EXPECT_EQ(tok.is_end_of_generation(id), expected) << vocab << " token " << id;
    }
    for (const auto& c : fixture["cases"]) {
        const std::string text = c["text"];
        for (const bool special : {false, true}) {
            const auto expected = c[special ? "special" : "plain"].get<std::vector<int32_t>>();
            const auto actual = tok.encode(text, false, special);
            ++tally.strings;
            tally.tokens += static_cast<int>(expected.size());
            if (actual != expected) {
                ++tally.mismatches;
                ADD_FAILURE() << vocab << (special ? " (parse_special)" : "") << " on \"" << text
                              << "\": " << describe_difference(tok, expected, actual);
            }
            const char* detok_key = special ? "detok_special" : "detok_plain";
            if (c.contains(detok_key)) {
                EXPECT_EQ(tok.decode(expected, special), c[detok_key].get<std::string>())
                    << vocab << " decoding the tokens of \"" << text << "\"";
            }
        }
    }
}

// The real models' tokenizers: fixture file and the known model it was made from.
struct ModelFixture {
    const char* file;
    const char* model;
};
constexpr ModelFixture kModelFixtures[] = {{"smollm2.json", "smollm2-135m"},
                                           {"qwen2.5.json", "qwen2.5-0.5b"}};

class TokenizerModel : public ::testing::TestWithParam<ModelFixture> {};

TEST_P(TokenizerModel, MatchesLlamaCppOnEveryFixtureString) {
    SPARKV_REQUIRE_KNOWN_MODEL(model_path, GetParam().model);
    const auto file = GgufFile::open(model_path);
    const auto tok = Tokenizer::from_gguf(file);
    Tally tally;
    compare_vocab(tok, load_fixture(GetParam().file), tally);
    std::printf("%s: %d strings x modes, %d llama.cpp tokens, %d mismatches\n", GetParam().model,
                tally.strings, tally.tokens, tally.mismatches);
}

TEST_P(TokenizerModel, MatchesLlamaCppOnTheDemoText) {
    SPARKV_REQUIRE_KNOWN_MODEL(model_path, GetParam().model);
    const auto fixture = load_fixture(GetParam().file);
    ASSERT_TRUE(fixture.contains("demo")) << "fixture made without the demo text";
    const auto& demo = fixture["demo"];
    const std::string text = read_file(demo_text_path());
    if (text.empty()) {
        const char* require = std::getenv("SPARKV_REQUIRE_MODEL");
        if (require && std::string(require) == "1")
            FAIL() << "demo text missing at " << demo_text_path();
        GTEST_SKIP() << "demo text not fetched (sparkv model --fetch)";
    }
    ASSERT_EQ(fnv1a64_hex(text), demo["fnv1a64"].get<std::string>())
        << "the demo text differs from the one the fixture was made from";
    const bool wide = demo.contains("tokens_u32le_base64");
    const auto expected = decode_ids_base64(
        demo[wide ? "tokens_u32le_base64" : "tokens_u16le_base64"].get<std::string>(),
        wide ? 4 : 2);
    ASSERT_EQ(expected.size(), demo["count"].get<size_t>());

    const auto file = GgufFile::open(model_path);
    const auto tok = Tokenizer::from_gguf(file);
    const auto actual = tok.encode(text, false, false);
    EXPECT_EQ(actual, expected) << describe_difference(tok, expected, actual);
    EXPECT_EQ(tok.decode(actual), text);
    std::printf("%s demo text: %zu bytes, %zu tokens, identical to llama.cpp: %s\n",
                GetParam().model, text.size(), actual.size(), actual == expected ? "yes" : "no");
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, TokenizerModel, ::testing::ValuesIn(kModelFixtures),
                         [](const auto& param_info) {
                             std::string name = param_info.param.model;
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

TEST(TokenizerLlamaCpp, SmallVocabulariesMatchOnEveryFixtureString) {
    const auto fixtures = load_fixture("small_vocabs.json");
    const auto vocabs = testing::all_test_vocabs();
    ASSERT_EQ(fixtures["vocabs"].size(), vocabs.size());
    for (size_t i = 0; i < vocabs.size(); ++i) {
        const auto& fixture = fixtures["vocabs"][i];
        ASSERT_EQ(fixture["vocab"].get<std::string>(), vocabs[i].name);
        const auto bytes = vocabs[i].writer.serialize();
        const auto file = GgufFile::parse(bytes.data(), bytes.size(), vocabs[i].name);
        const auto tok = Tokenizer::from_gguf(file);
        Tally tally;
        compare_vocab(tok, fixture, tally);
        std::printf("%s: %d strings x modes, %d llama.cpp tokens, %d mismatches\n",
                    vocabs[i].name.c_str(), tally.strings, tally.tokens, tally.mismatches);
    }
}

}  // namespace
}  // namespace sparkv
