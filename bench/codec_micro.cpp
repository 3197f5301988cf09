// codec_micro: size, speed and error of every codec level on one thread.
//
// Data: by default synthetic KV-like units (see make_synthetic); with --kv FILE, real KV: raw
// fp16 units back to back, each K then V in the [n_kv_heads][n_tokens][head_dim] layout (as
// written by bench/codec_kv_dump.mjs). For each level it prints bytes per token (per layer, K+V
// of all heads), the ratio to raw fp16, encode MB/s (fp16 input), decode MB/s of compressed input
// and of fp16 output, and the relative RMSE of K and V; times are medians of --runs runs of the
// thread's CPU time (so other processes on a shared machine do not distort them; --wall uses the
// wall clock instead). The
// baselines measured in the same run are memcpy of the fp16 unit and byte-shuffle + zstd -1 (the
// generic lossless alternative to the fp16 level).
#include <time.h>
#include <zstd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "codec/codec.h"
#include "codec/profile.h"
#include "common/error.h"
#include "common/fp16.h"
#include "common/timer.h"

namespace {

using namespace sparkv;
using namespace sparkv::codec;

struct Unit {
    UnitKey key;
    std::vector<uint16_t> k, v;
};

// Synthetic KV with the statistics that matter to the codec, one unit per layer:
// * keys: per (head, channel) a mean offset ~ N(0, 0.5) and a spread of 1, except 4 outlier
//   channels per head whose spread is 10x; each element = offset + spread * N(0, 1);
// * values: N(0, s_t) with a per-token scale s_t log-normal around 1 (sigma 0.3);
// * magnitudes grow with depth (x (1 + layer / 10)), as they do in real models.
std::vector<Unit> make_synthetic(const UnitShape& shape, uint32_t n_layers, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<Unit> units;
    const size_t per_head = size_t{shape.n_tokens} * shape.head_dim;
    for (uint32_t l = 0; l < n_layers; ++l) {
        const float depth = 1.0f + static_cast<float>(l) / 10.0f;
        Unit u{{0x5eed, 0, l},
               std::vector<uint16_t>(per_head * shape.n_kv_heads),
               std::vector<uint16_t>(per_head * shape.n_kv_heads)};
        for (size_t h = 0; h < shape.n_kv_heads; ++h) {
            std::vector<float> offset(shape.head_dim), spread(shape.head_dim, depth);
            for (auto& o : offset) o = 0.5f * depth * normal(rng);
            for (int i = 0; i < 4 && i < shape.head_dim; ++i)
                spread[rng() % shape.head_dim] *= 10.0f;
            for (size_t t = 0; t < shape.n_tokens; ++t) {
                const float token_scale = 0.5f * depth * std::exp(0.3f * normal(rng));
                for (size_t d = 0; d < shape.head_dim; ++d) {
                    const size_t i = h * per_head + t * shape.head_dim + d;
                    u.k[i] = fp32_to_fp16(offset[d] + spread[d] * normal(rng));
                    u.v[i] = fp32_to_fp16(token_scale * normal(rng));
                }
            }
        }
        units.push_back(std::move(u));
    }
    return units;
}

// Units in the file are in (chunk, layer) order, n_layers per chunk, all of the same shape.
std::vector<Unit> load_units(const std::string& path, const UnitShape& shape, uint32_t n_layers,
                             size_t max_units) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open {}", path);
    const size_t per = shape.elements();
    std::vector<Unit> units;
    for (uint32_t i = 0; i < max_units; ++i) {
        Unit u{{0xfeed, i / n_layers, i % n_layers},
               std::vector<uint16_t>(per),
               std::vector<uint16_t>(per)};
        if (!in.read(reinterpret_cast<char*>(u.k.data()), static_cast<std::streamsize>(2 * per)))
            break;
        if (!in.read(reinterpret_cast<char*>(u.v.data()), static_cast<std::streamsize>(2 * per))) {
            fail("{}: ends inside a unit", path);
        }
        units.push_back(std::move(u));
    }
    if (units.empty()) fail("{}: holds no complete unit of {} bytes", path, 4 * per);
    return units;
}

