// The layer-granular engine must give the same KV and logits whatever valid order the units are
// produced in, and whichever of them are imported instead of computed.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"
#include "common/fp16.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

class EngineTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        RandomModelSpec spec;
        spec.weight_type = GgmlType::Q8_0;
        spec.n_layer = 4;
        write_random_model(spec, dir_->file("model.gguf"));
        model_ = Model::load(dir_->file("model.gguf")).release();
    }
    static void TearDownTestSuite() {
        delete model_;
        delete dir_;
    }

    static std::vector<int32_t> tokens(size_t n, uint32_t seed) {
        std::mt19937 rng(seed);
        std::vector<int32_t> out(n);
        for (auto& t : out) t = static_cast<int32_t>(rng() % 400);
        return out;
    }

    static inline testing::TempDir* dir_ = nullptr;
    static inline Model* model_ = nullptr;
};

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double max_abs = 0, diff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(a[i])));
        diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    }
    return diff / std::max(max_abs, 1e-9);
}

// Largest difference between two caches over [0, n) of every layer, in fp32 units.
double max_cache_diff(const Engine& a, const Engine& b, int64_t n) {
    const auto& c = a.config();
    std::vector<uint16_t> ka(static_cast<size_t>(c.kv_dim() * n)), va(ka.size()), kb(ka.size()),
        vb(ka.size());
    double diff = 0;
    for (int l = 0; l < c.n_layer; ++l) {
        a.export_kv(l, 0, n, ka.data(), va.data());
        b.export_kv(l, 0, n, kb.data(), vb.data());
        for (size_t i = 0; i < ka.size(); ++i) {
            diff = std::max(
                diff, static_cast<double>(std::fabs(fp16_to_fp32(ka[i]) - fp16_to_fp32(kb[i]))));
            diff = std::max(
                diff, static_cast<double>(std::fabs(fp16_to_fp32(va[i]) - fp16_to_fp32(vb[i]))));
        }
    }
    return diff;
}

TEST_F(EngineTest, ChunkedPrefillMatchesWholePrefill) {
    const auto toks = tokens(96, 1);
    Engine whole(*model_, {.n_ctx = 128, .n_threads = 2});
    const auto ref = whole.prefill(toks, 0);

    Engine chunked(*model_, {.n_ctx = 128, .n_threads = 2});
    std::vector<float> got;
    for (int64_t pos = 0; pos < 96; pos += 32)
        got = chunked.prefill(std::span(toks).subspan(static_cast<size_t>(pos), 32), pos);
    EXPECT_LT(max_rel_diff(ref, got), 1e-4);
    EXPECT_LT(max_cache_diff(whole, chunked, 96), 2e-3);
}

