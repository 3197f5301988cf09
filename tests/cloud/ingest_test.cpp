#include "cloud/ingest.h"

#include <gtest/gtest.h>

#include <memory>

#include "codec/codec.h"
#include "common/error.h"
#include "engine/engine.h"
#include "store/content_id.h"
#include "store/fs_backend.h"
#include "test_support.h"
#include "testkit/random_model.h"

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

TEST_F(IngestTest, ALevelNotYetStoredIsAddedKeepingTheOthers) {
    IngestOptions opt;
    opt.chunk_tokens = 32;
    opt.levels = {"q5h"};
    const auto first = ingest_context(*model_, *store_, tokens_, opt);
    opt.levels = {"fp16"};
    const auto second = ingest_context(*model_, *store_, tokens_, opt);
    EXPECT_FALSE(second.already_present);  // fp16 was missing: computed again
    EXPECT_EQ(second.context_id, first.context_id);
    const Manifest m = store_->read_manifest(second.context_id);
    EXPECT_EQ(m.levels, (std::vector<std::string>{"fp16", "q5h"}));
    EXPECT_TRUE(store_->is_complete(second.context_id, ContextStore::Check::checksums));
    opt.levels = {"q5h", "fp16"};
    EXPECT_TRUE(ingest_context(*model_, *store_, tokens_, opt).already_present);
}

// Sparse attention settings for a 3-layer random model: small blocks, no similarity fallback, so
// that blocks are really dropped.
SparseAttentionOptions test_sparse() {
    return {.tau = 0.4f, .block = 16, .min_similarity = -1.0f};
}

TEST_F(IngestTest, SparseIngestRecordsSettingsAndActiveBlocks) {
    for (int i = 70; i < 200; ++i) tokens_.push_back((i * 53 + 7) % 300);  // 200 tokens
    IngestOptions opt;
    opt.chunk_tokens = 64;
    opt.levels = {"fp16"};
    const auto dense = ingest_context(*model_, *store_, tokens_, opt);
    opt.sparse = test_sparse();
    const auto sparse = ingest_context(*model_, *store_, tokens_, opt);
    EXPECT_NE(sparse.context_id, dense.context_id);  // different KV, different id
    EXPECT_FALSE(sparse.already_present);
    EXPECT_EQ(
        sparse.context_id,
        context_id(sparse_kv_identity(hex64(model_->fingerprint()), opt.sparse), tokens_, 64));

    const Manifest md = store_->read_manifest(dense.context_id);
    const Manifest ms = store_->read_manifest(sparse.context_id);
    ASSERT_TRUE(md.sparse && ms.sparse);
    EXPECT_EQ(md.sparse->tau, 1.0);
    EXPECT_EQ(from_manifest(*ms.sparse), opt.sparse);
    int64_t dense_total = 0, sparse_total = 0;
    for (const auto& u : ms.units) {
        const UnitInfo& d = md.unit(u.t, u.l);
        ASSERT_TRUE(u.active_blocks && d.active_blocks);
        if (u.l == model_->config().n_layer - 1) {  // K/V projection only
            EXPECT_EQ(*u.active_blocks, 0);
            EXPECT_EQ(*d.active_blocks, 0);
            continue;
        }
        EXPECT_EQ(*d.active_blocks, causal_blocks(u.first_token, u.n_tokens, 2, 64));
        EXPECT_LE(*u.active_blocks, causal_blocks(u.first_token, u.n_tokens, 2, 16));
        dense_total += *d.active_blocks * 16;  // in 16 x 16 blocks
        sparse_total += *u.active_blocks;
    }
    EXPECT_LT(sparse_total, dense_total);
}

TEST_F(IngestTest, SparseUnitsAreExactlyWhatADeviceComputes) {
    for (int i = 70; i < 192; ++i) tokens_.push_back((i * 29 + 3) % 300);  // 192 tokens
    IngestOptions opt;
    opt.chunk_tokens = 64;
    opt.levels = {"fp16"};
    opt.sparse = test_sparse();
    const auto r = ingest_context(*model_, *store_, tokens_, opt);
    const Manifest m = store_->read_manifest(r.context_id);
    const auto& c = model_->config();
    codec::Decoder decoder;
    auto stored = [&](int32_t t, int l, std::vector<uint16_t>& k, std::vector<uint16_t>& v) {
        const codec::UnitShape shape{64, static_cast<uint16_t>(c.n_kv_head),
                                     static_cast<uint16_t>(c.head_dim)};
        k.resize(shape.elements());
        v.resize(shape.elements());
        decoder.decode(store_->read_unit(m, "fp16", t, l),
                       {model_->fingerprint(), static_cast<uint32_t>(t), static_cast<uint32_t>(l)},
                       shape, codec::contiguous(k.data(), shape),
                       codec::contiguous(v.data(), shape));
    };
    // The device imports chunks 0 and 1 from the store and computes chunk 2 itself, with the
    // settings the manifest names (on 2 threads where ingest used all cores).
    Engine device(*model_, {.n_ctx = 192, .n_threads = 2, .sparse = from_manifest(*m.sparse)});
    std::vector<uint16_t> k, v, k_dev(64 * c.kv_dim()), v_dev(k_dev.size());
    for (int32_t t = 0; t < 2; ++t)
        for (int l = 0; l < c.n_layer; ++l) {
            stored(t, l, k, v);
            device.import_kv(l, t * 64, 64, k.data(), v.data());
        }
    HiddenState h = device.embed(std::span(tokens_).subspan(128, 64), 128);
    for (int l = 0; l < c.n_layer; ++l) {
        if (l < c.n_layer - 1) {
            device.run_layer(h);
            EXPECT_EQ(device.last_attention_stats().active_blocks, m.unit(2, l).active_blocks);
        } else {
            device.project_kv(h);
        }
        stored(2, l, k, v);
        device.export_kv(l, 128, 64, k_dev.data(), v_dev.data());
        EXPECT_EQ(k_dev, k) << "layer " << l;
        EXPECT_EQ(v_dev, v) << "layer " << l;
    }
}

TEST_F(IngestTest, BadRequestsAreErrors) {
    IngestOptions opt;
    opt.levels = {"q9z"};
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    opt.levels = {"q5h", "q5h"};
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    opt.levels = {"q5h"};
    EXPECT_THROW(ingest_context(*model_, *store_, std::vector<int32_t>{}, opt), Error);
    opt.sparse.tau = 1.5f;
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    opt.sparse = {.tau = 0.5f, .block = 20};
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    opt.sparse = {};
    opt.chunk_tokens = 0;
    EXPECT_THROW(ingest_context(*model_, *store_, tokens_, opt), Error);
    EXPECT_TRUE(store_->list_contexts().empty());
}

}  // namespace
}  // namespace sparkv
