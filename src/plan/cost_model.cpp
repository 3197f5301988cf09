#include "plan/cost_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "common/error.h"

namespace sparkv::plan {

namespace {

std::vector<double> mlp_inputs(const ComputeFeatures& f) {
    return {f.attention_span, f.active_blocks, f.availability};
}

constexpr double kAnalyticFloor_s = 1e-6;

double clamp_availability(double a) {
    return std::isfinite(a) ? std::clamp(a, 0.05, 1.0) : 1.0;
}

// Least squares for y = a * x0 + b * x1 + c (3 x 3 normal equations, Cramer's rule).
std::array<double, 3> least_squares(const std::vector<std::array<double, 3>>& x,
                                    const std::vector<double>& y) {
    double m[3][3] = {}, v[3] = {};
    for (size_t s = 0; s < x.size(); ++s)
        for (int i = 0; i < 3; ++i) {
            v[i] += x[s][static_cast<size_t>(i)] * y[s];
            for (int j = 0; j < 3; ++j)
                m[i][j] += x[s][static_cast<size_t>(i)] * x[s][static_cast<size_t>(j)];
        }
    const auto det3 = [](double a[3][3]) {
        return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
               a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
               a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    };
    const double d = det3(m);
    if (std::abs(d) < 1e-300) fail("cost model: the samples cannot determine a linear fit");
    std::array<double, 3> out{};
    for (int k = 0; k < 3; ++k) {
        double mk[3][3];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) mk[i][j] = j == k ? v[i] : m[i][j];
        out[static_cast<size_t>(k)] = det3(mk) / d;
    }
    return out;
}

}  // namespace

double dense_active_blocks(int64_t first_token, int64_t n_tokens, int block) {
    double total = 0;
    for (int64_t q = first_token; q < first_token + n_tokens; q += block) {
        const int64_t last = std::min(q + block, first_token + n_tokens) - 1;
        total += static_cast<double>(last / block + 1);
    }
    return total;
}

