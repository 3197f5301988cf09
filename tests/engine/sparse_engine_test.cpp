// Sparse attention through the engine: settings, per-call statistics, reproducible KV (what
// ingest and a device must agree on) and the active-block predictor.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "engine/engine.h"
#include "engine/sparse_predict.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

class SparseEngineTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        RandomModelSpec spec;
        spec.n_layer = 3;
        write_random_model(spec, dir_->file("model.gguf"));
        model_ = Model::load(dir_->file("model.gguf")).release();
    }
    static void TearDownTestSuite() {
        delete model_;
        delete dir_;
    }

    static std::vector<int32_t> tokens(size_t n) {
        std::mt19937 rng(5);
        std::vector<int32_t> out(n);
        for (auto& t : out) t = static_cast<int32_t>(rng() % 400);
        return out;
    }

    // Sparse enough to drop blocks on a random model: small blocks, no similarity fallback.
    static SparseAttentionOptions sparse() {
        return {.tau = 0.3f, .block = 16, .min_similarity = -1.0f};
    }

    // Chunked prefill (chunks of 128) through every layer; returns the active blocks per unit.
    static std::vector<int64_t> prefill(Engine& e, const std::vector<int32_t>& toks) {
        std::vector<int64_t> active;
        for (int64_t pos = 0; pos < static_cast<int64_t>(toks.size()); pos += 128) {
            HiddenState h = e.embed(std::span(toks).subspan(static_cast<size_t>(pos), 128), pos);
            while (h.layer < e.config().n_layer) {
                e.run_layer(h);
                active.push_back(e.last_attention_stats().active_blocks);
            }
        }
        return active;
    }

    static inline testing::TempDir* dir_ = nullptr;
    static inline Model* model_ = nullptr;
};

TEST_F(SparseEngineTest, BadSettingsAreRejectedAndKeepTheOldOnes) {
    EXPECT_THROW(Engine(*model_, {.n_ctx = 64, .sparse = {.tau = 0.0f}}), Error);
    EXPECT_THROW(Engine(*model_, {.n_ctx = 64, .sparse = {.block = 40}}), Error);
    Engine e(*model_, {.n_ctx = 64, .n_threads = 1, .sparse = sparse()});
    EXPECT_THROW(e.set_sparse({.tau = 2.0f}), Error);
    EXPECT_EQ(e.sparse(), sparse());
    e.set_sparse({});
    EXPECT_FALSE(e.sparse().enabled());
}

TEST_F(SparseEngineTest, StatsCountWhatEachCallVisited) {
    const auto toks = tokens(512);
    Engine dense(*model_, {.n_ctx = 512, .n_threads = 2, .sparse = {.block = 16}});
    const auto dense_active = prefill(dense, toks);
    Engine sp(*model_, {.n_ctx = 512, .n_threads = 2, .sparse = sparse()});
    const auto sparse_active = prefill(sp, toks);
    ASSERT_EQ(dense_active.size(), sparse_active.size());
    int64_t dense_total = 0, sparse_total = 0;
    for (size_t i = 0; i < dense_active.size(); ++i) {
        const int64_t chunk = static_cast<int64_t>(i) / model_->config().n_layer;
        // Query blocks 8t .. 8t + 7 see 8t + 1 .. 8t + 8 key blocks, for each of 2 KV heads.
        EXPECT_EQ(dense_active[i], 2 * (8 * (8 * chunk) + 36)) << "unit " << i;
        EXPECT_LE(sparse_active[i], dense_active[i]);
        dense_total += dense_active[i];
        sparse_total += sparse_active[i];
    }
    EXPECT_LT(sparse_total, dense_total * 3 / 4);
    EXPECT_EQ(sp.last_attention_stats().causal_blocks, dense_active.back());

    HiddenState h = sp.embed(std::span(toks).first(16), 0);
    sp.project_kv(h);  // no attention
    EXPECT_EQ(sp.last_attention_stats().active_blocks, 0);
    EXPECT_EQ(sp.last_attention_stats().causal_blocks, 0);
}

TEST_F(SparseEngineTest, TauOneIsDense) {
    const auto toks = tokens(256);
    Engine a(*model_, {.n_ctx = 256, .n_threads = 2});
    Engine b(*model_, {.n_ctx = 256, .n_threads = 2, .sparse = {.tau = 1.0f, .block = 32}});
    const auto la = a.prefill(toks, 0);
    const auto lb = b.prefill(toks, 0);
    EXPECT_EQ(la, lb);
}

TEST_F(SparseEngineTest, SameSettingsGiveTheSameKvWhateverTheThreadCount) {
    // What lets a device import ingested units next to ones it computes itself.
    const auto toks = tokens(384);
    Engine one(*model_, {.n_ctx = 384, .n_threads = 1, .sparse = sparse()});
    Engine three(*model_, {.n_ctx = 384, .n_threads = 3, .sparse = sparse()});
    EXPECT_EQ(prefill(one, toks), prefill(three, toks));
    const auto& c = model_->config();
    std::vector<uint16_t> k1(static_cast<size_t>(384 * c.kv_dim())), v1(k1.size()), k3(k1.size()),
        v3(k1.size());
    for (int l = 0; l < c.n_layer; ++l) {
        one.export_kv(l, 0, 384, k1.data(), v1.data());
        three.export_kv(l, 0, 384, k3.data(), v3.data());
        EXPECT_EQ(k1, k3) << "layer " << l;
        EXPECT_EQ(v1, v3) << "layer " << l;
    }
}

TEST_F(SparseEngineTest, PredictorWithEveryTokenIsExactAndSampledStaysInBounds) {
    const auto toks = tokens(512);
    Engine e(*model_, {.n_ctx = 512, .n_threads = 2, .sparse = sparse()});
    prefill(e, std::vector<int32_t>(toks.begin(), toks.begin() + 384));
    HiddenState h = e.embed(std::span(toks).subspan(384, 128), 384);
    while (h.layer < e.config().n_layer) {
        const auto exact = predict_active_blocks(*model_, e.cache(), h, e.sparse(), e.pool(), 1);
        const auto sampled = predict_active_blocks(*model_, e.cache(), h, e.sparse(), e.pool(), 4);
        e.run_layer(h);
        const AttentionStats& st = e.last_attention_stats();
        EXPECT_EQ(exact.active_blocks, st.active_blocks) << "layer " << h.layer - 1;
        EXPECT_EQ(exact.causal_blocks, st.causal_blocks);
        EXPECT_LE(sampled.active_blocks, st.causal_blocks);
        // Diagonal, local and sink blocks of 8 query blocks x 2 KV heads are always there.
        EXPECT_GE(sampled.active_blocks, 2 * 8 * 3);
    }
    // Dense settings predict the dense count; a missing history is an error.
    Engine fresh(*model_, {.n_ctx = 512, .n_threads = 1});
    HiddenState late = fresh.embed(std::span(toks).subspan(128, 128), 128);
    EXPECT_THROW(predict_active_blocks(*model_, fresh.cache(), late, sparse(), fresh.pool()),
                 Error);
    HiddenState first = fresh.embed(std::span(toks).first(128), 0);
    EXPECT_EQ(predict_active_blocks(*model_, fresh.cache(), first, {.block = 16}, fresh.pool())
                  .active_blocks,
              2 * 36);
    EXPECT_THROW(predict_active_blocks(*model_, fresh.cache(), first, sparse(), fresh.pool(), 3),
                 Error);
}

}  // namespace
}  // namespace sparkv
