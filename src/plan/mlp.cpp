#include "plan/mlp.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common/error.h"

namespace sparkv::plan {

Mlp::Mlp(int inputs, std::vector<int> hidden, uint64_t seed) : inputs_(inputs) {
    if (inputs <= 0) fail("mlp: needs at least one input");
    std::mt19937_64 rng(seed);
    int in = inputs;
    hidden.push_back(1);
    for (int out : hidden) {
        if (out <= 0) fail("mlp: layer widths must be positive");
        Layer layer{in, out, std::vector<double>(static_cast<size_t>(in * out)),
                    std::vector<double>(static_cast<size_t>(out), 0.0)};
        std::normal_distribution<double> init(0.0, std::sqrt(2.0 / in));  // He init for ReLU
        for (auto& w : layer.w) w = init(rng);
        layers_.push_back(std::move(layer));
        in = out;
    }
    x_mean_.assign(static_cast<size_t>(inputs), 0.0);
    x_scale_.assign(static_cast<size_t>(inputs), 1.0);
}

void Mlp::forward(const std::vector<double>& x, std::vector<std::vector<double>>& acts) const {
    acts.resize(layers_.size() + 1);
    acts[0].resize(static_cast<size_t>(inputs_));
    for (int i = 0; i < inputs_; ++i)
        acts[0][static_cast<size_t>(i)] =
            (x[static_cast<size_t>(i)] - x_mean_[static_cast<size_t>(i)]) /
            x_scale_[static_cast<size_t>(i)];
    for (size_t k = 0; k < layers_.size(); ++k) {
        const Layer& L = layers_[k];
        auto& out = acts[k + 1];
        out.assign(static_cast<size_t>(L.out), 0.0);
        for (int o = 0; o < L.out; ++o) {
            double sum = L.b[static_cast<size_t>(o)];
            const double* w = L.w.data() + static_cast<size_t>(o * L.in);
            for (int i = 0; i < L.in; ++i) sum += w[i] * acts[k][static_cast<size_t>(i)];
            out[static_cast<size_t>(o)] = k + 1 < layers_.size() ? std::max(0.0, sum) : sum;
        }
    }
}

double Mlp::predict(const std::vector<double>& x) const {
    if (!trained()) fail("mlp: not trained");
    if (static_cast<int>(x.size()) != inputs_)
        fail("mlp: {} inputs given, the network takes {}", x.size(), inputs_);
    std::vector<std::vector<double>> acts;
    forward(x, acts);
    return acts.back()[0] * y_scale_ + y_mean_;
}

double Mlp::fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y,
                const MlpTraining& training) {
    if (x.empty() || x.size() != y.size())
        fail("mlp: {} samples with {} targets", x.size(), y.size());
    const size_t n = x.size();
    for (int i = 0; i < inputs_; ++i) {
        double mean = 0, sq = 0;
        for (const auto& row : x) mean += row[static_cast<size_t>(i)];
        mean /= static_cast<double>(n);
        for (const auto& row : x) sq += std::pow(row[static_cast<size_t>(i)] - mean, 2);
        x_mean_[static_cast<size_t>(i)] = mean;
        x_scale_[static_cast<size_t>(i)] = std::max(1e-12, std::sqrt(sq / static_cast<double>(n)));
    }
    y_mean_ = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(n);
    double ysq = 0;
    for (double v : y) ysq += (v - y_mean_) * (v - y_mean_);
    y_scale_ = std::max(1e-12, std::sqrt(ysq / static_cast<double>(n)));

    // Adam state per parameter.
    std::vector<std::vector<double>> mw(layers_.size()), vw(layers_.size()), mb(layers_.size()),
        vb(layers_.size()), gw(layers_.size()), gb(layers_.size());
    for (size_t k = 0; k < layers_.size(); ++k) {
        mw[k].assign(layers_[k].w.size(), 0);
        vw[k] = gw[k] = mw[k];
        mb[k].assign(layers_[k].b.size(), 0);
        vb[k] = gb[k] = mb[k];
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(training.seed);
    std::vector<std::vector<double>> acts;
    std::vector<std::vector<double>> delta(layers_.size());
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    int64_t step = 0;
    double last_mse = 0;
    for (int epoch = 0; epoch < training.epochs; ++epoch) {
        std::shuffle(order.begin(), order.end(), rng);
        double sum_sq = 0;
        for (size_t start = 0; start < n; start += static_cast<size_t>(training.batch)) {
            const size_t end = std::min(n, start + static_cast<size_t>(training.batch));
            for (size_t k = 0; k < layers_.size(); ++k) {
                std::fill(gw[k].begin(), gw[k].end(), 0.0);
                std::fill(gb[k].begin(), gb[k].end(), 0.0);
            }
            for (size_t s = start; s < end; ++s) {
                forward(x[order[s]], acts);
                const double target = (y[order[s]] - y_mean_) / y_scale_;
                const double err = acts.back()[0] - target;
                sum_sq += err * err;
                // Backward: delta of each layer's pre-activation.
                for (size_t k = layers_.size(); k-- > 0;) {
                    const Layer& L = layers_[k];
                    auto& d = delta[k];
                    if (k + 1 == layers_.size()) {
                        d.assign(1, 2 * err);
                    } else {
                        const Layer& next = layers_[k + 1];
                        d.assign(static_cast<size_t>(L.out), 0.0);
                        for (int o = 0; o < next.out; ++o)
                            for (int i = 0; i < next.in; ++i)
                                d[static_cast<size_t>(i)] +=
                                    next.w[static_cast<size_t>(o * next.in + i)] *
                                    delta[k + 1][static_cast<size_t>(o)];
                        for (int i = 0; i < L.out; ++i)
                            if (acts[k + 1][static_cast<size_t>(i)] <= 0)
                                d[static_cast<size_t>(i)] = 0;
                    }
                    for (int o = 0; o < L.out; ++o) {
                        gb[k][static_cast<size_t>(o)] += d[static_cast<size_t>(o)];
                        for (int i = 0; i < L.in; ++i)
                            gw[k][static_cast<size_t>(o * L.in + i)] +=
                                d[static_cast<size_t>(o)] * acts[k][static_cast<size_t>(i)];
                    }
                }
            }
            ++step;
            const double scale = 1.0 / static_cast<double>(end - start);
            const double lr = training.learning_rate * std::sqrt(1 - std::pow(b2, step)) /
                              (1 - std::pow(b1, step));
            const auto adam = [&](std::vector<double>& p, std::vector<double>& m,
                                  std::vector<double>& v, const std::vector<double>& g) {
                for (size_t i = 0; i < p.size(); ++i) {
                    const double gi = g[i] * scale;
                    m[i] = b1 * m[i] + (1 - b1) * gi;
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                    p[i] -= lr * m[i] / (std::sqrt(v[i]) + eps);
                }
            };
            for (size_t k = 0; k < layers_.size(); ++k) {
                adam(layers_[k].w, mw[k], vw[k], gw[k]);
                adam(layers_[k].b, mb[k], vb[k], gb[k]);
            }
        }
        last_mse = sum_sq / static_cast<double>(n);
    }
    return last_mse;
}

nlohmann::json Mlp::to_json() const {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& L : layers_)
        layers.push_back({{"in", L.in}, {"out", L.out}, {"w", L.w}, {"b", L.b}});
    return {{"inputs", inputs_}, {"x_mean", x_mean_},   {"x_scale", x_scale_},
            {"y_mean", y_mean_}, {"y_scale", y_scale_}, {"layers", layers}};
}

