// sparse_bench: speed of block-sparse prefill attention against dense, unit by unit, in one run.
//
//   sparse_bench [--model FILE] [--text FILE] [--threads 2] [--context 8192] [--chunk 1024]
//                [--taus 0.95,0.9] [--block 64] [--min-similarity 0.3] [--repeats 1]
//                [--predict-strides 8,1] [--paired] [--json]
//
// Every repeat prefills the first --context tokens of the text chunk by chunk, layer by layer
// (run_layer for every layer, as `generate` does; no LM head), once per setting: dense (tau = 1)
// and each tau, in an order rotated from repeat to repeat. Each unit (chunk t, layer l) records
// its run_layer time, its attention time and the active key blocks the attention visited. In the
// first repeat, before each sparse unit runs, predict_active_blocks() forecasts its active blocks
// with every --predict-strides value (not included in the unit's time). The chunks of depth
// < 4096 of an 8192-token run are the chunks of a 4096-token context (attention is causal).
//
// Output (JSON): per setting, per chunk the medians over repeats of the prefill and attention
// seconds, and per unit the median seconds and the active blocks; then, per setting, the spread
// of unit cost (max/min over units), a least-squares fit unit_seconds = a + b * active_blocks
// (R^2, mean absolute percentage error) and the predictor's error and cost.
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/paths.h"
#include "common/timer.h"
#include "engine/engine.h"
#include "engine/kernels/kernels.h"
#include "engine/model.h"
#include "engine/sparse_predict.h"

