#include "cloud/ingest.h"

#include <gtest/gtest.h>

#include <memory>

#include "codec/codec.h"
#include "common/error.h"
#include "engine/engine.h"
#include "engine/random_model.h"
#include "store/content_id.h"
#include "store/fs_backend.h"
#include "test_support.h"

namespace sparkv {
namespace {

class IngestTest : public ::testing::Test {
  protected:
    void SetUp() override {
        RandomModelSpec spec;
        spec.n_layer = 3;
        write_random_model(spec, dir_.file("model.gguf"));
        model_ = Model::load(dir_.file("model.gguf"));
        store_ =
            std::make_unique<ContextStore>(std::make_shared<FilesystemBackend>(dir_.file("store")));
        for (int i = 0; i < 70; ++i) tokens_.push_back((i * 37 + 11) % 300);
    }

    testing::TempDir dir_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<ContextStore> store_;
    std::vector<int32_t> tokens_;
};

TEST_F(IngestTest, StoresEveryUnitAtEveryLevelAndCommitsTheManifest) {
    IngestOptions opt;
    opt.chunk_tokens = 32;  // 32 + 32 + 6: the last chunk is shorter
    opt.levels = {"fp16", "q5h"};
    int progress_calls = 0;
    opt.on_progress = [&](const IngestProgress& p) {
        ++progress_calls;
        EXPECT_EQ(p.chunks_total, 3);
    };
    const auto r = ingest_context(*model_, *store_, tokens_, opt);
    EXPECT_FALSE(r.already_present);
    EXPECT_EQ(r.tokens, 70);
    EXPECT_EQ(r.chunks, 3);
    EXPECT_EQ(r.layers, 3);
    EXPECT_EQ(progress_calls, 3);
    EXPECT_EQ(r.context_id, context_id(hex64(model_->fingerprint()), tokens_, 32));
    ASSERT_TRUE(store_->is_complete(r.context_id, ContextStore::Check::checksums));
    ASSERT_EQ(r.bytes_per_level.size(), 2u);
    EXPECT_GT(r.bytes_per_level[0].second, r.bytes_per_level[1].second * 3 / 2);  // q5h is smaller

    // The lossless objects decode to exactly the KV a local prefill produces.
    const auto& c = model_->config();
    Engine local(*model_, {.n_ctx = 70, .n_threads = 1});
    local.prefill(tokens_, 0);
    codec::Decoder decoder;
    const Manifest m = store_->read_manifest(r.context_id);
    for (const auto& chunk : m.chunks) {
        const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                     static_cast<uint16_t>(c.n_kv_head),
                                     static_cast<uint16_t>(c.head_dim)};
        std::vector<uint16_t> k(shape.elements()), v(k.size()), k_ref(k.size()), v_ref(k.size());
        for (int l = 0; l < c.n_layer; ++l) {
            const auto bytes = store_->read_unit(m, "fp16", chunk.index, l);
            decoder.decode(bytes,
                           {model_->fingerprint(), static_cast<uint32_t>(chunk.index),
                            static_cast<uint32_t>(l)},
                           shape, codec::contiguous(k.data(), shape),
                           codec::contiguous(v.data(), shape));
            local.export_kv(l, chunk.first_token, chunk.n_tokens, k_ref.data(), v_ref.data());
            EXPECT_EQ(k, k_ref) << "unit (" << chunk.index << ", " << l << ")";
            EXPECT_EQ(v, v_ref) << "unit (" << chunk.index << ", " << l << ")";
        }
    }
    // The token ids are a checksummed object of the context.
    EXPECT_EQ(m.tokens.bytes, tokens_.size() * 4);
    EXPECT_EQ(store_->read_tokens(m), tokens_);
}

TEST_F(IngestTest, ReingestingIsANoOp) {
    IngestOptions opt;
    opt.chunk_tokens = 32;
    opt.levels = {"q5h"};
    const auto first = ingest_context(*model_, *store_, tokens_, opt);
    int progress_calls = 0;
    opt.on_progress = [&](const IngestProgress&) { ++progress_calls; };
    const auto second = ingest_context(*model_, *store_, tokens_, opt);
    EXPECT_TRUE(second.already_present);
    EXPECT_EQ(second.context_id, first.context_id);
    EXPECT_EQ(progress_calls, 0);
    EXPECT_EQ(second.bytes_per_level, first.bytes_per_level);
}

TEST_F(IngestTest, BadRequestsAreErrors) {
    IngestOptions opt;
    opt.levels = {"q9z"};
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    opt.levels = {"q5h", "q5h"};
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    opt.levels = {"q5h"};
    EXPECT_THROW(ingest_context(*model_, *store_, std::vector<int32_t>{}, opt), Error);
    opt.chunk_tokens = 0;
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    EXPECT_TRUE(store_->list_contexts().empty());
}

}  // namespace
}  // namespace sparkv