// Random valid schedules: each chunk computes a random prefix of layers and imports the rest
// (exported from a reference prefill); actions are interleaved in a random order that respects
// the dependency rules; the query prefilled afterwards must see the same logits.
TEST_F(EngineTest, RandomValidUnitOrdersGiveTheSameLogits) {
    const auto& c = model_->config();
    const int64_t chunk = 24, n_chunks = 4, n_ctx_tokens = chunk * n_chunks;
    const auto context = tokens(static_cast<size_t>(n_ctx_tokens), 2);
    const auto query = tokens(9, 3);

    Engine reference(*model_, {.n_ctx = 128, .n_threads = 2});
    reference.prefill(context, 0);
    const auto ref_logits = reference.prefill(query, n_ctx_tokens);

    const size_t unit = static_cast<size_t>(c.kv_dim() * chunk);
    std::mt19937 rng(7);
    for (int trial = 0; trial < 12; ++trial) {
        Engine e(*model_, {.n_ctx = 128, .n_threads = 2});
        std::vector<int> computed_layers(n_chunks);  // k_t: layers 0..k_t-1 computed
        for (auto& k : computed_layers) k = static_cast<int>(rng() % (c.n_layer + 1));
        std::vector<HiddenState> h(n_chunks);
        std::vector<std::vector<bool>> present(n_chunks, std::vector<bool>(c.n_layer, false));
        for (int64_t t = 0; t < n_chunks; ++t)
            h[t] = e.embed(std::span(context).subspan(static_cast<size_t>(t * chunk), chunk),
                           t * chunk);

        auto ready_to_compute = [&](int64_t t) {
            const int l = h[t].layer;
            if (l >= computed_layers[t] || present[t][l]) return false;
            if (l == c.n_layer - 1) return true;  // K/V projection only: no token dependency
            for (int64_t u = 0; u < t; ++u)
                if (!present[u][l]) return false;
            return true;
        };
        int remaining = n_chunks * c.n_layer;
        while (remaining > 0) {
            std::vector<std::pair<int64_t, int>> actions;  // (chunk, layer); layer -1 = compute
            for (int64_t t = 0; t < n_chunks; ++t) {
                if (ready_to_compute(t)) actions.emplace_back(t, -1);
                for (int l = computed_layers[t]; l < c.n_layer; ++l)
                    if (!present[t][l]) actions.emplace_back(t, l);
            }
            ASSERT_FALSE(actions.empty()) << "schedule deadlocked";
            const auto [t, l] = actions[rng() % actions.size()];
            if (l < 0) {
                const int layer = h[t].layer;
                if (layer == c.n_layer - 1) {
                    e.project_kv(h[t]);
                    h[t].layer = c.n_layer;
                } else {
                    e.run_layer(h[t]);
                }
                present[t][layer] = true;
            } else {
                std::vector<uint16_t> k(unit), v(unit);
                reference.export_kv(l, t * chunk, chunk, k.data(), v.data());
                e.import_kv(l, t * chunk, chunk, k.data(), v.data());
                present[t][l] = true;
            }
            --remaining;
        }
        const auto logits = e.prefill(query, n_ctx_tokens);
        EXPECT_LT(max_rel_diff(ref_logits, logits), 1e-4) << "trial " << trial;
        EXPECT_LT(max_cache_diff(reference, e, n_ctx_tokens), 2e-3) << "trial " << trial;
    }
}

TEST_F(EngineTest, ImportedKvIsExactlyWhatWasExported) {
    const auto& c = model_->config();
    const auto toks = tokens(40, 4);
    Engine a(*model_, {.n_ctx = 64, .n_threads = 1});
    a.prefill(toks, 0);
    Engine b(*model_, {.n_ctx = 64, .n_threads = 1});
    const size_t unit = static_cast<size_t>(c.kv_dim() * 40);
    std::vector<uint16_t> k(unit), v(unit), k2(unit), v2(unit);
    for (int l = 0; l < c.n_layer; ++l) {
        a.export_kv(l, 0, 40, k.data(), v.data());
        b.import_kv(l, 0, 40, k.data(), v.data());
        b.export_kv(l, 0, 40, k2.data(), v2.data());
        EXPECT_EQ(k, k2);
        EXPECT_EQ(v, v2);
    }
    const auto q = tokens(5, 5);
    EXPECT_EQ(a.prefill(q, 40), b.prefill(q, 40));
}

TEST_F(EngineTest, RefusesToAttendOverMissingKv) {
    const auto toks = tokens(16, 6);
    Engine e(*model_, {.n_ctx = 64, .n_threads = 1});
    auto h = e.embed(std::span(toks).subspan(8, 8), 8);  // chunk 1 before chunk 0
    EXPECT_THROW(e.run_layer(h), Error);
    EXPECT_THROW(e.embed(toks, 60), Error);  // past the context
    const int32_t bad[1] = {100000};
    EXPECT_THROW(e.embed(bad, 0), Error);
    std::vector<uint16_t> k(static_cast<size_t>(model_->config().kv_dim() * 8));
    EXPECT_THROW(e.export_kv(0, 0, 8, k.data(), k.data()), Error);  // nothing there yet
    EXPECT_THROW(e.import_kv(model_->config().n_layer, 0, 8, k.data(), k.data()), Error);
}

}  // namespace
}  // namespace sparkv