namespace {

using namespace sparkv;
using nlohmann::json;

struct Options {
    std::string model;
    std::string text_file;
    int threads = 2;
    int64_t context = 8192;
    int64_t chunk = 1024;
    std::vector<float> taus = {0.95f, 0.9f};
    int block = 64;
    float min_similarity = SparseAttentionOptions{}.min_similarity;
    int repeats = 1;
    std::vector<int> predict_strides = {8, 1};
    bool paired = false;
    bool json_out = false;
};

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read {}", path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// CPU seconds of the whole process (both pool threads, spin-waits included): less disturbed than
// wall time when the shared machine is oversubscribed.
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Unit {
    std::vector<double> seconds, attention_seconds, cpu_seconds;
    int64_t active = 0, causal = 0;
    std::vector<int64_t> predicted;  // per predict stride
    std::vector<double> predict_seconds;
};

struct Setting {
    SparseAttentionOptions sparse;
    std::vector<Unit> units;                                          // [t * n_layer + l]
    std::vector<std::vector<double>> chunk_seconds, chunk_attention;  // [t][repeat]
    std::vector<std::vector<double>> chunk_cpu;                       // [t][repeat]
};

// One chunked prefill of the context with the engine's current settings.
void prefill_once(Engine& engine, const std::vector<int32_t>& tokens, const Options& opt,
                  Setting& s, bool predict) {
    const int n_layer = engine.config().n_layer;
    engine.cache().clear();
    const std::span<const int32_t> all(tokens);
    for (int64_t t = 0; t * opt.chunk < opt.context; ++t) {
        const int64_t pos = t * opt.chunk;
        const int64_t n = std::min(opt.chunk, opt.context - pos);
        HiddenState h =
            engine.embed(all.subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos);
        double chunk_s = 0, attn_s = 0, chunk_cpu = 0;
        for (int l = 0; l < n_layer; ++l) {
            Unit& u = s.units[static_cast<size_t>(t * n_layer + l)];
            if (predict && s.sparse.enabled()) {
                for (int stride : opt.predict_strides) {
                    const auto p = predict_active_blocks(engine.model(), engine.cache(), h,
                                                         s.sparse, engine.pool(), stride);
                    u.predicted.push_back(p.active_blocks);
                    u.predict_seconds.push_back(p.seconds);
                }
            }
            const double t0 = now_seconds(), c0 = cpu_seconds();
            engine.run_layer(h);
            const double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
            u.cpu_seconds.push_back(dc);
            chunk_cpu += dc;
            const AttentionStats& st = engine.last_attention_stats();
            u.seconds.push_back(dt);
            u.attention_seconds.push_back(st.seconds);
            u.active = st.active_blocks;
            u.causal = st.causal_blocks;
            chunk_s += dt;
            attn_s += st.seconds;
        }
        s.chunk_seconds[static_cast<size_t>(t)].push_back(chunk_s);
        s.chunk_attention[static_cast<size_t>(t)].push_back(attn_s);
        s.chunk_cpu[static_cast<size_t>(t)].push_back(chunk_cpu);
    }
}

// Paired mode: one dense prefill of the context; every unit (t, l) is timed with every setting
// in turn (--repeats times, order rotated) on copies of the same hidden state and the same cache,
// then recomputed dense (untimed) so that the cache stays the dense one. Slow drifts of a shared
// machine's load hit all settings of a unit alike, which separate prefills cannot promise.
void prefill_paired(Engine& engine, const std::vector<int32_t>& tokens, const Options& opt,
                    std::vector<Setting>& settings) {
    const int n_layer = engine.config().n_layer;
    engine.cache().clear();
    const std::span<const int32_t> all(tokens);
    const SparseAttentionOptions dense{.block = opt.block};
    for (int64_t t = 0; t * opt.chunk < opt.context; ++t) {
        const int64_t pos = t * opt.chunk;
        const int64_t n = std::min(opt.chunk, opt.context - pos);
        std::fprintf(stderr, "sparse_bench: paired, chunk %lld\n", static_cast<long long>(t));
        HiddenState h =
            engine.embed(all.subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos);
        for (auto& s : settings) {
            s.chunk_seconds[static_cast<size_t>(t)].assign(static_cast<size_t>(opt.repeats), 0.0);
            s.chunk_attention[static_cast<size_t>(t)].assign(static_cast<size_t>(opt.repeats), 0.0);
            s.chunk_cpu[static_cast<size_t>(t)].assign(static_cast<size_t>(opt.repeats), 0.0);
        }
        for (int l = 0; l < n_layer; ++l) {
            for (auto& s : settings) {
                Unit& u = s.units[static_cast<size_t>(t * n_layer + l)];
                if (!s.sparse.enabled()) continue;
                for (int stride : opt.predict_strides) {
                    const auto p = predict_active_blocks(engine.model(), engine.cache(), h,
                                                         s.sparse, engine.pool(), stride);
                    u.predicted.push_back(p.active_blocks);
                    u.predict_seconds.push_back(p.seconds);
                }
            }
            for (int rep = 0; rep < opt.repeats; ++rep) {
                for (size_t i = 0; i < settings.size(); ++i) {
                    Setting& s = settings[(i + static_cast<size_t>(rep + l)) % settings.size()];
                    Unit& u = s.units[static_cast<size_t>(t * n_layer + l)];
                    HiddenState copy = h;
                    engine.set_sparse(s.sparse);
                    const double t0 = now_seconds(), c0 = cpu_seconds();
                    engine.run_layer(copy);
                    const double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
                    const AttentionStats& st = engine.last_attention_stats();
                    u.seconds.push_back(dt);
                    u.cpu_seconds.push_back(dc);
                    u.attention_seconds.push_back(st.seconds);
                    u.active = st.active_blocks;
                    u.causal = st.causal_blocks;
                    s.chunk_seconds[static_cast<size_t>(t)][static_cast<size_t>(rep)] += dt;
                    s.chunk_attention[static_cast<size_t>(t)][static_cast<size_t>(rep)] +=
                        st.seconds;
                    s.chunk_cpu[static_cast<size_t>(t)][static_cast<size_t>(rep)] += dc;
                }
            }
            engine.set_sparse(dense);
            engine.run_layer(h);  // the dense trajectory (and the dense KV in the cache)
        }
    }
}

// Least squares y = a + b x; returns {a, b, r2, mape}.
std::array<double, 4> fit(const std::vector<double>& x, const std::vector<double>& y) {
    const double n = static_cast<double>(x.size());
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
    }
    const double den = n * sxx - sx * sx;
    const double b = den != 0 ? (n * sxy - sx * sy) / den : 0.0;
    const double a = (sy - b * sx) / n;
    double ss_res = 0, ss_tot = 0, ape = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double pred = a + b * x[i];
        ss_res += (y[i] - pred) * (y[i] - pred);
        ss_tot += (y[i] - sy / n) * (y[i] - sy / n);
        ape += std::fabs(pred - y[i]) / y[i];
    }
    return {a, b, ss_tot > 0 ? 1.0 - ss_res / ss_tot : 1.0, ape / n};
}