Mlp Mlp::from_json(const nlohmann::json& j) {
    try {
        Mlp m;
        m.inputs_ = j.at("inputs").get<int>();
        m.x_mean_ = j.at("x_mean").get<std::vector<double>>();
        m.x_scale_ = j.at("x_scale").get<std::vector<double>>();
        m.y_mean_ = j.at("y_mean").get<double>();
        m.y_scale_ = j.at("y_scale").get<double>();
        int in = m.inputs_;
        if (in <= 0 || static_cast<int>(m.x_mean_.size()) != in ||
            static_cast<int>(m.x_scale_.size()) != in)
            fail("mlp: input normalisation does not match {} inputs", in);
        for (const auto& jl : j.at("layers")) {
            Layer L{jl.at("in").get<int>(), jl.at("out").get<int>(),
                    jl.at("w").get<std::vector<double>>(), jl.at("b").get<std::vector<double>>()};
            if (L.in != in || L.out <= 0 || L.w.size() != static_cast<size_t>(L.in * L.out) ||
                L.b.size() != static_cast<size_t>(L.out))
                fail("mlp: layer shapes are inconsistent");
            in = L.out;
            m.layers_.push_back(std::move(L));
        }
        if (m.layers_.empty() || in != 1) fail("mlp: the network must end in one output");
        return m;
    } catch (const nlohmann::json::exception& e) {
        fail("mlp: malformed network ({})", e.what());
    }
}

}  // namespace sparkv::plan
