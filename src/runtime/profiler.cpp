#include "runtime/profiler.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "codec/codec.h"
#include "codec/profile.h"
#include "common/error.h"
#include "common/fp16.h"
#include "common/paths.h"
#include "common/timer.h"
#include "engine/engine.h"
#include "engine/sampling.h"
#include "runtime/cpu_monitor.h"
#include "store/content_id.h"

namespace sparkv::runtime {

namespace {

std::string cpu_name() {
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);)
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) return line.substr(colon + 2);
        }
    return "unknown CPU";
}

std::string iso_now() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Random fp16 KV in every layer for positions [0, n): attention cost does not depend on values.
void fill_cache(KvCache& cache, int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> mantissa(0, 1023);
    for (int l = 0; l < cache.n_layer(); ++l) {
        const UnitWriteView view = cache.unit_view(l, 0, n);
        for (int h = 0; h < cache.n_kv_head(); ++h)
            for (int64_t i = 0; i < n * cache.head_dim(); ++i) {
                // Values in [-0.5, 0.5): sign, exponent of 0.25..0.5, random mantissa.
                const auto bits =
                    static_cast<uint16_t>(((rng() & 1) << 15) | (13 << 10) | mantissa(rng));
                view.k[static_cast<size_t>(h) * view.head_stride + static_cast<size_t>(i)] = bits;
                view.v[static_cast<size_t>(h) * view.head_stride + static_cast<size_t>(i)] = bits;
            }
        cache.commit(view);
    }
}

HiddenState random_hidden(const Model& model, int64_t pos0, int64_t n, int layer,
                          std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    HiddenState h;
    h.pos0 = pos0;
    h.n_tokens = n;
    h.layer = layer;
    h.data.resize(static_cast<size_t>(n) * model.config().n_embd);
    for (auto& x : h.data) x = normal(rng);
    return h;
}

// Decode seconds per byte of each level on one core, from units of random KV.
std::map<std::string, double> measure_decode(const Model& model, int32_t chunk, std::mt19937& rng) {
    const auto& c = model.config();
    const codec::UnitShape shape{static_cast<uint32_t>(chunk), static_cast<uint16_t>(c.n_kv_head),
                                 static_cast<uint16_t>(c.head_dim)};
    std::vector<uint16_t> k(shape.elements()), v(shape.elements()), ko(k.size()), vo(k.size());
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t i = 0; i < k.size(); ++i) {
        k[i] = fp32_to_fp16(normal(rng));
        v[i] = fp32_to_fp16(0.3f * normal(rng));
    }
    std::map<std::string, double> out;
    codec::Decoder decoder;
    // The fixed ladder, and the calibrated levels of the model's codec profile when it has one
    // (with its share of salient rows, spread evenly: their place does not change the speed).
    const std::optional<codec::CodecProfile> profile =
        codec::find_model_profile(model.fingerprint());
    std::vector<codec::Level> levels;
    for (const auto& info : codec::all_levels()) levels.push_back(info.level);
    if (profile)
        for (const auto& t : profile->levels) levels.push_back(t.level);
    for (const codec::Level level : levels) {
        const codec::UnitKey key{model.fingerprint(), 1, static_cast<uint32_t>(c.n_layer / 2)};
        codec::EncodeOptions options(level, static_cast<uint32_t>(c.n_layer));
        std::vector<uint32_t> salient;
        if (codec::level_info(level).calibrated()) {
            options.profile = &*profile;
            options.salient_bits = profile->find(level)->salient_bits;
            salient = profile->evenly_spread_salient_rows(level, shape.n_tokens);
            options.salient_rows = salient;
        }
        const auto bytes = codec::encode_unit(key, shape, codec::contiguous(k.data(), shape),
                                              codec::contiguous(v.data(), shape), options);
        std::vector<double> times;
        for (int r = 0; r < 7; ++r) {
            const double t0 = now_seconds();
            decoder.decode(bytes, key, shape, codec::contiguous(ko.data(), shape),
                           codec::contiguous(vo.data(), shape));
            times.push_back(now_seconds() - t0);
        }
        out[std::string(codec::level_name(level))] =
            median(times) / static_cast<double>(bytes.size());
    }
    return out;
}

}  // namespace

std::string device_profile_path(const Model& model, int threads) {
    return fmt::format("{}/profiles/{}-{}t.json", cache_dir(), hex64(model.fingerprint()), threads);
}