ComputeCostModel ComputeCostModel::fit(const std::vector<ComputeSample>& samples, uint64_t seed,
                                       int epochs) {
    if (samples.size() < 20)
        fail("cost model: {} samples are too few to fit (need 20)", samples.size());
    for (const auto& s : samples)
        if (!(s.seconds > 0) || !std::isfinite(s.seconds))
            fail("cost model: a sample has a non-positive time");
    std::vector<size_t> order(samples.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    const size_t n_train = samples.size() * 4 / 5;

    ComputeCostModel model;
    // Analytic: seconds * availability = a * tokens + b * active blocks + c.
    std::vector<std::array<double, 3>> ax;
    std::vector<double> ay;
    std::vector<std::vector<double>> mx;
    std::vector<double> my;
    for (size_t k = 0; k < n_train; ++k) {
        const auto& s = samples[order[k]];
        ax.push_back({s.features.n_tokens, s.features.active_blocks, 1.0});
        ay.push_back(s.seconds * clamp_availability(s.features.availability));
        mx.push_back(mlp_inputs(s.features));
        my.push_back(std::log(s.seconds));
    }
    const auto coef = least_squares(ax, ay);
    model.a_ = coef[0];
    model.b_ = coef[1];
    model.c_ = coef[2];
    model.mlp_ = Mlp(3, {48, 24}, seed);
    MlpTraining training;
    training.epochs = epochs;
    training.seed = seed;
    model.mlp_.fit(mx, my, training);

    double mlp_err = 0, analytic_err = 0;
    const size_t n_test = samples.size() - n_train;
    for (size_t k = n_train; k < samples.size(); ++k) {
        const auto& s = samples[order[k]];
        mlp_err += std::abs(model.predict_mlp(s.features) - s.seconds) / s.seconds;
        analytic_err += std::abs(model.predict_analytic(s.features) - s.seconds) / s.seconds;
    }
    model.accuracy_ = {n_train, n_test, mlp_err / static_cast<double>(n_test),
                       analytic_err / static_cast<double>(n_test), ""};
    model.accuracy_.chosen =
        model.accuracy_.mlp_mape <= model.accuracy_.analytic_mape ? "mlp" : "analytic";
    return model;
}

double ComputeCostModel::predict_analytic(const ComputeFeatures& f) const {
    const double t =
        (a_ * f.n_tokens + b_ * f.active_blocks + c_) / clamp_availability(f.availability);
    return std::max(t, kAnalyticFloor_s);
}

double ComputeCostModel::predict_mlp(const ComputeFeatures& f) const {
    return std::exp(mlp_.predict(mlp_inputs(f)));
}

double ComputeCostModel::predict(const ComputeFeatures& f) const {
    const double analytic = predict_analytic(f);
    if (!uses_mlp()) return analytic;
    // Outside its training range the MLP's exponential output can run away (inf on a small test
    // model's profile); the linear model cannot, so it bounds the MLP to within 4x either way.
    const double mlp = predict_mlp(f);
    if (!std::isfinite(mlp)) return analytic;
    if (analytic <= kAnalyticFloor_s) return mlp;  // the linear fit says nothing useful here
    return std::clamp(mlp, analytic / 4, analytic * 4);
}

nlohmann::json ComputeCostModel::to_json() const {
    return {{"chosen", accuracy_.chosen},
            {"train_samples", accuracy_.train_samples},
            {"test_samples", accuracy_.test_samples},
            {"mlp_mape", accuracy_.mlp_mape},
            {"analytic_mape", accuracy_.analytic_mape},
            {"analytic", {{"per_token", a_}, {"per_block", b_}, {"fixed", c_}}},
            {"mlp", mlp_.to_json()}};
}

ComputeCostModel ComputeCostModel::from_json(const nlohmann::json& j) {
    try {
        ComputeCostModel m;
        m.accuracy_.chosen = j.at("chosen").get<std::string>();
        if (m.accuracy_.chosen != "mlp" && m.accuracy_.chosen != "analytic")
            fail("cost model: unknown model kind '{}'", m.accuracy_.chosen);
        m.accuracy_.train_samples = j.at("train_samples").get<size_t>();
        m.accuracy_.test_samples = j.at("test_samples").get<size_t>();
        m.accuracy_.mlp_mape = j.at("mlp_mape").get<double>();
        m.accuracy_.analytic_mape = j.at("analytic_mape").get<double>();
        m.a_ = j.at("analytic").at("per_token").get<double>();
        m.b_ = j.at("analytic").at("per_block").get<double>();
        m.c_ = j.at("analytic").at("fixed").get<double>();
        m.mlp_ = Mlp::from_json(j.at("mlp"));
        if (m.mlp_.inputs() != 3) fail("cost model: the MLP must take 3 features");
        return m;
    } catch (const nlohmann::json::exception& e) {
        fail("cost model: malformed ({})", e.what());
    }
}

double DeviceProfile::unit_seconds(int64_t first_token, int64_t n_tokens, bool last_layer,
                                   double availability, double active_blocks) const {
    const double avail = clamp_availability(availability);
    if (last_layer) return project_s_per_token * static_cast<double>(n_tokens) / avail;
    ComputeFeatures f;
    f.attention_span = static_cast<double>(first_token + n_tokens);
    f.n_tokens = static_cast<double>(n_tokens);
    f.active_blocks =
        active_blocks >= 0 ? active_blocks : dense_active_blocks(first_token, n_tokens);
    f.availability = avail;
    return compute.predict(f);
}

double DeviceProfile::decode_rate(const std::string& level) const {
    if (auto it = decode_s_per_byte.find(level); it != decode_s_per_byte.end()) return it->second;
    double slowest = 0;
    for (const auto& [name, rate] : decode_s_per_byte) slowest = std::max(slowest, rate);
    return slowest;
}

nlohmann::json DeviceProfile::to_json() const {
    nlohmann::json samples_json = nlohmann::json::array();
    for (const auto& s : samples)
        samples_json.push_back({s.features.attention_span, s.features.n_tokens,
                                s.features.active_blocks, s.features.availability, s.seconds});
    return {{"format", "sparkv-device-profile"},
            {"version", kVersion},
            {"model_fingerprint", model_fingerprint},
            {"model_name", model_name},
            {"cpu", cpu},
            {"n_cpus", n_cpus},
            {"threads", threads},
            {"created", created},
            {"profiling_seconds", profiling_seconds},
            {"project_s_per_token", project_s_per_token},
            {"finish_s", finish_s},
            {"decode_s_per_byte", decode_s_per_byte},
            {"decode_slowdown", decode_slowdown},
            {"compute_model", compute.to_json()},
            {"sample_columns",
             {"attention_span", "n_tokens", "active_blocks", "availability", "seconds"}},
            {"samples", samples_json}};
}

DeviceProfile DeviceProfile::from_json(const nlohmann::json& j) {
    try {
        if (j.at("format").get<std::string>() != "sparkv-device-profile")
            fail("device profile: not a SparKV device profile");
        if (j.at("version").get<int>() != kVersion)
            fail("device profile: version {} is not {}; run `sparkv profile` again",
                 j.at("version").get<int>(), kVersion);
        DeviceProfile p;
        p.model_fingerprint = j.at("model_fingerprint").get<std::string>();
        p.model_name = j.at("model_name").get<std::string>();
        p.cpu = j.at("cpu").get<std::string>();
        p.n_cpus = j.at("n_cpus").get<int>();
        p.threads = j.at("threads").get<int>();
        p.created = j.at("created").get<std::string>();
        p.profiling_seconds = j.at("profiling_seconds").get<double>();
        p.project_s_per_token = j.at("project_s_per_token").get<double>();
        p.finish_s = j.at("finish_s").get<double>();
        p.decode_s_per_byte = j.at("decode_s_per_byte").get<std::map<std::string, double>>();
        p.decode_slowdown = j.at("decode_slowdown").get<double>();
        p.compute = ComputeCostModel::from_json(j.at("compute_model"));
        for (const auto& row : j.at("samples")) {
            const auto v = row.get<std::vector<double>>();
            if (v.size() != 5) fail("device profile: a sample has {} columns, not 5", v.size());
            p.samples.push_back({{v[0], v[1], v[2], v[3]}, v[4]});
        }
        const auto bad = [](double x) { return !std::isfinite(x) || x < 0; };
        if (bad(p.project_s_per_token) || bad(p.finish_s) || bad(p.decode_slowdown) ||
            p.threads < 1 || p.n_cpus < 1)
            fail("device profile: invalid constants");
        for (const auto& [level, rate] : p.decode_s_per_byte)
            if (bad(rate)) fail("device profile: invalid decode rate for {}", level);
        return p;
    } catch (const nlohmann::json::exception& e) {
        fail("device profile: malformed ({})", e.what());
    }
}

void DeviceProfile::save(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        if (!out) fail("cannot write the device profile {}", tmp);
        out << to_json().dump(1) << "\n";
        if (!out) fail("cannot write the device profile {}", tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        fail("cannot move the device profile to {}", path);
}

DeviceProfile DeviceProfile::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) fail("cannot read the device profile {}", path);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
        fail("device profile {}: not valid JSON ({})", path, e.what());
    }
    try {
        return from_json(j);
    } catch (const Error& e) {
        fail("{}: {}", path, e.what());
    }
}

}  // namespace sparkv::plan