json summarize(const Setting& s, const Options& opt, int n_layer) {
    json j;
    j["tau"] = s.sparse.tau;
    j["block"] = s.sparse.block;
    j["min_similarity"] = s.sparse.min_similarity;
    json chunks = json::array();
    int64_t active = 0, causal = 0;
    for (size_t t = 0; t < s.chunk_seconds.size(); ++t) {
        int64_t ca = 0, cc = 0;
        for (int l = 0; l < n_layer; ++l) {
            ca += s.units[t * n_layer + l].active;
            cc += s.units[t * n_layer + l].causal;
        }
        active += ca;
        causal += cc;
        chunks.push_back({{"chunk", t},
                          {"depth", static_cast<int64_t>(t) * opt.chunk},
                          {"prefill_seconds", median(s.chunk_seconds[t])},
                          {"attention_seconds", median(s.chunk_attention[t])},
                          {"prefill_cpu_seconds", median(s.chunk_cpu[t])},
                          {"active_blocks", ca},
                          {"causal_blocks", cc}});
    }
    j["chunks"] = chunks;
    j["density"] = causal > 0 ? double(active) / double(causal) : 1.0;

    // Units that run attention (every layer here), their median time against active blocks.
    std::vector<double> x, y, ycpu;
    json units = json::array();
    for (size_t i = 0; i < s.units.size(); ++i) {
        const Unit& u = s.units[i];
        const double sec = median(u.seconds);
        x.push_back(static_cast<double>(u.active));
        y.push_back(sec);
        ycpu.push_back(median(u.cpu_seconds));
        json ju = {{"t", i / n_layer},
                   {"l", i % n_layer},
                   {"seconds", sec},
                   {"attention_seconds", median(u.attention_seconds)},
                   {"cpu_seconds", median(u.cpu_seconds)},
                   {"active_blocks", u.active}};
        if (!u.predicted.empty()) ju["predicted"] = u.predicted;
        units.push_back(ju);
    }
    j["units"] = units;
    const auto [a, b, r2, mape] = fit(x, y);
    j["unit_cost"] = {{"max_over_min", *std::max_element(y.begin(), y.end()) /
                                           *std::min_element(y.begin(), y.end())},
                      {"fit_seconds_intercept", a},
                      {"fit_seconds_per_block", b},
                      {"fit_r2", r2},
                      {"fit_mape", mape}};
    const auto fc = fit(x, ycpu);
    j["unit_cpu_cost"] = {{"max_over_min", *std::max_element(ycpu.begin(), ycpu.end()) /
                                               *std::min_element(ycpu.begin(), ycpu.end())},
                          {"fit_r2", fc[2]},
                          {"fit_mape", fc[3]}};

    if (!s.units.empty() && !s.units[0].predicted.empty()) {
        json pred = json::array();
        for (size_t k = 0; k < opt.predict_strides.size(); ++k) {
            double ape = 0, max_ape = 0, cost = 0, unit_cost = 0;
            for (const Unit& u : s.units) {
                const double e = std::fabs(double(u.predicted[k] - u.active)) / double(u.active);
                ape += e;
                max_ape = std::max(max_ape, e);
                cost += u.predict_seconds[k];
                unit_cost += median(u.seconds);
            }
            pred.push_back({{"stride", opt.predict_strides[k]},
                            {"mape", ape / double(s.units.size())},
                            {"max_ape", max_ape},
                            {"cost_vs_unit", cost / unit_cost}});
        }
        j["predictor"] = pred;
    }
    return j;
}

json run(const Options& opt) {
    const std::string model_path = opt.model.empty() ? require_reference_model() : opt.model;
    const auto model = Model::load(model_path);
    const std::string text_path = opt.text_file.empty() ? demo_text_path() : opt.text_file;
    auto tokens = model->tokenizer().encode(read_text(text_path), false, false);
    if (static_cast<int64_t>(tokens.size()) < opt.context)
        fail("{} has {} tokens, fewer than the context of {}", text_path, tokens.size(),
             opt.context);
    tokens.resize(static_cast<size_t>(opt.context));
    const int n_layer = model->config().n_layer;
    const int64_t n_chunks = (opt.context + opt.chunk - 1) / opt.chunk;

    std::vector<Setting> settings;
    settings.push_back({SparseAttentionOptions{.block = opt.block}, {}, {}, {}});
    for (float tau : opt.taus)
        settings.push_back(
            {{.tau = tau, .block = opt.block, .min_similarity = opt.min_similarity}, {}, {}, {}});
    for (auto& s : settings) {
        kernels::validate(s.sparse);
        s.units.resize(static_cast<size_t>(n_chunks * n_layer));
        s.chunk_seconds.resize(static_cast<size_t>(n_chunks));
        s.chunk_attention.resize(static_cast<size_t>(n_chunks));
        s.chunk_cpu.resize(static_cast<size_t>(n_chunks));
    }

    Engine engine(*model, {.n_ctx = opt.context, .n_threads = opt.threads});
    engine.prefill(std::span(tokens).first(32), 0);  // warm-up: touch every weight page
    if (opt.paired) prefill_paired(engine, tokens, opt, settings);
    for (int rep = 0; rep < (opt.paired ? 0 : opt.repeats); ++rep) {
        for (size_t i = 0; i < settings.size(); ++i) {
            Setting& s = settings[(i + static_cast<size_t>(rep)) % settings.size()];
            engine.set_sparse(s.sparse);
            std::fprintf(stderr, "sparse_bench: repeat %d/%d, tau %.3f\n", rep + 1, opt.repeats,
                         s.sparse.tau);
            prefill_once(engine, tokens, opt, s, rep == 0);
        }
    }

    json out;
    out["model"] = model_path;
    out["text"] = text_path;
    out["threads"] = engine.pool().size();
    out["isa"] = kernels::active_isa();
    out["context"] = opt.context;
    out["chunk"] = opt.chunk;
    out["repeats"] = opt.repeats;
    out["paired"] = opt.paired;
    out["settings"] = json::array();
    for (const auto& s : settings) out["settings"].push_back(summarize(s, opt, n_layer));
    return out;
}

