// A context ingested with block-sparse attention, asked through the runtime: the device computes
// its units with the manifest's settings, so computed and streamed units of the context agree and
// every plan (all computed, all streamed, a mix) gives the answer of one sparse local prefill.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/prompt.h"
#include "runtime/cost_builder.h"
#include "runtime_fixture.h"

namespace sparkv {
namespace {

using plan::Policy;

// Aggressive enough that the random test model's attention loses blocks (its token vectors are
// not self-similar, so the similarity fallback is off).
SparseAttentionOptions test_sparse() {
    return {.tau = 0.5f, .block = 16, .min_similarity = -1.0f, .sink_blocks = 1, .local_blocks = 0};
}

class SparseAskTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { world_ = new testing::RuntimeWorld(180, 32, test_sparse()); }
    static void TearDownTestSuite() {
        delete world_;
        world_ = nullptr;
    }
    void SetUp() override { world_->serve(); }
    void TearDown() override { world_->server.reset(); }

    static double max_rel_error(const std::vector<float>& a, const std::vector<float>& b) {
        EXPECT_EQ(a.size(), b.size());
        float scale = 0;
        for (float x : b) scale = std::max(scale, std::abs(x));
        double worst = 0;
        for (size_t i = 0; i < a.size() && i < b.size(); ++i)
            worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i]) / scale));
        return worst;
    }

    static runtime::AskOptions with_prefixes(std::vector<int32_t> k, const char* name) {
        auto ask = world_->ask(Policy::stream, "fp16");
        const auto shape =
            plan::ContextShape::uniform(static_cast<int64_t>(world_->tokens.size()), 32, 4);
        ask.fixed_plan = plan::Plan::from_prefixes(shape, k, 0);
        ask.fixed_plan->policy = name;
        return ask;
    }

    static std::vector<int32_t> question_ids() {
        return question_tokens(*world_->model, "what comes next?", PromptFormat::raw);
    }

    static testing::RuntimeWorld* world_;
};

testing::RuntimeWorld* SparseAskTest::world_ = nullptr;

TEST_F(SparseAskTest, TheManifestCarriesTheSettingsAndSparseUnits) {
    const Manifest m = ContextStore(world_->backend).read_manifest(world_->context_id);
    ASSERT_TRUE(m.sparse.has_value());
    EXPECT_EQ(from_manifest(*m.sparse), test_sparse());
    int64_t active = 0, causal = 0;
    for (const auto& u : m.units) {
        if (u.l == m.n_layers() - 1) continue;  // K/V projection only
        ASSERT_TRUE(u.active_blocks.has_value());
        active += *u.active_blocks;
        causal += causal_blocks(u.first_token, u.n_tokens, m.model.n_kv_heads, m.sparse->block);
    }
    EXPECT_LT(active, causal);  // some blocks were really skipped
}

// The cost model prices a sparse unit by the blocks it visited at ingest (manifest), in its own
// block unit: a fully dense unit converts to the dense count, skipped blocks make it cheaper when
// attention costs time (a profile whose cost is linear in blocks), and never dearer.
TEST_F(SparseAskTest, TheCostModelPricesSparseUnitsByTheirActiveBlocks) {
    const Manifest m = ContextStore(world_->backend).read_manifest(world_->context_id);
    std::vector<plan::ComputeSample> samples;
    for (int i = 0; i < 200; ++i) {
        plan::ComputeSample s;
        s.features.n_tokens = 16 + i % 17;
        s.features.attention_span = 32 + 7 * i;
        s.features.active_blocks = 1 + (i * 13) % 40;
        s.features.availability = 1;
        s.seconds = 1e-5 * s.features.n_tokens + 1e-4 * s.features.active_blocks + 1e-3;
        samples.push_back(s);
    }
    plan::DeviceProfile profile = plan::DeviceProfile::load(world_->profile_path);
    profile.compute = plan::ComputeCostModel::fit(samples, 7, 20);
    Manifest dense = m;
    dense.sparse.reset();
    const auto sparse_costs = runtime::build_costs(m, profile, 1.0, 0, 0.0, 4);
    const auto dense_costs = runtime::build_costs(dense, profile, 1.0, 0, 0.0, 4);
    bool cheaper = false;
    for (size_t i = 0; i < m.units.size(); ++i) {
        const auto& u = m.units[i];
        if (u.l == m.n_layers() - 1) continue;
        EXPECT_LE(sparse_costs.units[i].compute_s, dense_costs.units[i].compute_s);
        const int64_t all = causal_blocks(u.first_token, u.n_tokens, m.model.n_kv_heads, 16);
        cheaper |= sparse_costs.units[i].compute_s < 0.99 * dense_costs.units[i].compute_s;
        UnitInfo full = u;
        full.active_blocks = all;
        EXPECT_DOUBLE_EQ(runtime::model_active_blocks(m, full),
                         plan::dense_active_blocks(u.first_token, u.n_tokens));
    }
    EXPECT_TRUE(cheaper);
    EXPECT_EQ(runtime::model_active_blocks(dense, m.units[0]), -1);
}

TEST_F(SparseAskTest, ComputedStreamedAndMixedUnitsGiveTheSparseLocalAnswer) {
    const auto question = question_ids();
    const auto reference = world_->local_logits(question);
    // The settings change the answer on this model: a device computing dense units would not
    // match what was streamed.
    ASSERT_GT(max_rel_error(world_->local_logits(question, {}), reference), 1e-3);

    runtime::Device device(world_->device_options());
    const auto local = device.ask(world_->ask(Policy::local));
    EXPECT_EQ(local.units_computed, 24u);
    EXPECT_LT(max_rel_error(local.first_logits, reference), 1e-4);

    const auto streamed = device.ask(with_prefixes({0, 0, 0, 0, 0, 0}, "stream-all"));
    EXPECT_EQ(streamed.units_streamed, 24u);
    EXPECT_LT(max_rel_error(streamed.first_logits, reference), 1e-4);

    // Computed chunks after streamed ones attend over streamed KV, and the other way round.
    const auto mixed = device.ask(with_prefixes({4, 0, 2, 4, 1, 0}, "mixed"));
    EXPECT_EQ(mixed.units_computed, 11u);
    EXPECT_EQ(mixed.units_streamed, 13u);
    EXPECT_TRUE(mixed.failures.empty());
    EXPECT_LT(max_rel_error(mixed.first_logits, reference), 1e-4);
    EXPECT_EQ(mixed.answer_tokens, local.answer_tokens);
    EXPECT_EQ(streamed.answer_tokens, local.answer_tokens);
}

}  // namespace
}  // namespace sparkv
