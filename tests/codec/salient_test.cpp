// Unit format version 3: salient rows (tokens) kept at a wider width than the rest of a unit, their
// placement back among the other rows, the profile fields that choose them, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "codec/profile.h"
#include "codec/unit_format.h"
#include "common/error.h"
#include "common/fp16.h"
#include "common/paths.h"
#include "kv_test_data.h"

namespace sparkv::codec {
namespace {

constexpr uint64_t kModel = 0x0badc0ffee15900dULL;
constexpr UnitShape kShape{48, 2, 16};

CodecProfile make_profile(uint32_t sink) {
    CodecProfile p;
    p.model_fingerprint = kModel;
    p.n_layers = 2;
    p.sink_tokens = sink;
    p.levels.push_back({Level::c8, std::vector<BitWidths>(2, BitWidths{2, 2}), 0.05, 8.2});
    p.levels.back().salient_per_mille = 30;
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

std::vector<uint8_t> encode(const CodecProfile& p, const UnitKey& key, const testing::KvPair& kv,
                            std::span<const uint32_t> rows, const UnitShape& s = kShape,
                            Kernels kernels = Kernels::automatic) {
    EncodeOptions o(Level::c8);
    o.profile = &p;
    o.salient_rows = rows;
    o.kernels = kernels;
    return encode_unit(key, s, contiguous(kv.k.data(), s), contiguous(kv.v.data(), s), o);
}

struct Decoded {
    std::vector<uint16_t> k, v;
    UnitHeader header;
};
Decoded decode(const std::vector<uint8_t>& bytes, const UnitKey& key, const CodecProfile& p,
               const UnitShape& s = kShape, Kernels kernels = Kernels::automatic) {
    Decoded d{std::vector<uint16_t>(s.elements()), std::vector<uint16_t>(s.elements()), {}};
    Decoder decoder(kernels);
    d.header = decoder.decode(bytes, key, s, contiguous(d.k.data(), s), contiguous(d.v.data(), s),
                              Level::c8, p.hash());
    return d;
}

// The rows of x ([head][token][dim]) listed in `rows` (take) or not listed, from `first` on.
std::vector<uint16_t> select(const std::vector<uint16_t>& x, const UnitShape& s,
                             const std::vector<uint32_t>& rows, bool take, uint32_t first) {
    std::vector<uint16_t> out;
    for (size_t h = 0; h < s.n_kv_heads; ++h)
        for (uint32_t t = first; t < s.n_tokens; ++t) {
            const bool listed = std::find(rows.begin(), rows.end(), t) != rows.end();
            if (listed != take) continue;
            const auto at = x.begin() + static_cast<ptrdiff_t>((h * s.n_tokens + t) * s.head_dim);
            out.insert(out.end(), at, at + s.head_dim);
        }
    return out;
}

double mean_abs_error(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
    double sum = 0;
    for (size_t i = 0; i < a.size(); ++i) sum += std::abs(fp16_to_fp32(a[i]) - fp16_to_fp32(b[i]));
    return a.empty() ? 0 : sum / static_cast<double>(a.size());
}

TEST(FormatV3, SalientRowsKeepTheirWidthAndReturnToTheirPlaces) {
    const CodecProfile p = make_profile(4);
    const auto kv = testing::make_kv(kShape, 5);
    // Chunk 0: rows 1 and 3 are sinks (exact anyway) and are dropped from the list.
    const std::vector<uint32_t> rows = {1, 3, 5, 6, 20, 47};
    for (uint32_t chunk : {0u, 1u}) {
        const UnitKey key{kModel, chunk, 1};
        const auto bytes = encode(p, key, kv, rows);
        const Decoded d = decode(bytes, key, p);
        const uint32_t sink = chunk == 0 ? 4 : 0;
        const std::vector<uint32_t> kept = chunk == 0 ? std::vector<uint32_t>{5, 6, 20, 47} : rows;
        EXPECT_EQ(d.header.format_version, 3);
        EXPECT_EQ(d.header.header_size, kHeaderSizeV2);
        EXPECT_EQ(d.header.salient_rows, kept.size());
        EXPECT_EQ(d.header.salient_bits, 8);
        EXPECT_EQ(d.header.sink_tokens, sink);
        const UnitShape picked{static_cast<uint32_t>(kept.size()), kShape.n_kv_heads,
                               kShape.head_dim};
        const UnitShape rest{kShape.n_tokens - sink - picked.n_tokens, kShape.n_kv_heads,
                             kShape.head_dim};
        for (const auto& [x, y, per_channel, what] :
             {std::tuple{&kv.k, &d.k, true, "K"}, std::tuple{&kv.v, &d.v, false, "V"}}) {
            testing::expect_within_quantisation_bound(select(*x, kShape, kept, true, sink),
                                                      select(*y, kShape, kept, true, sink), picked,
                                                      8, per_channel, what);
            testing::expect_within_quantisation_bound(select(*x, kShape, kept, false, sink),
                                                      select(*y, kShape, kept, false, sink), rest,
                                                      2, per_channel, what);
            // 8 bits against 2: the salient rows come back far closer.
            EXPECT_LT(20 * mean_abs_error(select(*x, kShape, kept, true, sink),
                                          select(*y, kShape, kept, true, sink)),
                      mean_abs_error(select(*x, kShape, kept, false, sink),
                                     select(*y, kShape, kept, false, sink)))
                << what;
            for (size_t h = 0; h < kShape.n_kv_heads; ++h)  // sinks exact
                for (size_t i = 0; i < size_t{sink} * kShape.head_dim; ++i)
                    EXPECT_EQ((*x)[h * kShape.n_tokens * kShape.head_dim + i],
                              (*y)[h * kShape.n_tokens * kShape.head_dim + i]);
        }
    }
}

TEST(FormatV3, EdgeCasesOfTheRowList) {
    const CodecProfile p = make_profile(0);
    const auto kv = testing::make_kv(kShape, 9);
    const UnitKey key{kModel, 2, 0};
    // No rows: a version-2 unit, identical to encoding without the option.
    EXPECT_EQ(encode(p, key, kv, {}), encode(p, key, kv, std::vector<uint32_t>{}));
    EXPECT_EQ(read_header(encode(p, key, kv, {})).format_version, 2);
    // Every row salient: nothing left at the narrow width; also the first and the last row.
    std::vector<uint32_t> all(kShape.n_tokens);
    std::iota(all.begin(), all.end(), 0u);
    for (const auto& rows : {all, std::vector<uint32_t>{0}, std::vector<uint32_t>{47}}) {
        const Decoded d = decode(encode(p, key, kv, rows), key, p);
        EXPECT_EQ(d.header.salient_rows, rows.size());
        const UnitShape picked{static_cast<uint32_t>(rows.size()), 2, 16};
        testing::expect_within_quantisation_bound(select(kv.k, kShape, rows, true, 0),
                                                  select(d.k, kShape, rows, true, 0), picked, 8,
                                                  true, "K");
        testing::expect_within_quantisation_bound(select(kv.v, kShape, rows, true, 0),
                                                  select(d.v, kShape, rows, true, 0), picked, 8,
                                                  false, "V");
    }
    // A one-token unit.
    const UnitShape one{1, 2, 16};
    const auto kv1 = testing::make_kv(one, 3);
    const std::vector<uint32_t> zero = {0};
    EXPECT_EQ(decode(encode(p, key, kv1, zero, one), key, p, one).header.salient_rows, 1u);
}

TEST(FormatV3, ScalarAndSimdKernelsAgreeBitForBit) {
    const CodecProfile p = make_profile(4);
    const auto kv = testing::make_kv(kShape, 11);
    const std::vector<uint32_t> rows = {2, 9, 10, 33};
    const UnitKey key{kModel, 0, 1};
    const auto fast = encode(p, key, kv, rows);
    EXPECT_EQ(fast, encode(p, key, kv, rows, kShape, Kernels::scalar));
    const Decoded a = decode(fast, key, p), b = decode(fast, key, p, kShape, Kernels::scalar);
    EXPECT_EQ(a.k, b.k);
    EXPECT_EQ(a.v, b.v);
}

TEST(FormatV3, BadRowListsAreRefusedAtEncode) {
    const CodecProfile p = make_profile(0);
    const auto kv = testing::make_kv(kShape, 1);
    const UnitKey key{kModel, 1, 0};
    for (const auto& rows :
         {std::vector<uint32_t>{5, 5}, std::vector<uint32_t>{7, 3}, std::vector<uint32_t>{48}}) {
        expect_has(error_of([&] { encode(p, key, kv, rows); }),
                   "unit (1, 0): salient rows must be ascending token indices below 48");
    }
    EncodeOptions o(Level::q5h);
    const std::vector<uint32_t> rows = {3};
    o.salient_rows = rows;
    expect_has(error_of([&] {
                   encode_unit(key, kShape, contiguous(kv.k.data(), kShape),
                               contiguous(kv.v.data(), kShape), o);
               }),
               "salient rows need a calibrated level, not q5h");
    EncodeOptions wide(Level::c8);
    wide.profile = &p;
    wide.salient_rows = rows;
    wide.salient_bits = 9;
    expect_has(error_of([&] {
                   encode_unit(key, kShape, contiguous(kv.k.data(), kShape),
                               contiguous(kv.v.data(), kShape), wide);
               }),
               "salient rows at 9 bits");
}

TEST(FormatV3, CorruptionIsRejected) {
    const CodecProfile p = make_profile(4);
    const auto kv = testing::make_kv(kShape, 4);
    const UnitKey key{kModel, 0, 1};
    const std::vector<uint32_t> rows = {8, 12, 30};
    const auto good = encode(p, key, kv, rows);
    auto decode_error = [&](const std::vector<uint8_t>& bytes) {
        return error_of([&] { decode(bytes, key, p); });
    };
    EXPECT_EQ(decode_error(good), "");
    for (size_t len = 0; len < good.size(); ++len)
        expect_has(decode_error({good.begin(), good.begin() + static_cast<ptrdiff_t>(len)}),
                   "truncated");
    for (size_t i = 0; i < kHeaderSizeV2; ++i) {
        auto bytes = good;
        bytes[i] ^= 0x01;
        EXPECT_FALSE(decode_error(bytes).empty()) << "header byte " << i;
    }
    const auto patched = [&](size_t offset, const void* value, size_t n) {
        auto bytes = good;
        std::memcpy(bytes.data() + offset, value, n);
        reseal_unit(bytes);
        return decode_error(bytes);
    };
    const uint32_t too_many = 45, none = 0;
    expect_has(patched(68, &too_many, 4), "45 salient rows and 4 sink tokens");
    expect_has(patched(68, &none, 4), "corrupt header: 0 salient rows");
    const uint8_t bits = 9, reserved = 1;
    expect_has(patched(66, &bits, 1), "salient rows at 9 bits");
    expect_has(patched(67, &reserved, 1), "reserved bytes");
    // The row list sits right after the two sink sections; find it by its values.
    size_t list = 0;
    for (size_t i = kHeaderSizeV2; i + 12 <= good.size() && list == 0; ++i)
        if (std::memcmp(good.data() + i, rows.data(), 12) == 0) list = i;
    ASSERT_GT(list, 0u);
    const uint32_t in_sinks = 2, repeated = 8, past_end = 48;
    for (const auto& [index, value] :
         {std::pair{0, &in_sinks}, std::pair{1, &repeated}, std::pair{1, &past_end}})
        expect_has(patched(list + 4 * static_cast<size_t>(index), value, 4),
                   "salient row list is not ascending");
    std::mt19937 rng(7);
    for (int trial = 0; trial < 400; ++trial) {
        auto bytes = good;
        for (int f = 0; f < 1 + static_cast<int>(rng() % 4); ++f)
            bytes[kHeaderSizeV2 + rng() % (bytes.size() - kHeaderSizeV2)] ^=
                static_cast<uint8_t>(1 + rng() % 255);
        if (trial % 2) reseal_unit(bytes);
        decode_error(bytes);  // an Error or a decode, never a crash
    }
}

TEST(FormatV3, ProfileCarriesAndHashesTheSalientFraction) {
    CodecProfile p = make_profile(4);
    const uint64_t with = p.hash();
    const CodecProfile back = profile_from_json(profile_to_json(p), "test");
    EXPECT_EQ(back.hash(), with);
    EXPECT_EQ(back.find(Level::c8)->salient_per_mille, 30u);
    EXPECT_EQ(back.find(Level::c8)->salient_bits, 8);
    EXPECT_TRUE(back.uses_saliency());
    p.saliency_queries = 32;
    EXPECT_NE(p.hash(), with);
    p.saliency_queries = 64;
    p.levels.back().salient_per_mille = 20;
    EXPECT_NE(p.hash(), with);
    p.levels.back().salient_per_mille = 0;
    EXPECT_FALSE(p.uses_saliency());
    // Without salient tokens, the fields stay out of the hash and the file.
    const uint64_t plain = p.hash();
    p.saliency_queries = 16;
    EXPECT_EQ(p.hash(), plain);
    EXPECT_EQ(profile_to_json(p).find("salient"), std::string::npos);

    auto text = profile_to_json(make_profile(4));
    const auto at = text.find("\"version\": 3");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 12, "\"version\": 2");
    expect_has(error_of([&] { profile_from_json(text, "old.json"); }),
               "salient tokens need version 3");
    auto big = profile_to_json(make_profile(4));
    big.replace(big.find("\"salient_per_mille\": 30"), 23, "\"salient_per_mille\": 1001");
    expect_has(error_of([&] { profile_from_json(big, "big.json"); }), "out of range");
}

TEST(DefaultLevel, TheProfileNamesItAndItIsNotHashed) {
    CodecProfile p = make_profile(4);
    EXPECT_EQ(default_lossy_level(nullptr), Level::q5h);
    EXPECT_EQ(default_lossy_level(&p), Level::q5h);  // a profile that names none
    const uint64_t hash = p.hash();
    p.default_level = Level::c8;
    EXPECT_EQ(p.hash(), hash);  // changes no unit's encoding
    EXPECT_EQ(default_lossy_level(&p), Level::c8);
    const CodecProfile back = profile_from_json(profile_to_json(p), "test");
    ASSERT_TRUE(back.default_level.has_value());
    EXPECT_EQ(*back.default_level, Level::c8);
    auto text = profile_to_json(p);
    text.replace(text.find("\"default_level\": \"c8\""), 21, "\"default_level\": \"c6\"");
    expect_has(error_of([&] { profile_from_json(text, "p.json"); }),
               "default level c6 has no table");
    // No profile for an unknown model: the fixed default.
    EXPECT_FALSE(find_model_profile(0x5eed5eed5eed5eedULL).has_value());
    EXPECT_EQ(default_lossy_level(0x5eed5eed5eed5eedULL), Level::q5h);
}

TEST(DefaultLevel, TheShippedProfileOfTheReferenceModelLoads) {
    // share/codec-profiles/: found beside the sources for a binary in the build tree.
    const std::string path = shipped_data_path("codec-profiles/b8951aa641e75aa1.json");
    ASSERT_FALSE(path.empty());
    const CodecProfile p = load_profile(path);  // checks the hash against the contents
    EXPECT_EQ(p.model_fingerprint, 0xb8951aa641e75aa1ULL);
    ASSERT_TRUE(p.default_level.has_value());
    EXPECT_EQ(*p.default_level, Level::c5);
    ASSERT_NE(p.find(Level::c5), nullptr);
    EXPECT_GT(p.find(Level::c5)->salient_per_mille, 0u);
    EXPECT_EQ(shipped_data_path("codec-profiles/none.json"), "");
}

}  // namespace
}  // namespace sparkv::codec
