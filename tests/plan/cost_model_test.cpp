#include "plan/cost_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"

namespace sparkv::plan {
namespace {

// Samples from a known cost law: weights linear in tokens, attention linear in active blocks,
// everything slower when the CPU is shared, plus 3% noise.
std::vector<ComputeSample> synthetic_samples(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> noise(0.97, 1.03);
    std::vector<ComputeSample> out;
    for (size_t i = 0; i < n; ++i) {
        const int64_t tokens = 64 + static_cast<int64_t>(rng() % 961);
        const int64_t first = static_cast<int64_t>(rng() % 8) * 1024;
        const double avail = (rng() % 2) ? 1.0 : 0.5;
        ComputeFeatures f{static_cast<double>(first + tokens), static_cast<double>(tokens),
                          dense_active_blocks(first, tokens), avail};
        const double seconds = (2e-5 * f.n_tokens + 4e-5 * f.active_blocks + 1e-3) / avail;
        out.push_back({f, seconds * noise(rng)});
    }
    return out;
}

TEST(CostModel, DenseActiveBlocksCountTheCausalTriangle) {
    EXPECT_EQ(dense_active_blocks(0, 64), 1);
    EXPECT_EQ(dense_active_blocks(0, 128), 1 + 2);
    EXPECT_EQ(dense_active_blocks(1024, 128), 17 + 18);
    EXPECT_EQ(dense_active_blocks(0, 1024), 16 * 17 / 2);
}

TEST(CostModel, BothModelsLearnAKnownLawAndTheBetterOneIsChosen) {
    const auto samples = synthetic_samples(600, 3);
    const auto model = ComputeCostModel::fit(samples, 7, 200);
    const auto& acc = model.accuracy();
    EXPECT_EQ(acc.train_samples, 480u);
    EXPECT_EQ(acc.test_samples, 120u);
    EXPECT_LT(acc.analytic_mape, 0.03);  // the law is exactly the analytic form
    EXPECT_LT(acc.mlp_mape, 0.15);
    EXPECT_EQ(acc.chosen, acc.mlp_mape <= acc.analytic_mape ? "mlp" : "analytic");
    const ComputeFeatures probe{4096, 1024, dense_active_blocks(3072, 1024), 1.0};
    const double truth = 2e-5 * 1024 + 4e-5 * probe.active_blocks + 1e-3;
    EXPECT_NEAR(model.predict(probe), truth, 0.1 * truth);
    // Less CPU, more time.
    ComputeFeatures shared = probe;
    shared.availability = 0.5;
    EXPECT_GT(model.predict(shared), 1.5 * model.predict(probe));
}

TEST(CostModel, ProfileRoundTripsThroughJsonAndRejectsGarbage) {
    DeviceProfile p;
    p.model_fingerprint = "abc";
    p.model_name = "m";
    p.cpu = "cpu";
    p.samples = synthetic_samples(100, 4);
    p.compute = ComputeCostModel::fit(p.samples, 1, 20);
    p.project_s_per_token = 1e-6;
    p.finish_s = 0.01;
    p.decode_s_per_byte = {{"q5h", 2.5e-9}, {"fp16", 1e-9}};
    p.decode_slowdown = 0.4;
    const DeviceProfile back = DeviceProfile::from_json(p.to_json());
    EXPECT_EQ(back.to_json(), p.to_json());
    const ComputeFeatures f{2048, 1024, dense_active_blocks(1024, 1024), 1.0};
    EXPECT_DOUBLE_EQ(back.compute.predict(f), p.compute.predict(f));
    EXPECT_DOUBLE_EQ(back.decode_rate("q5h"), 2.5e-9);
    EXPECT_DOUBLE_EQ(back.decode_rate("q3h"), 2.5e-9);  // unmeasured: the slowest known
    EXPECT_DOUBLE_EQ(back.unit_seconds(0, 1000, true, 1.0), 1e-3);

    auto j = p.to_json();
    j["version"] = 99;
    EXPECT_THROW(DeviceProfile::from_json(j), Error);
    j = p.to_json();
    j["compute_model"]["mlp"]["layers"][0]["w"] = nlohmann::json::array();
    EXPECT_THROW(DeviceProfile::from_json(j), Error);
    j = p.to_json();
    j["decode_slowdown"] = -1;
    EXPECT_THROW(DeviceProfile::from_json(j), Error);
    EXPECT_THROW(DeviceProfile::load("/nonexistent/profile.json"), Error);
    EXPECT_THROW(ComputeCostModel::fit(synthetic_samples(5, 1)), Error);
}

}  // namespace
}  // namespace sparkv::plan