plan::DeviceProfile measure_device_profile(const Model& model, const ProfileOptions& options) {
    const double t_start = now_seconds();
    const auto& c = model.config();
    const int threads = options.threads > 0 ? options.threads : ThreadPool::default_threads();
    if (options.samples < 20) fail("profile: at least 20 samples are needed");
    const int64_t max_span = std::min<int64_t>(options.max_span, c.n_ctx_train);
    const int32_t chunk = static_cast<int32_t>(std::min<int64_t>(options.chunk_tokens, max_span));
    Engine engine(
        model,
        {.n_ctx = max_span + chunk, .n_threads = threads, .pool_spin_us = options.pool_spin_us});
    std::mt19937 rng(static_cast<uint32_t>(options.seed));
    fill_cache(engine.cache(), max_span + chunk, rng);

    plan::DeviceProfile profile;
    profile.model_fingerprint = hex64(model.fingerprint());
    profile.model_name = c.name;
    profile.cpu = cpu_name();
    profile.n_cpus = ThreadPool::default_threads();
    profile.threads = threads;
    profile.created = iso_now();

    // Phases of background load; samples split across them.
    const std::vector<double> duties =
        options.contention ? std::vector<double>{0.0, 0.5, 1.0} : std::vector<double>{0.0};
    const int extra = 3 * 8 + 9;  // projection, finish and slowdown measurements
    const int total = options.samples + extra;
    int done = 0;
    const auto progress = [&] {
        if (options.on_progress) options.on_progress(done, total, now_seconds() - t_start);
    };
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (size_t phase = 0; phase < duties.size(); ++phase) {
        std::optional<BackgroundLoad> hog;
        if (duties[phase] > 0) hog.emplace(duties[phase]);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let the hog start
        CpuMonitor monitor;
        const int n_phase =
            options.samples / static_cast<int>(duties.size()) +
            (phase + 1 == duties.size() ? options.samples % static_cast<int>(duties.size()) : 0);
        std::vector<plan::ComputeSample> phase_samples;
        for (int s = 0; s < n_phase; ++s) {
            const int64_t n =
                unit(rng) < 0.5
                    ? chunk
                    : static_cast<int64_t>(std::exp(
                          std::log(16.0) + unit(rng) * (std::log(chunk) - std::log(16.0))));
            const auto pos0 =
                static_cast<int64_t>(unit(rng) * static_cast<double>(max_span - n + 1));
            const int layer =
                static_cast<int>(rng() % static_cast<uint32_t>(std::max(1, c.n_layer - 1)));
            HiddenState h = random_hidden(model, pos0, n, layer, rng);
            const double t0 = now_seconds();
            engine.run_layer(h);
            const double seconds = now_seconds() - t0;
            plan::ComputeSample sample;
            sample.features = {static_cast<double>(pos0 + n), static_cast<double>(n),
                               plan::dense_active_blocks(pos0, n), 1.0};
            sample.seconds = seconds;
            phase_samples.push_back(sample);
            ++done;
            progress();
        }
        const double availability = monitor.sample(0.0);
        for (auto& s : phase_samples) {
            s.features.availability = availability;
            profile.samples.push_back(s);
        }
    }

    // The last layer: K/V projection only, per token.
    std::vector<double> per_token;
    for (int r = 0; r < 8; ++r, ++done) {
        HiddenState h = random_hidden(model, 0, chunk, c.n_layer - 1, rng);
        const double t0 = now_seconds();
        engine.project_kv(h);
        per_token.push_back((now_seconds() - t0) / chunk);
        progress();
    }
    profile.project_s_per_token = median(per_token);

    // Final norm + LM head + sampling for one token.
    std::vector<double> finish;
    for (int r = 0; r < 8; ++r, ++done) {
        HiddenState h = random_hidden(model, max_span, 1, c.n_layer, rng);
        const double t0 = now_seconds();
        const auto logits = engine.last_logits(h);
        (void)argmax(logits);
        finish.push_back(now_seconds() - t0);
        progress();
    }
    profile.finish_s = median(finish);

    profile.decode_s_per_byte = measure_decode(model, chunk, rng);
    done += 8;
    progress();

    // Decoder beside the compute lane: compute-lane seconds lost per second of decoding.
    {
        std::vector<double> alone, beside;
        for (int r = 0; r < 4; ++r) {
            HiddenState h = random_hidden(model, max_span / 2, chunk, c.n_layer / 2, rng);
            HiddenState h2 = h;
            double t0 = now_seconds();
            engine.run_layer(h);
            alone.push_back(now_seconds() - t0);
            std::atomic<bool> running{true};
            std::thread decoder([&] {
                std::mt19937 local(7);
                while (running) measure_decode(model, chunk, local);
            });
            t0 = now_seconds();
            engine.run_layer(h2);
            beside.push_back(now_seconds() - t0);
            running = false;
            decoder.join();
        }
        const double a = median(alone), b = median(beside);
        profile.decode_slowdown = std::clamp((b - a) / b, 0.0, 1.0);
        ++done;
        progress();
    }

    profile.compute =
        plan::ComputeCostModel::fit(profile.samples, options.seed, options.mlp_epochs);
    profile.profiling_seconds = now_seconds() - t_start;
    return profile;
}

plan::DeviceProfile load_or_measure_profile(
    const Model& model, int threads,
    const std::function<void(int done, int total, double seconds)>& on_progress) {
    const int n = threads > 0 ? threads : ThreadPool::default_threads();
    const std::string path = device_profile_path(model, n);
    if (std::filesystem::exists(path)) {
        try {
            auto profile = plan::DeviceProfile::load(path);
            if (profile.model_fingerprint == hex64(model.fingerprint()) && profile.threads == n)
                return profile;
        } catch (const Error& e) {
            std::fprintf(stderr, "sparkv: ignoring the device profile %s: %s\n", path.c_str(),
                         e.what());
        }
    }
    std::fprintf(stderr,
                 "sparkv: no device profile for this model and %d threads yet; measuring a quick "
                 "one (once; `sparkv profile --full` measures a thorough one)\n",
                 n);
    ProfileOptions options;
    options.threads = n;
    options.max_span = std::min<int64_t>(8192, model.config().n_ctx_train);
    options.on_progress = on_progress;
    auto profile = measure_device_profile(model, options);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    profile.save(path);
    return profile;
}

}  // namespace sparkv::runtime
