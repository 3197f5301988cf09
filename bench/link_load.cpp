// link_load: many devices streaming whole contexts from one server at once.
//
// Builds (or reuses) a synthetic store of reference-model-shaped contexts: 8k tokens = 8 chunks x
// 30 layers, units of ~175 KB of random bytes (an fp16 unit of SmolLM2-135M is 1024 tokens x 3 KV
// heads x 64 dims x K,V x 2 bytes = 786,432 bytes; ~4.5x compression gives ~175 KB). The server
// runs in a forked child so its peak RSS (VmHWM) is its own. A single client streaming one
// context alone is the baseline; then N clients stream a full context each, concurrently, every
// unit verified against the manifest. Errors must be 0.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "net/server.h"
#include "net/unit_client.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/fs_backend.h"

namespace fs = std::filesystem;
using namespace sparkv;

namespace {

struct Options {
    int clients = 32;
    int contexts = 8;
    int chunks = 8;
    int layers = 30;
    int chunk_tokens = 1024;
    size_t unit_bytes = 174'763;  // 786,432 / 4.5
    std::string store_dir;
    int threads = 64;
    double rate_mbps = 0;
    double rtt_ms = 0;
};

std::vector<std::string> build_store(const Options& opt,
                                     const std::shared_ptr<FilesystemBackend>& backend) {
    ContextStore store(backend);
    std::vector<std::string> ids;
    for (int c = 0; c < opt.contexts; ++c) {
        std::vector<int32_t> tokens(static_cast<size_t>(opt.chunks) * opt.chunk_tokens);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 31 + c) % 49152);
        const ModelInfo model{"synthetic-smollm2-135m-q4_1",
                              "SmolLM2-135M-Instruct (synthetic units)", opt.layers, 3, 64};
        const std::string id = context_id(model.fingerprint, tokens, opt.chunk_tokens);
        ids.push_back(id);
        if (store.is_complete(id)) continue;  // content-addressed: already ingested
        ContextWriter writer(store, make_manifest(id, model, static_cast<int64_t>(tokens.size()),
                                                  opt.chunk_tokens, {"q5h"}));
        writer.put_tokens(tokens);
        std::mt19937_64 rng(static_cast<uint64_t>(c) + 1);
        std::vector<uint8_t> bytes;
        for (int t = 0; t < opt.chunks; ++t)
            for (int l = 0; l < opt.layers; ++l) {
                // Sizes vary +-10% around the target, like real units of different layers.
                bytes.resize(opt.unit_bytes * (90 + rng() % 21) / 100);
                for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
                    const uint64_t v = rng();
                    std::memcpy(bytes.data() + i, &v, 8);
                }
                writer.put_unit(t, l, "q5h", bytes);
            }
        writer.commit();
    }
    return ids;
}

long status_kb(pid_t pid, const char* field) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0)
            return std::strtol(line.c_str() + std::strlen(field) + 1, nullptr, 10);
    return -1;
}

// The server process: serves until SIGTERM, then prints its counters.
[[noreturn]] void run_server(const Options& opt, const std::shared_ptr<FilesystemBackend>& backend,
                             int port_pipe) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ServerConfig config;
    config.threads = opt.threads;
    config.link.rate_mbps = opt.rate_mbps;
    config.link.rtt_ms = opt.rtt_ms;
    UnitServer server(backend, config);
    const int port = server.start();
    if (write(port_pipe, &port, sizeof(port)) != sizeof(port)) _exit(2);
    close(port_pipe);
    int sig = 0;
    sigwait(&signals, &sig);
    server.stop();
    const ServerStats st = server.stats();
    std::printf(
        "server: %llu requests on %llu connections, %llu objects, %.1f MB of bodies, %llu "
        "not found, %llu aborted\n",
        static_cast<unsigned long long>(st.requests),
        static_cast<unsigned long long>(st.connections),
        static_cast<unsigned long long>(st.objects_served), st.body_bytes_sent / 1e6,
        static_cast<unsigned long long>(st.not_found),
        static_cast<unsigned long long>(st.aborted_bodies));
    std::fflush(stdout);
    _exit(0);
}

struct Run {
    double seconds = 0;
    uint64_t bytes = 0;
    int units = 0;
    int errors = 0;
    std::vector<double> client_mbps;
    std::string first_error;
};

Run stream_contexts(int port, const std::vector<std::string>& ids, int clients) {
    Run run;
    std::mutex mutex;
    std::vector<std::thread> threads;
    const double start = now_seconds();
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            const double t0 = now_seconds();
            uint64_t bytes = 0;
            int units = 0, errors = 0, expected = 0;
            std::string first_error;
            try {
                ClientConfig config;
                config.port = port;
                config.read_timeout_s = 30;
                UnitClient client(config);
                const Manifest& m = client.fetch_manifest(ids[static_cast<size_t>(c) % ids.size()]);
                auto schedule = std::make_shared<FetchSchedule>();
                for (const auto& u : m.units) schedule->add({u.t, u.l, "q5h"});
                expected = static_cast<int>(m.units.size());
                schedule->close();
                ClientCallbacks callbacks;
                callbacks.on_unit = [&](ReceivedUnit&& u) { bytes += u.bytes.size(), ++units; };
                callbacks.on_failure = [&](const UnitFailure& f) {
                    if (first_error.empty()) first_error = f.reason;
                };
                client.start(schedule, callbacks);
                client.wait();
            } catch (const std::exception& e) {
                first_error = e.what();
            }
            errors = expected - units + (expected == 0);
            const double seconds = now_seconds() - t0;
            std::lock_guard lock(mutex);
            run.bytes += bytes;
            run.units += units;
            run.errors += errors;
            run.client_mbps.push_back(bytes * 8 / seconds / 1e6);
            if (run.first_error.empty()) run.first_error = first_error;
        });
    }
    for (auto& t : threads) t.join();
    run.seconds = now_seconds() - start;
    std::sort(run.client_mbps.begin(), run.client_mbps.end());
    return run;
}

