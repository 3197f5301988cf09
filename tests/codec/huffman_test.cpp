#include "codec/huffman.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace sparkv::codec::huffman {
namespace {

std::vector<uint8_t> roundtrip(const std::vector<uint8_t>& symbols, int n_symbols,
                               size_t* encoded_size = nullptr) {
    uint32_t counts[kMaxSymbols];
    histogram(symbols.data(), symbols.size(), counts);
    const Code code = build_code(counts, n_symbols);
    EXPECT_TRUE(code_valid(code, n_symbols));
    std::vector<uint8_t> bytes;
    write_code(code, n_symbols, bytes);
    encode_streams(symbols.data(), symbols.size(), build_encode_table(code), bytes);
    if (encoded_size) *encoded_size = bytes.size();

    size_t pos = 0;
    Code read;
    EXPECT_TRUE(read_code(bytes.data(), bytes.size(), pos, n_symbols, read));
    EXPECT_EQ(read.lengths, code.lengths);
    EXPECT_EQ(read.single, code.single);
    DecodeTable table;
    build_decode_table(read, table);
    std::vector<uint8_t> decoded(symbols.size(), 0xAA);
    EXPECT_TRUE(
        decode_streams(bytes.data(), bytes.size(), pos, table, decoded.data(), decoded.size()));
    EXPECT_EQ(pos, bytes.size());
    return decoded;
}

double entropy_bits(const std::vector<uint8_t>& symbols) {
    uint32_t counts[kMaxSymbols];
    histogram(symbols.data(), symbols.size(), counts);
    double bits = 0;
    for (uint32_t c : counts) {
        if (c) bits -= c * std::log2(static_cast<double>(c) / static_cast<double>(symbols.size()));
    }
    return bits;
}

TEST(Huffman, EmptyAndTinyInputs) {
    for (size_t n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33}) {
        std::vector<uint8_t> symbols(n);
        for (size_t i = 0; i < n; ++i) symbols[i] = static_cast<uint8_t>((i * 7) % 5);
        EXPECT_EQ(roundtrip(symbols, 32), symbols) << "n = " << n;
    }
}

TEST(Huffman, SingleSymbolCostsNoStreamBytes) {
    const std::vector<uint8_t> symbols(100000, 17);
    size_t size = 0;
    EXPECT_EQ(roundtrip(symbols, 32, &size), symbols);
    EXPECT_EQ(size, 2u + 4 * kStreams);  // mode + symbol, four zero stream sizes
}

TEST(Huffman, AllZeroCountsGiveSymbolZero) {
    uint32_t counts[kMaxSymbols] = {};
    const Code code = build_code(counts, 32);
    EXPECT_EQ(code.single, 0);
    EXPECT_TRUE(code_valid(code, 32));
}

TEST(Huffman, TwoSymbolsGetOneBitEach) {
    uint32_t counts[kMaxSymbols] = {};
    counts[3] = 1000;
    counts[30] = 1;
    const Code code = build_code(counts, 32);
    EXPECT_EQ(code.lengths[3], 1);
    EXPECT_EQ(code.lengths[30], 1);
}

TEST(Huffman, AllThirtyTwoSymbolsUniform) {
    std::vector<uint8_t> symbols(32 * 1000);
    for (size_t i = 0; i < symbols.size(); ++i) symbols[i] = static_cast<uint8_t>(i % 32);
    size_t size = 0;
    EXPECT_EQ(roundtrip(symbols, 32, &size), symbols);
    EXPECT_NEAR(static_cast<double>(size), 32 * 1000 * 5 / 8.0, 64);
}

TEST(Huffman, GaussianSymbolsCodeCloseToEntropy) {
    std::mt19937 rng(7);
    std::normal_distribution<double> normal(15.5, 5.0);
    std::vector<uint8_t> symbols(200003);
    for (auto& s : symbols) s = static_cast<uint8_t>(std::clamp(std::lround(normal(rng)), 0L, 31L));
    size_t size = 0;
    EXPECT_EQ(roundtrip(symbols, 32, &size), symbols);
    const double entropy_bytes = entropy_bits(symbols) / 8;
    EXPECT_GE(static_cast<double>(size), entropy_bytes);
    EXPECT_LE(static_cast<double>(size),
              entropy_bytes * 1.02 + 64);  // Huffman is near-optimal here
}

TEST(Huffman, SkewedDistributionIsLengthLimited) {
    // Fibonacci-like counts make an unconstrained Huffman tree as deep as the alphabet.
    uint32_t counts[kMaxSymbols] = {};
    uint32_t a = 1, b = 1;
    for (int s = 0; s < 30; ++s) {
        counts[s] = a;
        const uint32_t next = a + b;
        a = b;
        b = next;
    }
    const Code code = build_code(counts, 32);
    EXPECT_TRUE(code_valid(code, 32));
    for (int s = 0; s < 30; ++s) {
        EXPECT_GE(code.lengths[s], 1);
        EXPECT_LE(code.lengths[s], kMaxCodeLength);
    }
    std::vector<uint8_t> symbols;
    for (int s = 0; s < 30; ++s)
        symbols.insert(symbols.end(), std::min<uint32_t>(counts[s], 5000), static_cast<uint8_t>(s));
    std::shuffle(symbols.begin(), symbols.end(), std::mt19937(3));
    EXPECT_EQ(roundtrip(symbols, 32), symbols);
}

