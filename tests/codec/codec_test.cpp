#include "codec/codec.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "kv_test_data.h"

namespace sparkv::codec {
namespace {

using testing::expect_within_quantisation_bound;
using testing::make_kv;

constexpr UnitShape kReference{1024, 3, 64};  // one chunk of the reference model

struct Decoded {
    std::vector<uint8_t> bytes;
    std::vector<uint16_t> k, v;
    UnitHeader header;
};

Decoded roundtrip(const UnitKey& key, const UnitShape& s, const testing::KvPair& kv,
                  const EncodeOptions& options, Kernels kernels = Kernels::automatic) {
    Decoded d;
    d.bytes = encode_unit(key, s, contiguous(kv.k.data(), s), contiguous(kv.v.data(), s), options);
    d.k.assign(s.elements(), 0xDEAD);
    d.v.assign(s.elements(), 0xDEAD);
    Decoder decoder(kernels);
    d.header = decoder.decode(d.bytes, key, s, contiguous(d.k.data(), s), contiguous(d.v.data(), s),
                              options.level);
    return d;
}

TEST(Levels, NamesRoundTrip) {
    for (const LevelInfo& info : all_levels()) {
        EXPECT_EQ(level_from_name(info.name), info.level);
        EXPECT_EQ(level_name(info.level), info.name);
    }
    EXPECT_TRUE(level_info(Level::fp16).lossless);
    EXPECT_FALSE(level_info(Level::q5h).lossless);
    EXPECT_EQ(level_info(Level::q5h).uniform_bits, (BitWidths{5, 5}));
    try {
        level_from_name("q9x");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("q5h"), std::string::npos) << e.what();
    }
}

TEST(Levels, ParseLayerBits) {
    const auto table = parse_layer_bits("0-1:6/5,3:4,29:8/2", std::vector<BitWidths>(30, {5, 5}));
    ASSERT_EQ(table.size(), 30u);
    EXPECT_EQ(table[0], (BitWidths{6, 5}));
    EXPECT_EQ(table[1], (BitWidths{6, 5}));
    EXPECT_EQ(table[2], (BitWidths{5, 5}));
    EXPECT_EQ(table[3], (BitWidths{4, 4}));
    EXPECT_EQ(table[29], (BitWidths{8, 2}));
    EXPECT_EQ(parse_layer_bits("", std::vector<BitWidths>(4, {3, 3})),
              std::vector<BitWidths>(4, BitWidths{3, 3}));
    for (const char* bad : {"0-1", "0:9", "0:1", "5-2:4", "30:4", "a:4", "0:4/x", "0:4,"}) {
        EXPECT_THROW(parse_layer_bits(bad, std::vector<BitWidths>(30, {5, 5})), Error) << bad;
    }
}

TEST(Levels, LayerProfiles) {
    const EncodeOptions q5h(Level::q5h, 30);
    EXPECT_EQ(format_layer_bits(q5h.table(30)), "0-11:4/3,12-26:5/4,27-29:4/3");
    EXPECT_EQ(parse_layer_bits(format_layer_bits(q5h.table(30)), std::vector<BitWidths>(30)),
              q5h.table(30));
    EXPECT_EQ(EncodeOptions(Level::q5h).bits_for(20), (BitWidths{5, 5}));  // no model: uniform
    EXPECT_EQ(EncodeOptions(Level::fp16, 30).bits_for(20), (BitWidths{16, 16}));
    EXPECT_EQ(EncodeOptions(Level::int8, 30).bits_for(20), (BitWidths{8, 8}));
    EncodeOptions custom(Level::q5h, 30);
    custom.layer_bits = {{8, 8}};
    EXPECT_EQ(custom.bits_for(0), (BitWidths{8, 8}));  // the explicit table wins
    EXPECT_EQ(custom.bits_for(15), (BitWidths{5, 4}));
    EXPECT_EQ(EncodeOptions(Level::q5h, 1).bits_for(0), level_info(Level::q5h).other_bits);
}

TEST(Codec, Fp16IsBitExactAndSmallerThanRaw) {
    const auto kv = make_kv(kReference, 1);
    const Decoded d = roundtrip({7, 2, 5}, kReference, kv, {Level::fp16});
    EXPECT_EQ(d.k, kv.k);
    EXPECT_EQ(d.v, kv.v);
    EXPECT_LT(d.bytes.size(), 4 * kReference.elements());
    EXPECT_EQ(d.header.bits, (BitWidths{16, 16}));
}

TEST(Codec, Fp16KeepsSpecialValues) {
    const UnitShape s{5, 2, 3};
    testing::KvPair kv{std::vector<uint16_t>(s.elements()), std::vector<uint16_t>(s.elements())};
    const uint16_t specials[] = {0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x8000, 0x0000, 0x0001, 0x7bff};
    for (size_t i = 0; i < s.elements(); ++i) {
        kv.k[i] = specials[i % 8];
        kv.v[i] = specials[(i + 3) % 8];
    }
    const Decoded d = roundtrip({1, 0, 0}, s, kv, {Level::fp16});
    EXPECT_EQ(d.k, kv.k);
    EXPECT_EQ(d.v, kv.v);
}

TEST(Codec, LossyLevelsStayWithinTheQuantisationBound) {
    const auto kv = make_kv(kReference, 2);
    size_t previous = SIZE_MAX;
    for (const LevelInfo& info : all_levels()) {
        if (info.lossless) continue;
        const Decoded d = roundtrip({9, 1, 4}, kReference, kv, {info.level});
        SCOPED_TRACE(std::string(info.name));
        EXPECT_EQ(d.header.bits, info.uniform_bits);
        expect_within_quantisation_bound(kv.k, d.k, kReference, info.uniform_bits.k, true, "K");
        expect_within_quantisation_bound(kv.v, d.v, kReference, info.uniform_bits.v, false, "V");
        EXPECT_LT(d.bytes.size(), previous);  // each level is smaller than the one before
        previous = d.bytes.size();
    }
}

TEST(Codec, PerLayerBitWidths) {
    const auto kv = make_kv(kReference, 3);
    EncodeOptions options{Level::q5h};
    options.layer_bits = parse_layer_bits("2:8/3,3:2/6", options.table(30));
    const Decoded layer2 = roundtrip({1, 0, 2}, kReference, kv, options);
    const Decoded layer3 = roundtrip({1, 0, 3}, kReference, kv, options);
    const Decoded layer4 = roundtrip({1, 0, 4}, kReference, kv, options);
    EXPECT_EQ(layer2.header.bits, (BitWidths{8, 3}));
    EXPECT_EQ(layer3.header.bits, (BitWidths{2, 6}));
    EXPECT_EQ(layer4.header.bits, (BitWidths{5, 5}));
    expect_within_quantisation_bound(kv.k, layer2.k, kReference, 8, true, "K layer 2");
    expect_within_quantisation_bound(kv.v, layer2.v, kReference, 3, false, "V layer 2");
    expect_within_quantisation_bound(kv.k, layer3.k, kReference, 2, true, "K layer 3");
    expect_within_quantisation_bound(kv.v, layer3.v, kReference, 6, false, "V layer 3");
    // fp16 ignores the table.
    options.level = Level::fp16;
    EXPECT_EQ(options.bits_for(2), (BitWidths{16, 16}));
}

TEST(Codec, AwkwardShapes) {
    const UnitShape shapes[] = {{0, 3, 64}, {1, 3, 64},    {1, 1, 1},    {2, 1, 3},   {5, 2, 7},
                                {17, 4, 9}, {1000, 3, 64}, {3, 1, 1024}, {100, 2, 65}};
    for (const UnitShape& s : shapes) {
        SCOPED_TRACE(::testing::Message()
                     << s.n_tokens << "x" << s.n_kv_heads << "x" << s.head_dim);
        const auto kv = make_kv(s, s.n_tokens + s.head_dim);
        const Decoded exact = roundtrip({3, 4, 5}, s, kv, {Level::fp16});
        EXPECT_EQ(exact.k, kv.k);
        EXPECT_EQ(exact.v, kv.v);
        for (Level level : {Level::int8, Level::q5h, Level::q3h}) {
            const Decoded d = roundtrip({3, 4, 5}, s, kv, {level});
            const BitWidths b = level_info(level).uniform_bits;
            expect_within_quantisation_bound(kv.k, d.k, s, b.k, true, "K");
            expect_within_quantisation_bound(kv.v, d.v, s, b.v, false, "V");
        }
    }
}

TEST(Codec, ConstantAndExtremeData) {
    const UnitShape s{64, 2, 16};
    for (uint16_t value :
         {uint16_t{0x0000}, uint16_t{0x3c00}, uint16_t{0x8000}, uint16_t{0x0001}}) {
        testing::KvPair kv{std::vector<uint16_t>(s.elements(), value),
                           std::vector<uint16_t>(s.elements(), value)};
        const Decoded d = roundtrip({1, 1, 1}, s, kv, {Level::q5h});
        for (size_t i = 0; i < s.elements(); ++i) {
            ASSERT_EQ(fp16_to_fp32(d.k[i]), fp16_to_fp32(value));
            ASSERT_EQ(fp16_to_fp32(d.v[i]), fp16_to_fp32(value));
        }
    }
    // The whole fp16 range in every group, at the smallest bit width: output stays finite.
    testing::KvPair kv{std::vector<uint16_t>(s.elements()), std::vector<uint16_t>(s.elements())};
    for (size_t i = 0; i < s.elements(); ++i) kv.k[i] = kv.v[i] = (i % 2) ? 0x7bff : 0xfbff;
    EncodeOptions options{Level::q3h};
    options.layer_bits = {{2, 2}};
    const Decoded d = roundtrip({1, 1, 0}, s, kv, options);
    for (size_t i = 0; i < s.elements(); ++i) {
        ASSERT_TRUE(std::isfinite(fp16_to_fp32(d.k[i])));
        ASSERT_TRUE(std::isfinite(fp16_to_fp32(d.v[i])));
    }
    expect_within_quantisation_bound(kv.k, d.k, s, 2, true, "K");
}

TEST(Codec, LossyLevelsRejectNonFiniteInput) {
    const UnitShape s{8, 2, 8};
    auto kv = make_kv(s, 4);
    kv.v[100] = 0x7c00;
    try {
        encode_unit({1, 3, 17}, s, contiguous(kv.k.data(), s), contiguous(kv.v.data(), s),
                    {Level::q5h});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unit (3, 17)"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("inf or NaN"), std::string::npos) << e.what();
    }
}

TEST(Codec, StridedViewsReadAndWriteOnlyTheirRows) {
    const UnitShape s{10, 3, 8};
    const auto kv = make_kv(s, 5);
    const uint64_t stride = 128;  // e.g. a cache with room for 16 positions per head
    std::vector<uint16_t> k_cache(stride * 3, 0x1234), v_cache(stride * 3, 0x1234);
    for (size_t h = 0; h < 3; ++h) {
        std::copy_n(kv.k.begin() + h * 80, 80, k_cache.begin() + h * stride);
        std::copy_n(kv.v.begin() + h * 80, 80, v_cache.begin() + h * stride);
    }
    for (Level level : {Level::fp16, Level::q4h}) {
        const auto bytes = encode_unit({1, 0, 0}, s, ConstKvView{k_cache.data(), stride},
                                       ConstKvView{v_cache.data(), stride}, {level});
        const auto contiguous_bytes = encode_unit({1, 0, 0}, s, contiguous(kv.k.data(), s),
                                                  contiguous(kv.v.data(), s), {level});
        EXPECT_EQ(bytes, contiguous_bytes);
        std::vector<uint16_t> k_out(stride * 3, 0x5555), v_out(stride * 3, 0x5555);
        Decoder decoder;
        decoder.decode(bytes, {1, 0, 0}, s, KvView{k_out.data(), stride},
                       KvView{v_out.data(), stride});
        for (size_t h = 0; h < 3; ++h) {
            for (size_t i = 80; i < stride; ++i) {
                ASSERT_EQ(k_out[h * stride + i], 0x5555);
                ASSERT_EQ(v_out[h * stride + i], 0x5555);
            }
        }
    }
}

TEST(Codec, ScalarAndSimdKernelsAgreeBitForBit) {
    const auto kv = make_kv(kReference, 6);
    for (Level level : {Level::int8, Level::q5h, Level::q3h}) {
        EncodeOptions scalar_options{level};
        scalar_options.kernels = Kernels::scalar;
        const Decoded a = roundtrip({1, 0, 0}, kReference, kv, scalar_options, Kernels::scalar);
        const Decoded b = roundtrip({1, 0, 0}, kReference, kv, {level}, Kernels::automatic);
        EXPECT_EQ(a.bytes, b.bytes) << level_name(level);
        EXPECT_EQ(a.k, b.k) << level_name(level);
        EXPECT_EQ(a.v, b.v) << level_name(level);
    }
}

TEST(Codec, DecoderIsReusableAcrossShapesAndLevels) {
    Decoder decoder;
    for (int round = 0; round < 2; ++round) {
        for (const UnitShape& s : {kReference, UnitShape{7, 2, 5}, UnitShape{300, 3, 64}}) {
            const auto kv = make_kv(s, 7);
            for (Level level : {Level::q3h, Level::fp16, Level::q6h}) {
                const auto bytes = encode_unit({2, 1, 1}, s, contiguous(kv.k.data(), s),
                                               contiguous(kv.v.data(), s), {level});
                std::vector<uint16_t> k(s.elements()), v(s.elements());
                decoder.decode(bytes, {2, 1, 1}, s, contiguous(k.data(), s),
                               contiguous(v.data(), s));
                if (level == Level::fp16) {
                    EXPECT_EQ(k, kv.k);
                    EXPECT_EQ(v, kv.v);
                } else {
                    expect_within_quantisation_bound(kv.v, v, s, level_info(level).uniform_bits.v,
                                                     false, "V");
                }
            }
        }
    }
}

TEST(Codec, ReadHeaderReportsTheFields) {
    const UnitShape s{1000, 3, 64};
    const auto kv = make_kv(s, 8);
    EncodeOptions options{Level::q4h};
    const auto bytes = encode_unit({0xabcdef, 7, 29}, s, contiguous(kv.k.data(), s),
                                   contiguous(kv.v.data(), s), options);
    const UnitHeader h = read_header(bytes);
    EXPECT_EQ(h.key, (UnitKey{0xabcdef, 7, 29}));
    EXPECT_EQ(h.shape, s);
    EXPECT_EQ(h.level, Level::q4h);
    EXPECT_EQ(h.bits, (BitWidths{4, 4}));
    EXPECT_EQ(h.k_grouping, Grouping::per_channel);
    EXPECT_EQ(h.v_grouping, Grouping::per_token_head);
    EXPECT_EQ(h.payload_size + kHeaderSize, bytes.size());
}

TEST(Codec, RoundtripHelperMatchesEncodeThenDecode) {
    const auto kv = make_kv(kReference, 9);
    std::vector<uint16_t> k(kReference.elements()), v(kReference.elements());
    Decoder decoder;
    const size_t size =
        roundtrip_unit({1, 2, 3}, kReference, contiguous(kv.k.data(), kReference),
                       contiguous(kv.v.data(), kReference), {Level::q5h}, decoder,
                       contiguous(k.data(), kReference), contiguous(v.data(), kReference));
    const Decoded d = roundtrip({1, 2, 3}, kReference, kv, {Level::q5h});
    EXPECT_EQ(size, d.bytes.size());
    EXPECT_EQ(k, d.k);
    EXPECT_EQ(v, d.v);
}

TEST(Codec, RejectsInvalidShapesAndBuffers) {
    const auto kv = make_kv({4, 1, 4}, 1);
    EXPECT_THROW(encode_unit({}, {4, 0, 4}, {kv.k.data(), 16}, {kv.v.data(), 16}), Error);
    EXPECT_THROW(encode_unit({}, {4, 1, 0}, {kv.k.data(), 16}, {kv.v.data(), 16}), Error);
    EXPECT_THROW(encode_unit({}, {4, 1, 4}, {nullptr, 16}, {kv.v.data(), 16}), Error);
    EXPECT_THROW(encode_unit({}, {2, 2, 4}, {kv.k.data(), 4}, {kv.v.data(), 8}),
                 Error);  // overlapping heads
    EncodeOptions options{Level::q5h};
    options.layer_bits = {{9, 5}};
    EXPECT_THROW(encode_unit({}, {4, 1, 4}, {kv.k.data(), 16}, {kv.v.data(), 16}, options), Error);
}

}  // namespace
}  // namespace sparkv::codec