void print_run(const char* name, const Run& r) {
    std::printf("%-22s %6zu %7d %6d %9.1f %8.2f %12.0f %12.0f %12.0f\n", name, r.client_mbps.size(),
                r.units, r.errors, r.bytes / 1e6, r.seconds, r.bytes * 8 / r.seconds / 1e6,
                r.client_mbps.front(), r.client_mbps[r.client_mbps.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"Load test: concurrent clients streaming whole contexts from one server"};
    app.add_option("--clients", opt.clients, "Concurrent clients")->capture_default_str();
    app.add_option("--contexts", opt.contexts, "Distinct contexts in the store")
        ->capture_default_str();
    app.add_option("--chunks", opt.chunks, "Token chunks per context")->capture_default_str();
    app.add_option("--layers", opt.layers, "Layers per context")->capture_default_str();
    app.add_option("--unit-bytes", opt.unit_bytes, "Mean unit size")->capture_default_str();
    app.add_option("--store", opt.store_dir,
                   "Store directory (reused if complete; default: a temp dir)");
    app.add_option("--threads", opt.threads, "Server worker threads")->capture_default_str();
    app.add_option("--rate-mbps", opt.rate_mbps, "Pace every connection at this rate (0: unpaced)")
        ->capture_default_str();
    app.add_option("--rtt-ms", opt.rtt_ms, "Base RTT")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        const bool temp_store = opt.store_dir.empty();
        const fs::path dir =
            temp_store ? fs::temp_directory_path() / fmt::format("sparkv-link-load-{}", getpid())
                       : fs::path(opt.store_dir);
        auto backend = std::make_shared<FilesystemBackend>(dir);
        const double build_start = now_seconds();
        const auto ids = build_store(opt, backend);
        std::printf(
            "link_load: store %s: %d contexts x %d chunks x %d layers, units ~%zu bytes "
            "(ready in %.1f s)\n",
            backend->describe().c_str(), opt.contexts, opt.chunks, opt.layers, opt.unit_bytes,
            now_seconds() - build_start);
        std::printf("server: %d threads, link %s\n", opt.threads,
                    opt.rate_mbps > 0
                        ? fmt::format("{} Mbit/s per connection", opt.rate_mbps).c_str()
                        : "unpaced");
        std::fflush(stdout);

        int pipe_fds[2];
        if (pipe(pipe_fds) != 0) fail("pipe failed");
        const pid_t child = fork();
        if (child < 0) fail("fork failed");
        if (child == 0) {
            close(pipe_fds[0]);
            run_server(opt, backend, pipe_fds[1]);
        }
        close(pipe_fds[1]);
        int port = 0;
        if (read(pipe_fds[0], &port, sizeof(port)) != sizeof(port)) fail("server did not start");
        close(pipe_fds[0]);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const long idle_rss_kb = status_kb(child, "VmRSS:");

        std::printf("%-22s %6s %7s %6s %9s %8s %12s %12s %12s\n", "run", "client", "units",
                    "errors", "MB", "seconds", "agg_Mbit/s", "min_Mbit/s", "med_Mbit/s");
        const Run alone = stream_contexts(port, ids, 1);
        print_run("baseline: 1 client", alone);
        const Run load = stream_contexts(port, ids, opt.clients);
        print_run(fmt::format("load: {} clients", opt.clients).c_str(), load);
        std::fflush(stdout);
        const long hwm_kb = status_kb(child, "VmHWM:");

        kill(child, SIGTERM);
        int status = 0;
        waitpid(child, &status, 0);
        std::printf(
            "aggregate throughput: %.0f Mbit/s with %d clients vs %.0f Mbit/s for one alone "
            "(x%.2f)\n",
            load.bytes * 8 / load.seconds / 1e6, opt.clients, alone.bytes * 8 / alone.seconds / 1e6,
            (load.bytes / load.seconds) / (alone.bytes / alone.seconds));
        std::printf("server RSS: %.1f MB idle after start-up, peak (VmHWM) %.1f MB\n",
                    idle_rss_kb / 1024.0, hwm_kb / 1024.0);
        if (load.errors + alone.errors > 0)
            std::printf("errors: %d (first: %s)\n", load.errors + alone.errors,
                        (load.first_error.empty() ? alone.first_error : load.first_error).c_str());
        else
            std::printf("errors: 0\n");
        if (temp_store) fs::remove_all(dir);
        return load.errors + alone.errors == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "link_load: %s\n", e.what());
        return 1;
    }
}