TEST(Huffman, FullByteAlphabet) {
    std::mt19937 rng(11);
    std::geometric_distribution<int> geometric(0.05);
    std::vector<uint8_t> symbols(100000);
    for (auto& s : symbols) s = static_cast<uint8_t>(std::min(geometric(rng), 255));
    symbols[5] = 255;  // make sure the largest symbol appears
    EXPECT_EQ(roundtrip(symbols, 256), symbols);
}

TEST(Huffman, EveryStreamLengthRemainder) {
    std::mt19937 rng(5);
    for (size_t n = 0; n < 200; ++n) {
        std::vector<uint8_t> symbols(n);
        for (auto& s : symbols) s = static_cast<uint8_t>(rng() % 3 == 0 ? rng() % 32 : 16);
        ASSERT_EQ(roundtrip(symbols, 32), symbols) << "n = " << n;
    }
}

TEST(Huffman, ReadCodeRejectsInvalidTables) {
    auto read = [](std::vector<uint8_t> bytes, int n_symbols) {
        size_t pos = 0;
        Code code;
        return read_code(bytes.data(), bytes.size(), pos, n_symbols, code);
    };
    EXPECT_TRUE(read({0, 7}, 32));
    EXPECT_FALSE(read({0, 40}, 32));         // single symbol outside the alphabet
    EXPECT_FALSE(read({0}, 32));             // truncated
    EXPECT_FALSE(read({2, 0}, 32));          // unknown mode
    EXPECT_FALSE(read({1, 0x11}, 4));        // truncated lengths
    EXPECT_TRUE(read({1, 0x11}, 2));         // two 1-bit codes: complete
    EXPECT_FALSE(read({1, 0x21}, 2));        // Kraft sum 3/4: incomplete
    EXPECT_FALSE(read({1, 0x11, 0x01}, 4));  // Kraft sum 3/2: over-full
    EXPECT_FALSE(read({1, 0xC1, 0x00}, 4));  // length 12 > kMaxCodeLength
    EXPECT_FALSE(read({1, 0x00, 0x00}, 4));  // no symbol at all
}

TEST(Huffman, CorruptStreamsNeverOverrun) {
    std::mt19937 rng(9);
    std::vector<uint8_t> symbols(5000);
    for (auto& s : symbols) s = static_cast<uint8_t>(rng() % 32);
    uint32_t counts[kMaxSymbols];
    histogram(symbols.data(), symbols.size(), counts);
    const Code code = build_code(counts, 32);
    DecodeTable table;
    build_decode_table(code, table);
    std::vector<uint8_t> streams;
    encode_streams(symbols.data(), symbols.size(), build_encode_table(code), streams);
    std::vector<uint8_t> out(symbols.size() + 64);
    for (int trial = 0; trial < 2000; ++trial) {
        std::vector<uint8_t> bad = streams;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f)
            bad[rng() % bad.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        bad.resize(bad.size() - rng() % 3);
        std::fill(out.begin(), out.end(), 0xEE);
        size_t pos = 0;
        decode_streams(bad.data(), bad.size(), pos, table, out.data(), symbols.size());
        EXPECT_LE(pos, bad.size());
        for (size_t i = symbols.size(); i < out.size(); ++i)
            ASSERT_EQ(out[i], 0xEE) << "wrote past the end";
    }
}

TEST(Huffman, DecodeRejectsWrongStreamSizes) {
    std::vector<uint8_t> symbols(1000);
    for (size_t i = 0; i < symbols.size(); ++i) symbols[i] = static_cast<uint8_t>(i % 9);
    uint32_t counts[kMaxSymbols];
    histogram(symbols.data(), symbols.size(), counts);
    const Code code = build_code(counts, 32);
    DecodeTable table;
    build_decode_table(code, table);
    std::vector<uint8_t> streams;
    encode_streams(symbols.data(), symbols.size(), build_encode_table(code), streams);
    std::vector<uint8_t> out(symbols.size());
    {
        std::vector<uint8_t> bad = streams;
        bad.push_back(0);
        bad[0] += 1;  // stream 0 claims a byte it does not use
        size_t pos = 0;
        EXPECT_FALSE(decode_streams(bad.data(), bad.size(), pos, table, out.data(), out.size()));
    }
    {
        std::vector<uint8_t> bad = streams;
        bad[3] = 0x40;  // stream 0 claims far more bytes than exist
        size_t pos = 0;
        EXPECT_FALSE(decode_streams(bad.data(), bad.size(), pos, table, out.data(), out.size()));
    }
}

}  // namespace
}  // namespace sparkv::codec::huffman
