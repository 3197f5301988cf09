#include "engine/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/error.h"
#include "engine/gguf_writer.h"
#include "test_support.h"

namespace sparkv {
namespace {

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
    std::vector<uint8_t> out(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

GgufWriter small_writer() {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 2);
    w.set_f32("llama.rope.freq_base", 10000.0f);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "<s>"});
    w.set_f32_array("tokenizer.ggml.scores", {0.5f, -1.0f, 0.0f});
    w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 3});
    w.add_tensor("x.weight", GgmlType::F32, {4, 2}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8}));
    w.add_tensor("y.weight", GgmlType::F32, {3}, f32_bytes({-1, 0, 1}));
    return w;
}

TEST(Gguf, WriterOutputParsesBack) {
    const auto bytes = small_writer().serialize();
    const auto file = GgufFile::parse(bytes.data(), bytes.size());
    EXPECT_EQ(file.version(), 3u);
    EXPECT_EQ(file.get_string("general.architecture"), "llama");
    EXPECT_EQ(file.get_uint("llama.block_count"), 2u);
    EXPECT_FLOAT_EQ(static_cast<float>(file.get_float("llama.rope.freq_base")), 10000.0f);
    EXPECT_TRUE(file.get_bool("tokenizer.ggml.add_bos_token", false));
    ASSERT_EQ(file.get_string_array("tokenizer.ggml.tokens").size(), 3u);
    EXPECT_EQ(file.get_string_array("tokenizer.ggml.tokens")[2], "<s>");
    EXPECT_EQ(file.get_float_array("tokenizer.ggml.scores")[1], -1.0f);
    EXPECT_EQ(file.get_int_array("tokenizer.ggml.token_type")[2], 3);
    ASSERT_EQ(file.tensors().size(), 2u);
    const auto* x = file.find_tensor("x.weight");
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->ne[0], 4);
    EXPECT_EQ(x->ne[1], 2);
    EXPECT_EQ(x->bytes, 32u);
    float v[8];
    std::memcpy(v, x->data, sizeof v);
    EXPECT_EQ(v[7], 8.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(x->data) % 32,
              reinterpret_cast<uintptr_t>(bytes.data()) % 32);
}

TEST(Gguf, MissingKeysAndWrongTypesAreErrors) {
    const auto bytes = small_writer().serialize();
    const auto file = GgufFile::parse(bytes.data(), bytes.size());
    EXPECT_THROW(file.get_string("general.name"), Error);
    EXPECT_EQ(file.get_string("general.name", "x"), "x");
    EXPECT_THROW(file.get_uint("general.architecture"), Error);
    EXPECT_THROW(file.get_string_array("tokenizer.ggml.scores"), Error);
    EXPECT_EQ(file.find_tensor("nope"), nullptr);
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
    const auto bytes = small_writer().serialize();
    for (size_t n = 0; n < bytes.size(); ++n) {
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
        // Some prefixes are still valid files (only padding cut); those must parse cleanly.
        try {
            auto file = GgufFile::parse(cut.data(), cut.size());
            for (const auto& t : file.tensors())
                EXPECT_LE(t.data + t.bytes, cut.data() + cut.size());
        } catch (const Error&) {
        }
    }
}

TEST(Gguf, RejectsBadMagicAndVersion) {
    auto bytes = small_writer().serialize();
    auto bad = bytes;
    bad[0] = 'X';
    EXPECT_THROW(GgufFile::parse(bad.data(), bad.size()), Error);
    bad = bytes;
    bad[4] = 9;  // version 9
    EXPECT_THROW(GgufFile::parse(bad.data(), bad.size()), Error);
}

TEST(Gguf, SingleByteCorruptionsNeverCrash) {
    const auto bytes = small_writer().serialize();
    for (size_t pos = 0; pos < bytes.size(); ++pos) {
        for (uint8_t value : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x7f}}) {
            auto bad = bytes;
            bad[pos] = value;
            try {
                auto file = GgufFile::parse(bad.data(), bad.size());
                for (const auto& t : file.tensors())
                    EXPECT_LE(t.data + t.bytes, bad.data() + bad.size());
            } catch (const Error&) {
            }
        }
    }
}

TEST(Gguf, UnknownTensorTypeIsNamed) {
    GgufWriter w;
    w.add_tensor("t", GgmlType::F32, {2}, f32_bytes({1, 2}));
    auto bytes = w.serialize();
    // The type field follows name (8+1), n_dims (4) and one dim (8) after the 24-byte header.
    const size_t type_at = 24 + 8 + 1 + 4 + 8;
    uint32_t bogus = 77;
    std::memcpy(bytes.data() + type_at, &bogus, 4);
    try {
        GgufFile::parse(bytes.data(), bytes.size());
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown type 77"), std::string::npos) << e.what();
    }
}

TEST(Gguf, WriterRejectsWrongSizes) {
    GgufWriter w;
    EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {3}, f32_bytes({1, 2})), Error);
    EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {16}, std::vector<uint8_t>(9)), Error);
}

TEST(Gguf, OpenReportsMissingAndEmptyFiles) {
    testing::TempDir dir;
    EXPECT_THROW(GgufFile::open(dir.file("absent.gguf")), Error);
    {
        std::FILE* f = std::fopen(dir.file("empty.gguf").c_str(), "wb");
        std::fclose(f);
    }
    EXPECT_THROW(GgufFile::open(dir.file("empty.gguf")), Error);
    small_writer().write(dir.file("ok.gguf"));
    EXPECT_EQ(GgufFile::open(dir.file("ok.gguf")).tensors().size(), 2u);
}

TEST(Gguf, ReferenceModelLoads) {
    SPARKV_REQUIRE_REFERENCE_MODEL(path);
    const auto file = GgufFile::open(path);
    EXPECT_EQ(file.get_string("general.architecture"), "llama");
    EXPECT_EQ(file.get_uint("llama.block_count"), 30u);
    EXPECT_EQ(file.tensors().size(), 272u);
    const auto* embd = file.find_tensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->type, GgmlType::Q8_0);
    EXPECT_EQ(embd->ne[0], 576);
    EXPECT_EQ(embd->ne[1], 49152);
}

}  // namespace
}  // namespace sparkv
