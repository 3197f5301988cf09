// Salient tokens: the ranking, and ingest of a calibrated level that keeps salient tokens (format
// version 3 units that decode). The attention-mass kernel: tests/engine/attention_mass_test.cpp.
#include "cloud/saliency.h"

#include <gtest/gtest.h>

#include <memory>

#include "cloud/ingest.h"
#include "codec/codec.h"
#include "codec/profile.h"
#include "common/error.h"
#include "store/fs_backend.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

TEST(Saliency, TopPositionsRankByMassAndSkipTheSinks) {
    const std::vector<float> mass = {0.1f, 5, 0.2f, 3, 3, 0.05f, 7, 1};
    EXPECT_EQ(top_positions(mass, 500, 2), (std::vector<uint32_t>{3, 4, 6}));
    EXPECT_EQ(top_positions(mass, 1, 2), (std::vector<uint32_t>{6}));  // rounds up to one token
    EXPECT_EQ(top_positions(mass, 1000, 2), (std::vector<uint32_t>{2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(top_positions(mass, 400, 0), (std::vector<uint32_t>{1, 3, 4, 6}));  // tie: earlier
    EXPECT_TRUE(top_positions(mass, 0, 0).empty());
    EXPECT_TRUE(top_positions(mass, 500, 8).empty());
    EXPECT_THROW(top_positions(mass, 1001, 0), Error);
}

TEST(Saliency, RowsInChunkAreChunkIndices) {
    const std::vector<uint32_t> positions = {3, 70, 127, 128, 200};
    EXPECT_EQ(rows_in_chunk(positions, 64, 64), (std::vector<uint32_t>{6, 63}));
    EXPECT_EQ(rows_in_chunk(positions, 0, 64), (std::vector<uint32_t>{3}));
    EXPECT_TRUE(rows_in_chunk(positions, 201, 50).empty());
}

class SaliencyModelTest : public ::testing::Test {
  protected:
    void SetUp() override {
        RandomModelSpec spec;
        spec.n_layer = 3;
        write_random_model(spec, dir_.file("model.gguf"));
        model_ = Model::load(dir_.file("model.gguf"));
        for (int i = 0; i < 90; ++i) tokens_.push_back((i * 37 + 11) % 300);
    }
    testing::TempDir dir_;
    std::unique_ptr<Model> model_;
    std::vector<int32_t> tokens_;
};

TEST_F(SaliencyModelTest, MassSumsToOnePerQueryAndHeadAndLeavesTheCacheAlone) {
    const auto& c = model_->config();
    Engine engine(*model_, {.n_ctx = 90, .n_threads = 2});
    engine.prefill(tokens_, 0);
    const size_t unit = static_cast<size_t>(c.n_kv_head) * 90 * c.head_dim;
    std::vector<uint16_t> k0(unit), v0(unit), k1(unit), v1(unit);
    engine.export_kv(1, 0, 90, k0.data(), v0.data());
    for (int64_t queries : {16, 1, 500}) {
        const auto mass = attention_mass(engine, tokens_, queries);
        ASSERT_EQ(mass.size(), static_cast<size_t>(c.n_layer));
        const double per_layer = static_cast<double>(std::min<int64_t>(queries, 90) * c.n_head);
        for (const auto& m : mass) {
            ASSERT_EQ(m.size(), 90u);
            double sum = 0;
            for (float x : m) {
                EXPECT_GE(x, 0.0f);
                sum += x;
            }
            EXPECT_NEAR(sum, per_layer, 1e-3 * per_layer);
        }
        EXPECT_EQ(attention_mass(engine, tokens_, queries), mass);  // deterministic
    }
    engine.export_kv(1, 0, 90, k1.data(), v1.data());
    EXPECT_EQ(k0, k1);
    EXPECT_EQ(v0, v1);
}

TEST_F(SaliencyModelTest, IngestKeepsTheSalientRowsOfACalibratedLevel) {
    const auto& c = model_->config();
    codec::CodecProfile profile;
    profile.model_fingerprint = model_->fingerprint();
    profile.n_layers = static_cast<uint32_t>(c.n_layer);
    profile.sink_tokens = 2;
    profile.saliency_queries = 8;
    profile.levels.push_back(
        {codec::Level::c5, std::vector<codec::BitWidths>(c.n_layer, {3, 2}), 0.01, 5.0});
    profile.levels.back().salient_per_mille = 100;
    ContextStore store(std::make_shared<FilesystemBackend>(dir_.file("store")));
    IngestOptions opt;
    opt.chunk_tokens = 32;
    opt.levels = {"c5", "q5h"};
    opt.profile = profile;
    opt.threads = 1;
    const auto r = ingest_context(*model_, store, tokens_, opt);
    EXPECT_GT(r.saliency_seconds, 0.0);

    // The same ranking, computed here from a local prefill.
    Engine local(*model_, {.n_ctx = 90, .n_threads = 1});
    local.prefill(tokens_, 0);
    const auto positions =
        salient_positions(profile, codec::Level::c5, attention_mass(local, tokens_, 8));
    const Manifest m = store.read_manifest(r.context_id);
    codec::Decoder decoder;
    size_t salient_total = 0;
    for (const auto& chunk : m.chunks)
        for (int32_t l = 0; l < c.n_layer; ++l) {
            const auto bytes = store.read_unit(m, "c5", chunk.index, l);
            const codec::UnitHeader h = codec::read_header(bytes);
            const auto rows = rows_in_chunk(positions[static_cast<size_t>(l)],
                                            static_cast<uint32_t>(chunk.first_token),
                                            static_cast<uint32_t>(chunk.n_tokens));
            EXPECT_EQ(h.salient_rows, rows.size()) << chunk.index << ", " << l;
            EXPECT_EQ(h.format_version, rows.empty() ? 2 : 3);
            salient_total += h.salient_rows;
            const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                         static_cast<uint16_t>(c.n_kv_head),
                                         static_cast<uint16_t>(c.head_dim)};
            std::vector<uint16_t> k(shape.elements()), v(shape.elements());
            decoder.decode(bytes,
                           {model_->fingerprint(), static_cast<uint32_t>(chunk.index),
                            static_cast<uint32_t>(l)},
                           shape, codec::contiguous(k.data(), shape),
                           codec::contiguous(v.data(), shape), codec::Level::c5, profile.hash());
            // q5h has no salient rows.
            EXPECT_EQ(codec::read_header(store.read_unit(m, "q5h", chunk.index, l)).salient_rows,
                      0u);
        }
    EXPECT_EQ(salient_total, static_cast<size_t>(c.n_layer) * 9);  // ceil(10 % of 88) per layer
}

}  // namespace
}  // namespace sparkv