void print_table(const json& r) {
    const json& dense = r["settings"][0];
    std::printf("sparse_bench: %s, %s, %d threads, isa %s, %d repeats (medians)\n",
                r["model"].get<std::string>().c_str(), r["text"].get<std::string>().c_str(),
                r["threads"].get<int>(), r["isa"].get<std::string>().c_str(),
                r["repeats"].get<int>());
    for (size_t i = 1; i < r["settings"].size(); ++i) {
        const json& s = r["settings"][i];
        std::printf("\ntau %.3f (block %d): density %.3f of dense blocks\n", s["tau"].get<double>(),
                    s["block"].get<int>(), s["density"].get<double>());
        std::printf("  %6s %10s %10s %7s %10s %10s %7s %8s\n", "depth", "dense s", "sparse s",
                    "speedup", "attn dense", "attn sp.", "speedup", "density");
        for (size_t t = 0; t < s["chunks"].size(); ++t) {
            const json& c = s["chunks"][t];
            const json& d = dense["chunks"][t];
            std::printf("  %6lld %10.3f %10.3f %6.2fx %10.3f %10.3f %6.2fx %8.3f\n",
                        c["depth"].get<long long>(), d["prefill_seconds"].get<double>(),
                        c["prefill_seconds"].get<double>(),
                        d["prefill_seconds"].get<double>() / c["prefill_seconds"].get<double>(),
                        d["attention_seconds"].get<double>(), c["attention_seconds"].get<double>(),
                        d["attention_seconds"].get<double>() / c["attention_seconds"].get<double>(),
                        c["active_blocks"].get<double>() / c["causal_blocks"].get<double>());
        }
        const json& uc = s["unit_cost"];
        std::printf(
            "  unit cost max/min %.2f (dense %.2f); seconds = a + b * active blocks: R^2 %.3f, "
            "MAPE %.1f%%\n",
            uc["max_over_min"].get<double>(), dense["unit_cost"]["max_over_min"].get<double>(),
            uc["fit_r2"].get<double>(), 100 * uc["fit_mape"].get<double>());
        if (s.contains("predictor"))
            for (const auto& p : s["predictor"])
                std::printf(
                    "  predictor stride %d: MAPE %.1f%%, max %.1f%%, cost %.2f%% of units\n",
                    p["stride"].get<int>(), 100 * p["mape"].get<double>(),
                    100 * p["max_ape"].get<double>(), 100 * p["cost_vs_unit"].get<double>());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Sparse against dense prefill attention, unit by unit (one run)"};
    Options opt;
    app.add_option("--model", opt.model, "GGUF model (default: the reference model)");
    app.add_option("--text", opt.text_file, "Text to prefill (default: the demo text)")
        ->check(CLI::ExistingFile);
    app.add_option("--threads,-t", opt.threads, "Threads")->capture_default_str();
    app.add_option("--context", opt.context, "Context tokens")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--chunk", opt.chunk, "Tokens per chunk")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--taus", opt.taus, "Sparse settings to compare with dense")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--block", opt.block, "Block size")->capture_default_str();
    app.add_option("--min-similarity", opt.min_similarity, "Self-similarity threshold")
        ->capture_default_str();
    app.add_option("--repeats", opt.repeats, "Repeats (medians)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--predict-strides", opt.predict_strides, "Predictor sample strides")
        ->delimiter(',')
        ->capture_default_str();
    app.add_flag("--paired", opt.paired,
                 "Time every unit with every setting on the same dense state (robust to load)");
    app.add_flag("--json", opt.json_out, "Print JSON");
    CLI11_PARSE(app, argc, argv);
    try {
        const auto result = run(opt);
        if (opt.json_out)
            std::printf("%s\n", result.dump(1).c_str());
        else
            print_table(result);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sparse_bench: %s\n", e.what());
        return 1;
    }
}
