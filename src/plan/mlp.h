// The small regression network of the published compute-cost estimator: inputs -> 48 -> 24 -> 1
// with ReLU, inputs standardised, trained with MSE by Adam. Tiny and dependency-free; it runs in
// microseconds, so the planner can ask it about every unit.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace sparkv::plan {

struct MlpTraining {
    int epochs = 400;
    int batch = 64;
    double learning_rate = 2e-3;
    uint64_t seed = 1;
};

class Mlp {
  public:
    Mlp() = default;
    Mlp(int inputs, std::vector<int> hidden, uint64_t seed);

    int inputs() const { return inputs_; }
    bool trained() const { return !layers_.empty(); }

    // Fits y from x (rows of inputs() values); standardises both; returns the final train MSE
    // (in standardised units).
    double fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y,
               const MlpTraining& training = {});
    double predict(const std::vector<double>& x) const;

    nlohmann::json to_json() const;
    static Mlp from_json(const nlohmann::json& j);  // throws Error on a malformed network

  private:
    struct Layer {
        int in = 0, out = 0;
        std::vector<double> w;  // out x in
        std::vector<double> b;
    };
    // Forward pass keeping every layer's activations (for training).
    void forward(const std::vector<double>& x, std::vector<std::vector<double>>& acts) const;

    int inputs_ = 0;
    std::vector<Layer> layers_;
    std::vector<double> x_mean_, x_scale_;
    double y_mean_ = 0, y_scale_ = 1;
};

}  // namespace sparkv::plan
