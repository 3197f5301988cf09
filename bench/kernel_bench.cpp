// kernel_bench: times SparKV's compute kernels on the shapes of SmolLM2-135M (hidden 576, 9 query
// heads, 3 KV heads, head_dim 64, FFN 1536, 30 layers, Q4_1 weights, Q8_0 49152 x 576 LM head),
// against the scalar reference implementation, and estimates whole-model prefill and decode
// speed from the per-layer sum.
//
//   kernel_bench [--threads N] [--runs N] [--json FILE] [--quick]
//
// Every number is a median of --runs timed runs after one warm-up. "cores" is the process CPU
// time divided by the wall time of those runs: below the thread count, the machine was busy with
// other work and the wall times are pessimistic. The reference runs on one
// thread and on a subset of the tokens (or queries); its time is scaled linearly to the full
// problem (the scalar code has no size-dependent effects worth modelling), and the subset is
// printed next to it.
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/fp16.h"
#include "common/thread_pool.h"
#include "common/timer.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/reference.h"

namespace {

using namespace sparkv;
using namespace sparkv::kernels;

constexpr int kLayers = 30, kHidden = 576, kHeads = 9, kKvHeads = 3, kHeadDim = 64, kFfn = 1536;
constexpr int kVocab = 49152, kChunk = 1024;

std::vector<float> random_floats(size_t n, uint32_t seed, float stddev) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

struct OwnedMatrix {
    std::vector<uint8_t> bytes;
    Matrix m;
};

OwnedMatrix make_matrix(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
    OwnedMatrix out;
    const size_t row_bytes = ggml_row_bytes(type, cols);
    out.bytes.resize(row_bytes * static_cast<size_t>(rows));
    std::vector<float> row;
    for (int64_t r = 0; r < rows; ++r) {
        row = random_floats(static_cast<size_t>(cols), seed + static_cast<uint32_t>(r), 0.05f);
        ref::quantize_row(type, row.data(), out.bytes.data() + r * row_bytes, cols);
    }
    out.m = Matrix{type, out.bytes.data(), rows, cols, row_bytes};
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double process_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Timing {
    double wall = 0;   // median wall time
    double cores = 0;  // process CPU time / wall time over the timed runs: < threads means the
                       // machine did not give us all our cores (other load)
};

Timing time_median(int runs, const std::function<void()>& fn) {
    fn();  // warm-up: page faults, caches, thread wake-up
    std::vector<double> times;
    const double cpu0 = process_cpu_seconds();
    double total = 0;
    for (int i = 0; i < runs; ++i) {
        const double t0 = now_seconds();
        fn();
        times.push_back(now_seconds() - t0);
        total += times.back();
    }
    return {median(times), (process_cpu_seconds() - cpu0) / total};
}

struct Result {
    std::string group, name;
    double seconds = 0;      // fast kernel, median, full problem
    double flops = 0;        // floating-point (or integer multiply-add x2) operations
    double cores = 0;        // CPU time / wall time of the fast kernel's runs
    double ref_seconds = 0;  // reference, scaled to the full problem (0 = not measured)
    std::string ref_subset;  // what the reference actually ran
};

class Bench {
  public:
    Bench(int threads, int runs, bool quick) : pool_(threads), runs_(runs), quick_(quick) {}

    std::vector<Result> results;

    void matmul_case(const std::string& name, const Matrix& w, int64_t tokens) {
        const auto x = random_floats(static_cast<size_t>(tokens * w.cols), 11, 1.0f);
        std::vector<float> y(static_cast<size_t>(tokens * w.rows));
        Result r;
        r.group = "matmul";
        r.name = fmt::format("{} {}x{} {} n={}", name, w.rows, w.cols,
                             ggml_type_name(static_cast<uint32_t>(w.type)), tokens);
        const Timing fast = time_median(
            runs_, [&] { matmul(w, x.data(), w.cols, tokens, y.data(), w.rows, pool_); });
        r.seconds = fast.wall;
        r.cores = fast.cores;
        r.flops = 2.0 * double(w.rows) * double(w.cols) * double(tokens);
        const int64_t ref_tokens = std::min<int64_t>(tokens, quick_ ? 2 : 8);
        const double ref = time_median(std::max(1, runs_ / 2), [&] {
                               ref::matmul(w, x.data(), w.cols, ref_tokens, y.data(), w.rows);
                           }).wall;
        r.ref_seconds = ref * double(tokens) / double(ref_tokens);
        r.ref_subset = fmt::format("{} tok", ref_tokens);
        results.push_back(r);
    }

    // 1024 (or n_q) queries at positions depth .. depth + n_q - 1 of a cache holding them.
    void attention_case(const std::string& name, int64_t depth, int64_t n_q) {
        const int64_t capacity = depth + n_q;
        AttentionShape s{kHeads, kKvHeads, kHeadDim, capacity, 1.0f / std::sqrt(float(kHeadDim))};
        const auto q = random_floats(static_cast<size_t>(n_q * kHeads * kHeadDim), 3, 1.0f);
        const auto kv = random_floats(static_cast<size_t>(kKvHeads * capacity * kHeadDim), 4, 1.0f);
        std::vector<uint16_t> k(kv.size()), v(kv.size());
        fp32_to_fp16_row(kv.data(), k.data(), static_cast<int64_t>(kv.size()));
        std::reverse_copy(k.begin(), k.end(), v.begin());
        std::vector<int32_t> pos(static_cast<size_t>(n_q));
        std::iota(pos.begin(), pos.end(), static_cast<int32_t>(depth));
        std::vector<float> out(q.size());
        const int64_t ld = kHeads * kHeadDim;
        Result r;
        r.group = "attention";
        r.name = name;
        const Timing fast = time_median(runs_, [&] {
            attention(s, q.data(), ld, n_q, pos.data(), k.data(), v.data(), out.data(), ld, pool_);
        });
        r.seconds = fast.wall;
        r.cores = fast.cores;
        double keys = 0;
        for (int32_t p : pos) keys += p + 1;
        r.flops = keys * kHeads * kHeadDim * 4.0;  // q.k and p.v, 2 flops each
        // Reference on a few queries spread over the chunk, scaled by their share of the keys.
        const int64_t sample = std::min<int64_t>(n_q, quick_ ? 2 : 4);
        double sample_keys = 0;
        std::vector<int32_t> sample_pos;
        for (int64_t i = 0; i < sample; ++i) {
            sample_pos.push_back(pos[static_cast<size_t>((i * 2 + 1) * n_q / (2 * sample))]);
            sample_keys += sample_pos.back() + 1;
        }
        const double ref = time_median(std::max(1, runs_ / 2), [&] {
                               ref::attention(s, q.data(), ld, sample, sample_pos.data(), k.data(),
                                              v.data(), out.data(), ld);
                           }).wall;
        r.ref_seconds = ref * keys / sample_keys;
        r.ref_subset = fmt::format("{} q", sample);
        results.push_back(r);
    }

    // The per-token element-wise work of one layer for `tokens` tokens.
    void elementwise_case(int64_t tokens) {
        const auto x = random_floats(static_cast<size_t>(tokens * kFfn), 5, 1.0f);
        const auto w = random_floats(kHidden, 6, 1.0f);
        std::vector<float> out(x.size()),
            qk(static_cast<size_t>(tokens * (kHeads + kKvHeads) * kHeadDim));
        std::vector<uint16_t> kv16(static_cast<size_t>(tokens * 2 * kKvHeads * kHeadDim));
        std::vector<int32_t> pos(static_cast<size_t>(tokens));
        std::iota(pos.begin(), pos.end(), 0);
        RopeParams rp;
        rp.n_rot = kHeadDim;
        rp.freq_base = 100000.0f;
        auto layer = [&](bool reference) {
            for (int64_t t = 0; t < tokens; ++t) {
                for (int i = 0; i < 2; ++i) {  // attention and FFN norms
                    if (reference) {
                        ref::rms_norm(x.data() + t * kHidden, w.data(), out.data() + t * kHidden,
                                      kHidden, 1e-5f);
                    } else {
                        rms_norm(x.data() + t * kHidden, w.data(), out.data() + t * kHidden,
                                 kHidden, 1e-5f);
                    }
                }
            }
            if (reference) {
                ref::rope(qk.data(), tokens, kHeads + kKvHeads, kHeadDim, pos.data(), rp);
                ref::swiglu(x.data(), x.data(), out.data(), tokens * kFfn);
                ref::fp32_to_fp16_row(out.data(), kv16.data(), static_cast<int64_t>(kv16.size()));
            } else {
                rope(qk.data(), tokens, kHeads + kKvHeads, kHeadDim, pos.data(), rp);
                swiglu(x.data(), x.data(), out.data(), tokens * kFfn);
                fp32_to_fp16_row(out.data(), kv16.data(), static_cast<int64_t>(kv16.size()));
            }
        };
        Result r;
        r.group = "elementwise";
        r.name = fmt::format("norms+rope+swiglu+kv fp16, n={}", tokens);
        const Timing fast = time_median(runs_, [&] { layer(false); });
        r.seconds = fast.wall;
        r.cores = fast.cores;
        r.ref_seconds = time_median(std::max(1, runs_ / 2), [&] { layer(true); }).wall;
        r.ref_subset = "all";
        results.push_back(r);
    }

    const Result& find(const std::string& name) const {
        for (const auto& r : results)
            if (r.name == name) return r;
        throw std::runtime_error("no result " + name);
    }

  private:
    ThreadPool pool_;
    int runs_;
    bool quick_;
};

void print_result(const Result& r) {
    const std::string gflops =
        r.flops > 0 ? fmt::format("{:8.1f}", r.flops / r.seconds * 1e-9) : "       -";
    const std::string ratio =
        r.ref_seconds > 0 ? fmt::format("{:8.1f}x", r.ref_seconds / r.seconds) : "";
    fmt::print("  {:<40} {:9.3f} ms {:4.2f} cores {} GFLOP/s   ref {:9.2f} ms ({:>5}) {}\n", r.name,
               r.seconds * 1e3, r.cores, gflops, r.ref_seconds * 1e3, r.ref_subset, ratio);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Times SparKV's kernels on SmolLM2-135M shapes against the scalar reference"};
    int threads = 2, runs = 7;
    std::string json_path;
    bool quick = false;
    app.add_option("--threads", threads, "threads (including the caller)")
        ->check(CLI::PositiveNumber);
    app.add_option("--runs", runs, "timed runs per measurement (median reported)")
        ->check(CLI::Range(1, 1000));
    app.add_option("--json", json_path, "also write the results as JSON to this file");
    app.add_flag("--quick", quick, "smaller reference subsets (for smoke tests)");
    CLI11_PARSE(app, argc, argv);

    fmt::print("kernel_bench: SmolLM2-135M shapes, ISA {}, {} thread(s), median of {} runs\n",
               active_isa(), threads, runs);
    fmt::print(
        "reference = scalar reference kernels, 1 thread, timed on the subset shown, scaled\n\n");
    Bench bench(threads, runs, quick);

    struct Proj {
        const char* name;
        int rows, cols;
    };
    const Proj projections[] = {{"attn_q", kHidden, kHidden},
                                {"attn_k", kKvHeads * kHeadDim, kHidden},
                                {"attn_v", kKvHeads * kHeadDim, kHidden},
                                {"attn_output", kHidden, kHidden},
                                {"ffn_gate", kFfn, kHidden},
                                {"ffn_up", kFfn, kHidden},
                                {"ffn_down", kHidden, kFfn}};
    std::vector<OwnedMatrix> weights;
    uint32_t seed = 100;
    for (const auto& p : projections)
        weights.push_back(make_matrix(GgmlType::Q4_1, p.rows, p.cols, seed += 1000));
    const OwnedMatrix lm_head = make_matrix(GgmlType::Q8_0, kVocab, kHidden, 7);

    fmt::print("matmul (Q4_1 projections, Q8_0 LM head)\n");
    for (int64_t tokens : {int64_t{1}, int64_t{kChunk}}) {
        for (size_t i = 0; i < weights.size(); ++i) {
            bench.matmul_case(projections[i].name, weights[i].m, tokens);
            print_result(bench.results.back());
        }
    }
    bench.matmul_case("output", lm_head.m, 1);
    print_result(bench.results.back());
    bench.matmul_case("output", lm_head.m, 64);
    print_result(bench.results.back());

    fmt::print("\nattention (9 query heads over 3 fp16 KV heads, head_dim 64)\n");
    const int64_t depths[] = {0, 3072, 7168};
    for (int64_t d : depths) {
        bench.attention_case(fmt::format("prefill 1024 q at depth {}", d), d, kChunk);
        print_result(bench.results.back());
    }
    for (int64_t d : {int64_t{1024}, int64_t{4096}, int64_t{8192}}) {
        bench.attention_case(fmt::format("decode 1 q at depth {}", d), d, 1);
        print_result(bench.results.back());
    }

    fmt::print("\nelement-wise (per layer)\n");
    bench.elementwise_case(kChunk);
    print_result(bench.results.back());
    bench.elementwise_case(1);
    print_result(bench.results.back());

    // Whole-model estimates: 30 x (7 matmuls + attention + element-wise) + the LM head once.
    auto sum_matmuls = [&](int64_t tokens, bool ref) {
        double s = 0;
        for (const auto& p : projections) {
            const auto& r =
                bench.find(fmt::format("{} {}x{} Q4_1 n={}", p.name, p.rows, p.cols, tokens));
            s += ref ? r.ref_seconds : r.seconds;
        }
        return s;
    };
    nlohmann::json estimates = nlohmann::json::array();
    fmt::print(
        "\nwhole-model estimate (30 layers x [7 matmuls + attention + element-wise] + LM head)\n");
    for (int64_t d : depths) {
        const auto& att = bench.find(fmt::format("prefill 1024 q at depth {}", d));
        const auto& ew = bench.find("norms+rope+swiglu+kv fp16, n=1024");
        const double mm = sum_matmuls(kChunk, false);
        const double layer = mm + att.seconds + ew.seconds;
        const double total = kLayers * layer + bench.find("output 49152x576 Q8_0 n=1").seconds;
        const double ref_layer = sum_matmuls(kChunk, true) + att.ref_seconds + ew.ref_seconds;
        fmt::print(
            "  prefill 1024 tokens at depth {:5}: layer {:7.1f} ms (matmul {:6.1f}, attention "
            "{:6.1f}, "
            "element-wise {:5.1f}) => {:6.1f} tok/s (reference {:5.2f} tok/s)\n",
            d, layer * 1e3, mm * 1e3, att.seconds * 1e3, ew.seconds * 1e3, kChunk / total,
            kChunk / (kLayers * ref_layer));
        estimates.push_back({{"kind", "prefill"},
                             {"depth", d},
                             {"layer_ms", layer * 1e3},
                             {"matmul_ms", mm * 1e3},
                             {"attention_ms", att.seconds * 1e3},
                             {"elementwise_ms", ew.seconds * 1e3},
                             {"tokens_per_s", kChunk / total},
                             {"reference_tokens_per_s", kChunk / (kLayers * ref_layer)}});
    }
    for (int64_t d : {int64_t{1024}, int64_t{4096}, int64_t{8192}}) {
        const auto& att = bench.find(fmt::format("decode 1 q at depth {}", d));
        const auto& ew = bench.find("norms+rope+swiglu+kv fp16, n=1");
        const double mm = sum_matmuls(1, false);
        const double layer = mm + att.seconds + ew.seconds;
        const auto& head = bench.find("output 49152x576 Q8_0 n=1");
        const double total = kLayers * layer + head.seconds;
        fmt::print(
            "  decode at depth {:5}: layer {:6.3f} ms (matmul {:6.3f}, attention {:6.3f}), LM head "
            "{:6.3f} ms "
            "=> {:6.1f} tok/s\n",
            d, layer * 1e3, mm * 1e3, att.seconds * 1e3, head.seconds * 1e3, 1.0 / total);
        estimates.push_back({{"kind", "decode"},
                             {"depth", d},
                             {"layer_ms", layer * 1e3},
                             {"matmul_ms", mm * 1e3},
                             {"attention_ms", att.seconds * 1e3},
                             {"lm_head_ms", head.seconds * 1e3},
                             {"tokens_per_s", 1.0 / total}});
    }
    fmt::print("(estimates leave out residual adds, embedding lookup and framework overhead)\n");

    if (!json_path.empty()) {
        nlohmann::json j;
        j["isa"] = active_isa();
        j["threads"] = threads;
        j["runs"] = runs;
        for (const auto& r : bench.results) {
            j["results"].push_back({{"group", r.group},
                                    {"name", r.name},
                                    {"ms", r.seconds * 1e3},
                                    {"gflops", r.flops > 0 ? r.flops / r.seconds * 1e-9 : 0.0},
                                    {"cpu_cores_used", r.cores},
                                    {"reference_ms", r.ref_seconds * 1e3},
                                    {"reference_subset", r.ref_subset},
                                    {"speedup_vs_reference", r.ref_seconds / r.seconds}});
        }
        j["estimates"] = estimates;
        std::ofstream(json_path) << j.dump(2) << "\n";
    }
    return 0;
}
