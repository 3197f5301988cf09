// link_pacing: does the emulated link deliver what the trace says, window by window?
//
// For every Mahimahi trace it starts a server paced by that trace, downloads a large object back
// to back over one connection, and compares the bytes received in each 10 s window of link time
// with the trace's capacity in that window (capacity is the baseline; the ratio is the result).
// Every probe runs in real time, all probes concurrently; --segments starts extra probes at
// evenly spaced points of each trace, and --full runs each trace over its whole length.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "net/server.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/fs_backend.h"
#include "testkit/link_probe.h"

namespace fs = std::filesystem;
using namespace sparkv;

namespace {

struct Options {
    std::string traces_dir = "/work/shared/traces";
    double seconds = 60;
    double window_s = 10;
    double scale = 1;
    int segments = 2;
    bool full = false;
    double object_mb = 32;
    double tolerance = 0.05;
};

struct Probe {
    std::shared_ptr<LinkTrace> trace;
    int64_t start_ms = 0;
    double seconds = 0;
    LinkConfig link;
    ArrivalLog log;
    std::string error;
};

// One large random object in a throwaway store: the body every probe downloads.
std::string make_object(const fs::path& dir, double megabytes,
                        std::shared_ptr<FilesystemBackend>& backend) {
    backend = std::make_shared<FilesystemBackend>(dir);
    ContextStore store(backend);
    const std::vector<int32_t> tokens{1, 2, 3};
    ModelInfo model{"link-pacing", "none", 1, 1, 1};
    ContextWriter writer(
        store, make_manifest(context_id("link-pacing", tokens, 16), model, 3, 16, {"raw"}));
    std::vector<uint8_t> bytes(static_cast<size_t>(megabytes * 1e6));
    std::mt19937_64 rng(7);
    for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        const uint64_t v = rng();
        std::memcpy(bytes.data() + i, &v, 8);
    }
    writer.put_tokens(tokens);
    writer.put_unit(0, 0, "raw", bytes);
    const Manifest& m = writer.commit();
    return fmt::format("/{}", unit_key(m, "raw", 0, 0));
}

double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    const auto index = static_cast<size_t>(std::lround(p * static_cast<double>(values.size() - 1)));
    return values[index];
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"Pacing accuracy of the emulated link on the Mahimahi traces"};
    app.add_option("--traces", opt.traces_dir, "Directory of *.down traces")->capture_default_str();
    app.add_option("--seconds", opt.seconds, "Real seconds per probe")->capture_default_str();
    app.add_option("--window", opt.window_s, "Window length in seconds")->capture_default_str();
    app.add_option("--scale", opt.scale, "Trace capacity scale")->capture_default_str();
    app.add_option("--segments", opt.segments, "Probes per trace, at evenly spaced trace offsets")
        ->capture_default_str();
    app.add_flag("--full", opt.full, "One probe per trace over its whole length (slow)");
    app.add_option("--object-mb", opt.object_mb, "Size of the downloaded object")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        std::vector<std::shared_ptr<LinkTrace>> traces;
        for (const auto& entry : fs::directory_iterator(opt.traces_dir))
            if (entry.path().extension() == ".down")
                traces.push_back(
                    std::make_shared<LinkTrace>(LinkTrace::load(entry.path().string())));
        std::sort(traces.begin(), traces.end(),
                  [](const auto& a, const auto& b) { return a->name() < b->name(); });
        if (traces.empty()) fail("no *.down traces in {}", opt.traces_dir);

        const fs::path dir =
            fs::temp_directory_path() / fmt::format("sparkv-link-pacing-{}", getpid());
        std::shared_ptr<FilesystemBackend> backend;
        const std::string path = make_object(dir, opt.object_mb, backend);

        std::vector<Probe> probes;
        for (const auto& trace : traces) {
            const int segments = opt.full ? 1 : std::max(1, opt.segments);
            for (int s = 0; s < segments; ++s) {
                Probe p;
                p.trace = trace;
                p.start_ms = static_cast<int64_t>(trace->period_ms()) * s / segments;
                // A full probe covers the trace, plus the warm-up skipped before the first window.
                p.seconds = opt.full ? trace->period_ms() / 1000.0 + 2 : opt.seconds;
                p.link.trace = trace;
                p.link.trace_scale = opt.scale;
                p.link.trace_start_ms = p.start_ms;
                probes.push_back(std::move(p));
            }
        }
        std::printf("link_pacing: %zu probes (%zu traces, x%.2f), %.0f-s windows, object %.0f MB\n",
                    probes.size(), traces.size(), opt.scale, opt.window_s, opt.object_mb);
        std::fflush(stdout);

        std::vector<std::unique_ptr<UnitServer>> servers;
        std::vector<std::thread> threads;
        for (auto& p : probes) {
            ServerConfig config;
            config.link = p.link;
            config.threads = 4;
            servers.push_back(std::make_unique<UnitServer>(backend, config));
            const int port = servers.back()->start();
            threads.emplace_back([&p, port, &path] {
                try {
                    p.log = probe_link("127.0.0.1", port, path, p.seconds);
                } catch (const std::exception& e) {
                    p.error = e.what();
                }
            });
        }
        for (auto& t : threads) t.join();
        for (auto& s : servers) s->stop();
        fs::remove_all(dir);

        std::printf("%-28s %8s %7s %12s %12s %9s %9s %9s %7s\n", "trace", "start_s", "windows",
                    "capacity_MB", "delivered_MB", "ratio", "med|dev|", "max|dev|", "in_5%");
        int all_windows = 0, all_within = 0;
        double all_worst = 0;
        for (const auto& p : probes) {
            if (!p.error.empty()) {
                std::printf("%-28s probe failed: %s\n", p.trace->name().c_str(), p.error.c_str());
                return 1;
            }
            std::vector<double> deviations;
            double capacity_total = 0, delivered_total = 0;
            int within = 0;
            // Windows start 1 s into the link, after the connection's one-time start-up.
            for (double a = p.log.first_body_s + 1.0; a + opt.window_s <= p.log.end_s - 0.05;
                 a += opt.window_s) {
                const double capacity = p.link.capacity_bytes(a, a + opt.window_s);
                const auto delivered = static_cast<double>(p.log.bytes_in(a, a + opt.window_s));
                if (capacity <= 0) continue;
                const double deviation = std::abs(delivered / capacity - 1.0);
                deviations.push_back(deviation);
                within += deviation <= opt.tolerance;
                capacity_total += capacity;
                delivered_total += delivered;
            }
            if (deviations.empty()) {
                std::printf("%-28s no complete window (run longer)\n", p.trace->name().c_str());
                continue;
            }
            const double worst = *std::max_element(deviations.begin(), deviations.end());
            std::printf("%-28s %8.1f %7zu %12.2f %12.2f %9.4f %8.2f%% %8.2f%% %4d/%zu\n",
                        p.trace->name().c_str(), p.start_ms / 1000.0, deviations.size(),
                        capacity_total / 1e6, delivered_total / 1e6,
                        delivered_total / capacity_total, percentile(deviations, 0.5) * 100,
                        worst * 100, within, deviations.size());
            all_windows += static_cast<int>(deviations.size());
            all_within += within;
            all_worst = std::max(all_worst, worst);
        }
        std::printf(
            "all: %d/%d windows within %.0f%% of the trace capacity, worst deviation %.2f%%\n",
            all_within, all_windows, opt.tolerance * 100, all_worst * 100);
        return all_within == all_windows ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "link_pacing: %s\n", e.what());
        return 1;
    }
}
