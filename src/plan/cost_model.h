// The device's cost model (DESIGN.md §4): what computing a unit costs here, what decoding a
// streamed one costs, and how much the decoder slows the compute lane. A DeviceProfile holds the
// measurements (runtime/profiler.h takes them) and the predictors fitted to them; the runtime
// turns it plus a manifest into a CostInstance for the planner.
//
// Compute cost of a full layer of one chunk is predicted from the published three features --
// the chunk's attention span, its active attention blocks (every visited 64 x 64 block while
// attention is dense) and the CPU availability -- by two models fitted to the same samples with
// the same 80/20 split: the published MLP (3 -> 48 -> 24 -> 1, on log-seconds) and an analytic
// FLOP-style model (a * tokens + b * active blocks + c) / availability fitted by least squares.
// The one with the lower held-out MAPE is used, and the profile says which.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plan/mlp.h"

namespace sparkv::plan {

constexpr int kAttentionBlock = 64;

// (query block, key block) pairs causal attention visits for tokens [first, first + n).
double dense_active_blocks(int64_t first_token, int64_t n_tokens, int block = kAttentionBlock);

struct ComputeFeatures {
    double attention_span = 0;  // keys the chunk's last token attends to
    double n_tokens = 0;
    double active_blocks = 0;
    double availability = 1;  // share of the machine's CPU not used by other processes, (0, 1]
};

struct ComputeSample {
    ComputeFeatures features;
    double seconds = 0;
};

struct ModelAccuracy {
    size_t train_samples = 0;
    size_t test_samples = 0;
    double mlp_mape = 0;  // held-out mean absolute percentage error
    double analytic_mape = 0;
    std::string chosen;  // "mlp" or "analytic"
};

class ComputeCostModel {
  public:
    // Fits both models on 80% of the samples (shuffled with `seed`), measures both on the other
    // 20%, keeps the better one. Needs at least 20 samples.
    static ComputeCostModel fit(const std::vector<ComputeSample>& samples, uint64_t seed = 7,
                                int epochs = 400);

    double predict(const ComputeFeatures& f) const;  // seconds, > 0
    double predict_analytic(const ComputeFeatures& f) const;
    double predict_mlp(const ComputeFeatures& f) const;
    const ModelAccuracy& accuracy() const { return accuracy_; }
    bool uses_mlp() const { return accuracy_.chosen == "mlp"; }

    nlohmann::json to_json() const;
    static ComputeCostModel from_json(const nlohmann::json& j);

  private:
    Mlp mlp_;
    double a_ = 0, b_ = 0, c_ = 0;  // analytic coefficients
    ModelAccuracy accuracy_;
};

struct DeviceProfile {
    static constexpr int kVersion = 1;

    std::string model_fingerprint;
    std::string model_name;
    std::string cpu;
    int n_cpus = 1;
    int threads = 1;  // compute lane threads the samples were taken with
    std::vector<ComputeSample> samples;
    ComputeCostModel compute;
    double project_s_per_token = 0;                   // last layer (K/V projection only), full CPU
    double finish_s = 0;                              // final norm + LM head + sampling
    std::map<std::string, double> decode_s_per_byte;  // per codec level, one core
    double decode_slowdown = 0;  // compute-lane seconds lost per second of decoding beside it
    double profiling_seconds = 0;
    std::string created;  // ISO 8601

    // Seconds to compute one unit of a chunk: a full layer, or the K/V projection for the last.
    double unit_seconds(int64_t first_token, int64_t n_tokens, bool last_layer, double availability,
                        double active_blocks = -1) const;
    // Decode rate of a level; levels the profile did not measure take the slowest measured one.
    double decode_rate(const std::string& level) const;

    nlohmann::json to_json() const;
    static DeviceProfile from_json(const nlohmann::json& j);  // throws Error when malformed
    void save(const std::string& path) const;
    static DeviceProfile load(const std::string& path);
};

}  // namespace sparkv::plan