// Seconds of CPU time of this thread, or of the wall clock.
struct Clock {
    bool wall = false;
    double now() const {
        if (wall) return now_seconds();
        timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
    }
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct ErrorSum {
    double err = 0, ref = 0;
    void add(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
        for (size_t i = 0; i < a.size(); ++i) {
            const double x = fp16_to_fp32(a[i]), y = fp16_to_fp32(b[i]);
            err += (x - y) * (x - y);
            ref += x * x;
        }
    }
    double relative() const { return ref > 0 ? std::sqrt(err / ref) : 0.0; }
};

struct Row {
    std::string name, bits;
    double bytes = 0, encode_s = 0, decode_s = 0, rmse_k = 0, rmse_v = 0;
};

// Times encoding and decoding of all units; if `decoded` is open, writes the decoded units to it
// in the input layout (so a fidelity harness can evaluate exactly what the codec produces).
Row bench_level(const std::vector<Unit>& units, const UnitShape& shape,
                const EncodeOptions& options, Kernels kernels, int runs, const Clock& clock,
                std::ofstream* decoded) {
    Row row{std::string(level_name(options.level)),
            format_layer_bits(options.table(units.back().key.layer + 1))};
    std::vector<std::vector<uint8_t>> encoded(units.size());
    std::vector<double> enc_times, dec_times;
    Decoder decoder(kernels);
    std::vector<uint16_t> k_out(shape.elements()), v_out(shape.elements());
    for (int r = 0; r < runs; ++r) {
        double t0 = clock.now();
        for (size_t i = 0; i < units.size(); ++i) {
            encoded[i] = encode_unit(units[i].key, shape, contiguous(units[i].k.data(), shape),
                                     contiguous(units[i].v.data(), shape), options);
        }
        enc_times.push_back(clock.now() - t0);
        t0 = clock.now();
        for (size_t i = 0; i < units.size(); ++i) {
            decoder.decode(encoded[i], units[i].key, shape, contiguous(k_out.data(), shape),
                           contiguous(v_out.data(), shape));
        }
        dec_times.push_back(clock.now() - t0);
    }
    ErrorSum ek, ev;
    for (size_t i = 0; i < units.size(); ++i) {
        row.bytes += static_cast<double>(encoded[i].size());
        decoder.decode(encoded[i], units[i].key, shape, contiguous(k_out.data(), shape),
                       contiguous(v_out.data(), shape));
        ek.add(units[i].k, k_out);
        ev.add(units[i].v, v_out);
        if (decoded) {
            decoded->write(reinterpret_cast<const char*>(k_out.data()),
                           static_cast<std::streamsize>(2 * k_out.size()));
            decoded->write(reinterpret_cast<const char*>(v_out.data()),
                           static_cast<std::streamsize>(2 * v_out.size()));
        }
    }
    row.encode_s = median(enc_times);
    row.decode_s = median(dec_times);
    row.rmse_k = ek.relative();
    row.rmse_v = ev.relative();
    return row;
}

// Baselines: memcpy of the fp16 unit, and byte shuffle + zstd level 1 (the generic lossless path).
Row bench_memcpy(const std::vector<Unit>& units, const UnitShape& shape, int runs,
                 const Clock& clock) {
    Row row{"memcpy", ""};
    std::vector<uint16_t> out(2 * shape.elements());
    std::vector<double> times;
    for (int r = 0; r < runs; ++r) {
        const double t0 = clock.now();
        for (const Unit& u : units) {
            std::memcpy(out.data(), u.k.data(), 2 * u.k.size());
            std::memcpy(out.data() + u.k.size(), u.v.data(), 2 * u.v.size());
        }
        times.push_back(clock.now() - t0);
    }
    row.bytes = 4.0 * static_cast<double>(shape.elements() * units.size());
    row.encode_s = row.decode_s = median(times);
    return row;
}

Row bench_zstd(const std::vector<Unit>& units, const UnitShape& shape, int runs,
               const Clock& clock) {
    Row row{"shuffle+zstd1", ""};
    const size_t n = 2 * shape.elements();  // halves per unit
    std::vector<uint8_t> shuffled(2 * n), restored(2 * n);
    std::vector<std::vector<uint8_t>> packed(units.size());
    std::vector<uint16_t> out(n);
    std::vector<double> enc_times, dec_times;
    for (int r = 0; r < runs; ++r) {
        double t0 = clock.now();
        for (size_t i = 0; i < units.size(); ++i) {
            for (size_t j = 0; j < n; ++j) {
                const uint16_t x = j < n / 2 ? units[i].k[j] : units[i].v[j - n / 2];
                shuffled[j] = static_cast<uint8_t>(x);
                shuffled[n + j] = static_cast<uint8_t>(x >> 8);
            }
            packed[i].resize(ZSTD_compressBound(2 * n));
            packed[i].resize(
                ZSTD_compress(packed[i].data(), packed[i].size(), shuffled.data(), 2 * n, 1));
        }
        enc_times.push_back(clock.now() - t0);
        t0 = clock.now();
        for (size_t i = 0; i < units.size(); ++i) {
            ZSTD_decompress(restored.data(), 2 * n, packed[i].data(), packed[i].size());
            for (size_t j = 0; j < n; ++j)
                out[j] = static_cast<uint16_t>(restored[j] | restored[n + j] << 8);
        }
        dec_times.push_back(clock.now() - t0);
    }
    for (const auto& p : packed) row.bytes += static_cast<double>(p.size());
    row.encode_s = median(enc_times);
    row.decode_s = median(dec_times);
    return row;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"codec_micro: size, speed and error of every KV codec level (1 thread)"};
    std::string kv_path, levels_arg, layer_bits_arg, decoded_path;
    uint32_t tokens = 1024, heads = 3, head_dim = 64, layers = 30;
    size_t max_units = 120;
    int runs = 7;
    bool json = false, scalar = false, uniform = false;
    Clock clock;
    app.add_option("--kv", kv_path, "real KV: raw fp16 units (K then V, [head][token][dim])");
    app.add_option("--tokens", tokens, "tokens per unit")->capture_default_str();
    app.add_option("--heads", heads, "KV heads")->capture_default_str();
    app.add_option("--head-dim", head_dim, "head dimension")->capture_default_str();
    app.add_option("--layers", layers, "layers per chunk (synthetic: one unit per layer)")
        ->capture_default_str();
    app.add_option("--max-units", max_units, "units read from --kv")->capture_default_str();
    app.add_option("--runs", runs, "timed runs (median reported)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
    app.add_option("--levels", levels_arg, "comma-separated levels (default: all)");
    app.add_option("--layer-bits", layer_bits_arg, "per-layer bits for lossy levels, e.g. 0-3:6/6");
    app.add_option("--decoded-out", decoded_path,
                   "write the units as decoded by the first level here");
    std::string profile_path;
    app.add_option("--profile", profile_path,
                   "codec profile for the calibrated levels (c4..c8; its tables are applied to "
                   "these units whatever their fingerprint)");
    app.add_flag("--json", json, "print JSON instead of a table");
    app.add_flag("--scalar", scalar, "use the scalar kernels");
    app.add_flag("--uniform", uniform, "uniform bit widths instead of the levels' layer profiles");
    app.add_flag("--wall", clock.wall, "time with the wall clock instead of thread CPU time");
    CLI11_PARSE(app, argc, argv);

    try {
        const UnitShape shape{tokens, static_cast<uint16_t>(heads),
                              static_cast<uint16_t>(head_dim)};
        const std::vector<Unit> units = kv_path.empty()
                                            ? make_synthetic(shape, layers, 42)
                                            : load_units(kv_path, shape, layers, max_units);
        std::vector<Level> levels;
        if (levels_arg.empty()) {
            for (const LevelInfo& info : all_levels()) levels.push_back(info.level);
        } else {
            for (size_t at = 0; at <= levels_arg.size();) {
                const size_t comma = std::min(levels_arg.find(',', at), levels_arg.size());
                levels.push_back(
                    level_from_name(std::string_view(levels_arg).substr(at, comma - at)));
                at = comma + 1;
            }
        }
        std::vector<Row> rows{bench_memcpy(units, shape, runs, clock),
                              bench_zstd(units, shape, runs, clock)};
        std::ofstream decoded;
        if (!decoded_path.empty()) {
            decoded.open(decoded_path, std::ios::binary);
            if (!decoded) fail("cannot write {}", decoded_path);
        }
        std::optional<CodecProfile> profile;
        if (!profile_path.empty()) {
            profile = load_profile(profile_path);
            profile->model_fingerprint = units.front().key.fingerprint;
        }
        std::vector<uint32_t> salient;  // a level with salient tokens: evenly spread rows
        for (Level level : levels) {
            EncodeOptions options(level, uniform ? 0 : layers);
            if (profile) options.profile = &*profile;
            if (const CodecProfile::LevelTable* table = profile ? profile->find(level) : nullptr) {
                salient = profile->evenly_spread_salient_rows(level, tokens);
                options.salient_rows = salient;
                options.salient_bits = table->salient_bits;
            }
            if (!layer_bits_arg.empty())
                options.layer_bits = parse_layer_bits(layer_bits_arg, options.table(layers));
            rows.push_back(bench_level(
                units, shape, options, scalar ? Kernels::scalar : Kernels::automatic, runs, clock,
                decoded.is_open() && level == levels.front() ? &decoded : nullptr));
        }

        const double raw = 4.0 * static_cast<double>(shape.elements() * units.size());
        const double total_tokens = static_cast<double>(tokens) * static_cast<double>(units.size());
        const char* data = kv_path.empty() ? "synthetic" : kv_path.c_str();
        nlohmann::json out = {
            {"data", data},
            {"units", units.size()},
            {"shape", {{"tokens", tokens}, {"kv_heads", heads}, {"head_dim", head_dim}}},
            {"runs", runs},
            {"clock", clock.wall ? "wall" : "thread cpu time"},
            {"kernels", scalar ? "scalar" : (Decoder().uses_simd() ? "avx2" : "scalar")},
            {"levels", nlohmann::json::array()}};
        for (const Row& r : rows) {
            out["levels"].push_back({{"level", r.name},
                                     {"bytes_per_token", r.bytes / total_tokens},
                                     {"ratio_vs_fp16", raw / r.bytes},
                                     {"encode_mb_s", raw / r.encode_s / 1e6},
                                     {"decode_in_mb_s", r.bytes / r.decode_s / 1e6},
                                     {"decode_out_mb_s", raw / r.decode_s / 1e6},
                                     {"rel_rmse_k", r.rmse_k},
                                     {"rel_rmse_v", r.rmse_v},
                                     {"layer_bits", r.bits}});
        }
        if (json) {
            std::cout << out.dump(2) << "\n";
            return 0;
        }
        std::cout << fmt::format(
            "data: {} ({} units of {} tokens x {} KV heads x {}), kernels: {}, "
            "median of {} runs ({}), 1 thread\n",
            data, units.size(), tokens, heads, head_dim, out["kernels"].get<std::string>(), runs,
            out["clock"].get<std::string>());
        std::cout << fmt::format("{:<14} {:>10} {:>9} {:>10} {:>11} {:>11} {:>9} {:>9}\n", "level",
                                 "B/token", "x fp16", "enc MB/s", "dec in MB/s", "dec out MB/s",
                                 "rRMSE K", "rRMSE V");
        for (const auto& r : out["levels"]) {
            std::cout << fmt::format(
                "{:<14} {:>10.1f} {:>9.2f} {:>10.0f} {:>11.0f} {:>11.0f} {:>9.5f} {:>9.5f}\n",
                r["level"].get<std::string>(), r["bytes_per_token"].get<double>(),
                r["ratio_vs_fp16"].get<double>(), r["encode_mb_s"].get<double>(),
                r["decode_in_mb_s"].get<double>(), r["decode_out_mb_s"].get<double>(),
                r["rel_rmse_k"].get<double>(), r["rel_rmse_v"].get<double>());
        }
        for (const auto& r : out["levels"]) {
            const std::string bits = r["layer_bits"].get<std::string>();
            if (!bits.empty())
                std::cout << fmt::format("{} bits (layers:K/V): {}\n",
                                         r["level"].get<std::string>(), bits);
        }
        std::cout
            << "B/token: bytes per token per layer (K+V, all KV heads); x fp16: size ratio to raw "
               "fp16;\n"
               "enc MB/s: fp16 input; dec in/out: compressed input / fp16 output per second.\n";
    } catch (const Error& e) {
        std::cerr << "codec_micro: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
