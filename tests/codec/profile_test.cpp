// Codec v2: the profile (versioning, hash, file errors), the version-2 unit format with the
// profile hash and sink tokens, and its robustness (truncation, flips, resealed corruption).
#include "codec/profile.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "codec/unit_format.h"
#include "common/error.h"
#include "common/fp16.h"
#include "kv_test_data.h"

namespace sparkv::codec {
namespace {

constexpr uint64_t kModel = 0x1234567890abcdefULL;
constexpr UnitShape kShape{40, 2, 16};

CodecProfile make_profile(uint32_t sink = 4) {
    CodecProfile p;
    p.model_fingerprint = kModel;
    p.n_layers = 4;
    p.sink_tokens = sink;
    p.levels.push_back({Level::c5,
                        parse_layer_bits("0:4/3,1:3/2,2:5/4,3:2/2", std::vector<BitWidths>(4)),
                        0.004, 5.1});
    p.levels.push_back({Level::c8, std::vector<BitWidths>(4, BitWidths{2, 2}), 0.05, 8.2});
    return p;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

void expect_has(const std::string& message, const std::string& part) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "'" << message << "' lacks '" << part << "'";
}

std::vector<uint8_t> encode(const CodecProfile& p, UnitKey key, Level level = Level::c5,
                            const UnitShape& s = kShape, uint32_t seed = 1) {
    const auto kv = testing::make_kv(s, seed);
    EncodeOptions o(level);
    o.profile = &p;
    return encode_unit(key, s, contiguous(kv.k.data(), s), contiguous(kv.v.data(), s), o);
}

std::string decode_error(const std::vector<uint8_t>& bytes, const UnitKey& key,
                         std::optional<uint64_t> profile, const UnitShape& s = kShape) {
    std::vector<uint16_t> k(s.elements()), v(s.elements());
    Decoder d;
    return error_of([&] {
        d.decode(bytes, key, s, contiguous(k.data(), s), contiguous(v.data(), s), std::nullopt,
                 profile);
    });
}

TEST(Profile, JsonRoundTripKeepsTheHash) {
    const CodecProfile p = make_profile();
    const CodecProfile q = profile_from_json(profile_to_json(p), "test");
    EXPECT_EQ(q.hash(), p.hash());
    EXPECT_EQ(q.bits_for(Level::c5, 1), (BitWidths{3, 2}));
    EXPECT_EQ(q.sink_tokens, 4u);
}

TEST(Profile, HashCoversWhatChangesEncoding) {
    const CodecProfile p = make_profile();
    CodecProfile q = p;
    q.sink_tokens = 5;
    EXPECT_NE(q.hash(), p.hash());
    q = p;
    q.levels[0].bits[3] = {3, 2};
    EXPECT_NE(q.hash(), p.hash());
    q = p;
    q.model_fingerprint ^= 1;
    EXPECT_NE(q.hash(), p.hash());
    q = p;
    q.calibration_json = R"({"note": 1})";  // the record of measurements is not hashed
    q.levels[0].predicted_kl = 1;
    EXPECT_EQ(q.hash(), p.hash());
}

TEST(Profile, BadFilesAreRejectedWithAClearError) {
    const std::string good = profile_to_json(make_profile());
    expect_has(error_of([] { profile_from_json("{", "f.json"); }),
               "codec profile f.json: not JSON");
    expect_has(error_of([] { profile_from_json(R"({"format": "x"})", "f"); }),
               "not a SparKV codec profile");
    std::string v9 = good;
    v9.replace(v9.find("\"version\": 3"), 12, "\"version\": 9");
    expect_has(error_of([&] { profile_from_json(v9, "f"); }), "version 9 is not supported");
    std::string edited = good;
    edited.replace(edited.find("3:2/2"), 5, "3:3/2");
    expect_has(error_of([&] { profile_from_json(edited, "f"); }), "does not match its contents");
    std::string partial = good;
    partial.replace(partial.find(",3:2/2"), 6, "");
    expect_has(error_of([&] { profile_from_json(partial, "f"); }), "misses layers");
    std::string fixed = good;
    fixed.replace(fixed.find("\"c8\""), 4, "\"q5h\"");
    expect_has(error_of([&] { profile_from_json(fixed, "f"); }), "not a calibrated level");
    expect_has(error_of([] { load_profile("/nonexistent/profile.json"); }),
               "cannot read codec profile /nonexistent/profile.json");
}

CodecProfile make_head_profile() {
    CodecProfile p = make_profile();
    p.levels[0].head_bits = {{{4, 3}, {2, 2}},  // layer 0: 4/3 = the widest of its heads
                             {{3, 2}, {3, 2}},
                             {{2, 4}, {5, 3}},
                             {{2, 2}, {2, 2}}};
    return p;
}

TEST(Profile, PerHeadWidthsRoundTripAndAreHashed) {
    const CodecProfile p = make_head_profile();
    EXPECT_NE(p.hash(), make_profile().hash());
    const std::string json = profile_to_json(p);
    EXPECT_NE(json.find("\"head_bits\""), std::string::npos);
    EXPECT_NE(json.find("\"2,5/4,3\""), std::string::npos);  // layer 2: K 2,5 / V 4,3
    const CodecProfile q = profile_from_json(json, "test");
    EXPECT_EQ(q.hash(), p.hash());
    ASSERT_NE(q.head_bits_for(Level::c5, 2), nullptr);
    EXPECT_EQ(*q.head_bits_for(Level::c5, 2), (std::vector<BitWidths>{{2, 4}, {5, 3}}));
    EXPECT_EQ(q.head_bits_for(Level::c8, 2), nullptr);  // c8 has per-layer widths only
    CodecProfile r = p;
    r.levels[0].head_bits[3][1] = {3, 2};
    EXPECT_NE(r.hash(), p.hash());
}

TEST(Profile, BadPerHeadWidthsAreRejected) {
    const std::string good = profile_to_json(make_head_profile());
    auto with = [&](const std::string& from, const std::string& to) {
        std::string s = good;
        s.replace(s.find(from), from.size(), to);
        s.replace(s.find("\"hash\""), 6, "\"was\"");  // drop the hash check: reach the parser
        return s;
    };
    expect_has(error_of([&] { profile_from_json(with("\"2,5/4,3\"", "\"2,9/4,3\""), "f"); }),
               "9 bits is outside 2..8");
    expect_has(error_of([&] { profile_from_json(with("\"2,5/4,3\"", "\"2,5,4,3\""), "f"); }),
               "expected K widths/V widths");
    expect_has(error_of([&] { profile_from_json(with("\"2,5/4,3\"", "\"2,5/4\""), "f"); }),
               "one width per head each");
    expect_has(error_of([&] { profile_from_json(with("\"2,5/4,3\"", "\"2,4/4,3\""), "f"); }),
               "disagree with the layer's 5/4");
    expect_has(error_of([&] { profile_from_json(with("\"version\": 3", "\"version\": 1"), "f"); }),
               "per-head widths need version 2");
}

TEST(Profile, Version1FilesStillLoad) {
    CodecProfile p = make_profile();
    p.version = 1;
    const CodecProfile q = profile_from_json(profile_to_json(p), "v1");
    EXPECT_EQ(q.version, 1u);
    EXPECT_EQ(q.hash(), p.hash());
}

TEST(Profile, SaveAndLoad) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("sparkv-profile-test-" + std::to_string(::getpid()) + ".json");
    save_profile(make_profile(), path.string());
    EXPECT_EQ(load_profile(path.string()).hash(), make_profile().hash());
    std::filesystem::remove(path);
}

TEST(Profile, CalibratedLevelNeedsAProfile) {
    const auto kv = testing::make_kv(kShape, 1);
    expect_has(error_of([&] {
                   encode_unit({kModel, 0, 0}, kShape, contiguous(kv.k.data(), kShape),
                               contiguous(kv.v.data(), kShape), EncodeOptions(Level::c5));
               }),
               "needs the model's codec profile; run `sparkv codec-calibrate");
    const CodecProfile p = make_profile();
    expect_has(error_of([&] { encode(p, {kModel, 0, 0}, Level::c6); }), "no table for level c6");
    expect_has(error_of([&] { encode(p, {kModel ^ 1, 0, 0}); }), "is for model");
}

TEST(FormatV2, RoundTripWithSinkTokensAndProfileHash) {
    const CodecProfile p = make_profile(4);
    const auto kv = testing::make_kv(kShape, 1);
    for (uint32_t chunk : {0u, 1u}) {
        for (uint32_t layer = 0; layer < 4; ++layer) {
            const UnitKey key{kModel, chunk, layer};
            const auto bytes = encode(p, key);
            const UnitHeader h = read_header(bytes);
            EXPECT_EQ(h.format_version, 2);
            EXPECT_EQ(h.header_size, kHeaderSizeV2);
            EXPECT_EQ(h.profile_hash, p.hash());
            EXPECT_EQ(h.bits, p.bits_for(Level::c5, layer));
            EXPECT_EQ(h.sink_tokens, chunk == 0 ? 4 : 0);  // sinks are the context's first tokens
            std::vector<uint16_t> k(kShape.elements()), v(kShape.elements());
            Decoder d;
            d.decode(bytes, key, kShape, contiguous(k.data(), kShape), contiguous(v.data(), kShape),
                     Level::c5, p.hash());
            const size_t sink = size_t{h.sink_tokens} * kShape.head_dim;
            for (size_t hd = 0; hd < kShape.n_kv_heads; ++hd) {  // sink rows are exact
                const size_t at = hd * kShape.n_tokens * kShape.head_dim;
                EXPECT_TRUE(std::equal(k.begin() + at, k.begin() + at + sink, kv.k.begin() + at));
                EXPECT_TRUE(std::equal(v.begin() + at, v.begin() + at + sink, kv.v.begin() + at));
            }
            if (chunk == 1) {
                testing::expect_within_quantisation_bound(kv.k, k, kShape, h.bits.k, true, "K");
                testing::expect_within_quantisation_bound(kv.v, v, kShape, h.bits.v, false, "V");
            }
        }
    }
}

TEST(FormatV2, EachHeadIsQuantisedAtItsOwnWidth) {
    const CodecProfile p = make_head_profile();
    const UnitKey key{kModel, 1, 2};  // layer 2: K widths 2 and 5, V widths 4 and 3
    const auto kv = testing::make_kv(kShape, 7);
    const auto bytes = encode(p, key, Level::c5, kShape, 7);
    const UnitHeader h = read_header(bytes);
    EXPECT_EQ(h.bits, (BitWidths{5, 4}));  // the header holds the widest head
    std::vector<uint16_t> k(kShape.elements()), v(kShape.elements());
    Decoder d;
    d.decode(bytes, key, kShape, contiguous(k.data(), kShape), contiguous(v.data(), kShape),
             Level::c5, p.hash());
    const UnitShape one{kShape.n_tokens, 1, kShape.head_dim};
    const size_t per = one.elements();
    auto head = [&](const std::vector<uint16_t>& x, size_t i) {
        return std::vector<uint16_t>(x.begin() + i * per, x.begin() + (i + 1) * per);
    };
    double err[2] = {0, 0};
    for (size_t i = 0; i < 2; ++i) {
        const auto& widths = (*p.head_bits_for(Level::c5, 2))[i];
        testing::expect_within_quantisation_bound(head(kv.k, i), head(k, i), one, widths.k, true,
                                                  "K");
        testing::expect_within_quantisation_bound(head(kv.v, i), head(v, i), one, widths.v, false,
                                                  "V");
        for (size_t j = i * per; j < (i + 1) * per; ++j)
            err[i] += std::abs(fp16_to_fp32(kv.k[j]) - fp16_to_fp32(k[j]));
    }
    EXPECT_GT(err[0], 4 * err[1]);  // the 2-bit K head is far coarser than the 5-bit one

    EncodeOptions o(Level::c5);
    o.profile = &p;
    o.head_bits = {{{3, 3}}};  // one width for a two-head unit
    expect_has(error_of([&] {
                   encode_unit({kModel, 1, 0}, kShape, contiguous(kv.k.data(), kShape),
                               contiguous(kv.v.data(), kShape), o);
               }),
               "per-head widths of layer 0 cover 1 KV heads, the unit has 2");
}

TEST(FormatV2, SinkCoversShortAndEmptyUnits) {
    const CodecProfile p = make_profile(64);
    for (const UnitShape& s : {UnitShape{3, 1, 8}, UnitShape{0, 1, 8}, UnitShape{64, 2, 4}}) {
        const auto kv = testing::make_kv(s, 2);
        const auto bytes = encode(p, {kModel, 0, 1}, Level::c5, s, 2);
        EXPECT_EQ(read_header(bytes).sink_tokens, s.n_tokens);
        std::vector<uint16_t> k(s.elements()), v(s.elements());
        Decoder d;
        d.decode(bytes, {kModel, 0, 1}, s, contiguous(k.data(), s), contiguous(v.data(), s));
        EXPECT_EQ(k, kv.k);  // all tokens are sinks: lossless
        EXPECT_EQ(v, kv.v);
    }
}

TEST(FormatV2, AnotherProfileIsRejected) {
    const CodecProfile p = make_profile(4), other = make_profile(2);
    const auto bytes = encode(p, {kModel, 1, 2});
    EXPECT_EQ(decode_error(bytes, {kModel, 1, 2}, p.hash()), "");
    expect_has(decode_error(bytes, {kModel, 1, 2}, other.hash()),
               "unit (1, 2): encoded with codec profile");
    EXPECT_EQ(decode_error(bytes, {kModel, 1, 2}, std::nullopt), "");  // caller without a profile
}

TEST(FormatV2, OldLevelsStayVersion1) {
    const auto kv = testing::make_kv(kShape, 1);
    const auto bytes = encode_unit({kModel, 0, 0}, kShape, contiguous(kv.k.data(), kShape),
                                   contiguous(kv.v.data(), kShape), EncodeOptions(Level::q5h));
    EXPECT_EQ(read_header(bytes).format_version, 1);
    EXPECT_EQ(read_header(bytes).header_size, kHeaderSize);
    EXPECT_EQ(bytes[4], 1);
}

TEST(FormatV2, CorruptionIsRejected) {
    const CodecProfile p = make_profile(4);
    const UnitKey key{kModel, 0, 2};
    const auto good = encode(p, key);
    for (size_t len = 0; len < good.size(); ++len) {
        const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(len));
        expect_has(decode_error(cut, key, p.hash()), "truncated");
    }
    for (size_t i = 0; i < kHeaderSizeV2; ++i) {
        auto bytes = good;
        bytes[i] ^= 0x01;
        EXPECT_FALSE(decode_error(bytes, key, p.hash()).empty()) << "header byte " << i;
    }
    auto bytes = good;
    bytes[66] = 1;  // reserved
    reseal_unit(bytes);
    expect_has(decode_error(bytes, key, p.hash()), "reserved bytes");
    bytes = good;
    const uint16_t sink = 41;  // more sinks than tokens
    std::memcpy(bytes.data() + 64, &sink, 2);
    reseal_unit(bytes);
    expect_has(decode_error(bytes, key, p.hash()), "sink tokens");
    bytes = good;
    bytes[32] = static_cast<uint8_t>(Level::q5h);  // an old level in a version-2 header
    reseal_unit(bytes);
    expect_has(decode_error(bytes, key, p.hash()), "level q5h in format version 2");

    std::mt19937 rng(3);
    for (int trial = 0; trial < 400; ++trial) {
        bytes = good;
        for (int f = 0; f < 1 + static_cast<int>(rng() % 4); ++f)
            bytes[kHeaderSizeV2 + rng() % (bytes.size() - kHeaderSizeV2)] ^=
                static_cast<uint8_t>(1 + rng() % 255);
        if (trial % 2) reseal_unit(bytes);
        decode_error(bytes, key, p.hash());  // an Error or a decode, never a crash
    }
}

}  // namespace
}  // namespace sparkv::codec
