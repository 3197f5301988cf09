// Decoding must reject every mismatch, truncation and corruption with an Error, never crash or
// touch memory outside its buffers.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "codec/codec.h"
#include "codec/unit_format.h"
#include "common/error.h"
#include "kv_test_data.h"

namespace sparkv::codec {
namespace {

constexpr UnitKey kKey{0x1234567890abcdefULL, 3, 17};

std::vector<uint8_t> encode(const UnitShape& s, Level level, uint32_t seed = 1) {
    const auto kv = testing::make_kv(s, seed);
    return encode_unit(kKey, s, contiguous(kv.k.data(), s), contiguous(kv.v.data(), s), level);
}

// Decodes into buffers with guard zones on both sides and checks the guards afterwards.
// Returns the error message, or "" on success.
std::string decode_guarded(const std::vector<uint8_t>& bytes, const UnitShape& s,
                           const UnitKey& key = kKey, std::optional<Level> level = std::nullopt) {
    constexpr size_t kGuard = 64;
    const size_t n = s.elements();
    std::vector<uint16_t> k(n + 2 * kGuard, 0xA5A5), v(n + 2 * kGuard, 0xA5A5);
    Decoder decoder;
    std::string message;
    try {
        decoder.decode(bytes, key, s, contiguous(k.data() + kGuard, s),
                       contiguous(v.data() + kGuard, s), level);
    } catch (const Error& e) {
        message = e.what();
        if (message.empty()) message = "(empty message)";
    }
    for (size_t i = 0; i < kGuard; ++i) {
        EXPECT_EQ(k[i], 0xA5A5);
        EXPECT_EQ(v[i], 0xA5A5);
        EXPECT_EQ(k[kGuard + n + i], 0xA5A5);
        EXPECT_EQ(v[kGuard + n + i], 0xA5A5);
    }
    return message;
}

void expect_error(const std::string& message, const std::string& part) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "message: '" << message << "', expected '" << part << "'";
}

const UnitShape kSmall{24, 2, 16};

TEST(Corruption, ValidUnitDecodes) {
    for (const LevelInfo& info : all_levels())
        EXPECT_EQ(decode_guarded(encode(kSmall, info.level), kSmall), "");
}

TEST(Corruption, KeyMismatches) {
    const auto bytes = encode(kSmall, Level::q5h);
    UnitKey other = kKey;
    other.fingerprint ^= 1;
    expect_error(decode_guarded(bytes, kSmall, other),
                 "unit (3, 17): encoded for model fingerprint");
    other = kKey;
    other.chunk = 4;
    expect_error(decode_guarded(bytes, kSmall, other), "unit (4, 17): the data is unit (3, 17)");
    other = kKey;
    other.layer = 16;
    expect_error(decode_guarded(bytes, kSmall, other), "unit (3, 16): the data is unit (3, 17)");
}

TEST(Corruption, ShapeAndLevelMismatches) {
    const auto bytes = encode(kSmall, Level::q5h);
    expect_error(decode_guarded(bytes, {23, 2, 16}),
                 "unit (3, 17): shape 24 tokens x 2 KV heads x 16 does not match");
    expect_error(decode_guarded(bytes, {24, 3, 16}), "does not match");
    expect_error(decode_guarded(bytes, {24, 2, 8}), "does not match");
    expect_error(decode_guarded(bytes, kSmall, kKey, Level::q4h),
                 "unit (3, 17): level q5h where q4h was expected");
    EXPECT_EQ(decode_guarded(bytes, kSmall, kKey, Level::q5h), "");
}

TEST(Corruption, PayloadFlipIsAChecksumMismatch) {
    for (const LevelInfo& info : all_levels()) {
        auto bytes = encode(kSmall, info.level);
        bytes[kHeaderSize + (bytes.size() - kHeaderSize) / 2] ^= 0x10;
        expect_error(decode_guarded(bytes, kSmall), "unit (3, 17): checksum mismatch");
    }
}

TEST(Corruption, HeaderFlipIsDetected) {
    const auto good = encode(kSmall, Level::q5h);
    for (size_t i = 0; i < kHeaderSize; ++i) {
        auto bytes = good;
        bytes[i] ^= 0x01;
        const std::string message = decode_guarded(bytes, kSmall);
        EXPECT_FALSE(message.empty()) << "flip in header byte " << i << " went unnoticed";
        EXPECT_EQ(message.rfind("unit (3, 17): ", 0), 0u) << message;
    }
}

TEST(Corruption, BadMagicAndVersion) {
    auto bytes = encode(kSmall, Level::q5h);
    bytes[0] = 'X';
    expect_error(decode_guarded(bytes, kSmall), "not an encoded KV unit");
    bytes = encode(kSmall, Level::q5h);
    bytes[4] = 9;
    reseal_unit(bytes);
    expect_error(decode_guarded(bytes, kSmall), "format version 9 is not supported");
}

TEST(Corruption, TruncationAtEveryLength) {
    for (const LevelInfo& info : all_levels()) {
        const auto good = encode(kSmall, info.level);
        for (size_t len = 0; len < good.size(); ++len) {
            const std::vector<uint8_t> cut(good.begin(),
                                           good.begin() + static_cast<ptrdiff_t>(len));
            const std::string message = decode_guarded(cut, kSmall);
            ASSERT_NE(message.find("truncated"), std::string::npos)
                << info.name << " cut to " << len << ": " << message;
        }
    }
}

TEST(Corruption, TruncatedFullSizeUnit) {
    const UnitShape s{1024, 3, 64};
    const auto good = encode(s, Level::q5h);
    for (size_t len = 0; len < good.size(); len += 997) {
        const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(len));
        expect_error(decode_guarded(cut, s), "truncated");
    }
}

TEST(Corruption, TrailingBytes) {
    auto bytes = encode(kSmall, Level::q3h);
    bytes.push_back(0);
    expect_error(decode_guarded(bytes, kSmall), "1 unexpected bytes after the payload");
}

TEST(Corruption, RandomByteFlipsNeverCrash) {
    std::mt19937 rng(42);
    for (const LevelInfo& info : all_levels()) {
        const auto good = encode(kSmall, info.level);
        for (int trial = 0; trial < 300; ++trial) {
            auto bytes = good;
            const int flips = 1 + static_cast<int>(rng() % 8);
            for (int f = 0; f < flips; ++f)
                bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
            EXPECT_FALSE(decode_guarded(bytes, kSmall).empty());
        }
    }
}

// The checksums stop random corruption early; a hostile unit can carry valid checksums. Reseal
// corrupted units so the payload parser itself meets the damage: it must fail cleanly or decode.
TEST(Corruption, ResealedCorruptionReachesTheParserSafely) {
    std::mt19937 rng(7);
    size_t rejected = 0, total = 0;
    for (const UnitShape& s : {kSmall, UnitShape{300, 3, 64}}) {
        for (const LevelInfo& info : all_levels()) {
            const auto good = encode(s, info.level);
            for (int trial = 0; trial < 150; ++trial) {
                auto bytes = good;
                const int flips = 1 + static_cast<int>(rng() % 4);
                for (int f = 0; f < flips; ++f) {
                    const size_t at = kHeaderSize + rng() % (bytes.size() - kHeaderSize);
                    bytes[at] ^= static_cast<uint8_t>(1 + rng() % 255);
                }
                if (trial % 3 == 0) {  // also cut the payload short, consistently with the header
                    bytes.resize(kHeaderSize + rng() % (bytes.size() - kHeaderSize));
                    const uint64_t payload = bytes.size() - kHeaderSize;
                    std::memcpy(bytes.data() + 40, &payload, sizeof payload);
                }
                reseal_unit(bytes);
                ++total;
                const std::string message = decode_guarded(bytes, s);
                if (!message.empty()) {
                    ++rejected;
                    EXPECT_EQ(message.rfind("unit (3, 17): ", 0), 0u) << message;
                }
            }
        }
    }
    EXPECT_GT(rejected, total / 4);  // most structural damage is caught
}

TEST(Corruption, HostileParametersAreRejected) {
    // One element per section: the parameters are stored raw (mode byte 0, min, step), right at
    // the start of the payload, so a hostile value can be planted and the unit resealed.
    const UnitShape s{1, 1, 1};
    const auto good = encode(s, Level::q5h);
    ASSERT_EQ(good[kHeaderSize], 0);  // raw parameters
    EXPECT_EQ(decode_guarded(good, s), "");
    for (uint16_t step : {uint16_t{0x7c00}, uint16_t{0x7e00}, uint16_t{0xbc00}}) {  // inf, NaN, -1
        auto bytes = good;
        std::memcpy(bytes.data() + kHeaderSize + 3, &step, 2);
        reseal_unit(bytes);
        expect_error(decode_guarded(bytes, s),
                     "unit (3, 17): K section: corrupt quantisation parameters");
    }
    auto bytes = good;
    const uint16_t nan = 0xfe00;
    std::memcpy(bytes.data() + kHeaderSize + 1, &nan, 2);
    reseal_unit(bytes);
    expect_error(decode_guarded(bytes, s), "corrupt quantisation parameters");
}

TEST(Corruption, ReservedAndOutOfRangeHeaderFields) {
    const auto good = encode(kSmall, Level::q5h);
    auto with = [&](size_t offset, uint8_t value) {
        auto bytes = good;
        bytes[offset] = value;
        reseal_unit(bytes);
        return decode_guarded(bytes, kSmall);
    };
    expect_error(with(32, 10), "unknown level 10");
    expect_error(with(33, 9), "bit widths");
    expect_error(with(34, 1), "bit widths");
    expect_error(with(35, 0), "grouping");
    expect_error(with(37, 1), "reserved");
    expect_error(with(28, 0), "out of range");  // zero KV heads
}

}  // namespace
}  // namespace sparkv::codec
