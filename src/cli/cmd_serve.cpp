// `sparkv serve`: serves a context store (a directory or an S3 bucket it fronts) over HTTP,
// optionally through an emulated link.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "net/endpoint.h"
#include "net/server.h"
#include "store/context_store.h"
#include "store/store_location.h"

namespace sparkv::cli {

namespace {

struct ServeOptions {
    std::string store_dir;
    std::string listen = "127.0.0.1:8080";
    std::string trace_path;
    double trace_scale = 1.0;
    int64_t trace_start_ms = 0;
    double rate_mbps = 0;
    double rtt_ms = 0;
    int threads = 64;
    int keep_alive_s = 5;
    bool access_log = false;
};

int run(const ServeOptions& opt) {
    ServerConfig config;
    const Endpoint listen = parse_endpoint(opt.listen, true);
    if (!listen.path.empty()) fail("--listen takes HOST:PORT, not a path ({})", opt.listen);
    config.host = listen.host;
    config.port = listen.port;
    config.threads = opt.threads;
    config.keep_alive_s = opt.keep_alive_s;
    config.access_log = opt.access_log;
    if (!opt.trace_path.empty())
        config.link.trace = std::make_shared<LinkTrace>(LinkTrace::load(opt.trace_path));
    config.link.trace_scale = opt.trace_scale;
    config.link.trace_start_ms = opt.trace_start_ms;
    config.link.rate_mbps = opt.rate_mbps;
    config.link.rtt_ms = opt.rtt_ms;
    config.link.validate();

    const std::shared_ptr<StorageBackend> backend =
        open_store(opt.store_dir, StoreAccess::existing);
    const ContextStore store(backend);
    const auto contexts = store.list_contexts();

    // Signals are taken by sigwait below, not by a handler: block them before any thread starts
    // so every server thread inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    UnitServer server(backend, config);
    server.start();
    std::printf("sparkv serve: store %s (%zu contexts)\n", backend->describe().c_str(),
                contexts.size());
    for (size_t i = 0; i < contexts.size() && i < 10; ++i)
        std::printf("  /contexts/%s/manifest.json\n", contexts[i].c_str());
    if (contexts.size() > 10) std::printf("  ... and %zu more\n", contexts.size() - 10);
    std::printf("link: %s\n", config.link.describe().c_str());
    std::printf("listening on %s with %d threads (GET /health, /contexts, /contexts/<id>/...)\n",
                server.url().c_str(), config.threads);
    std::fflush(stdout);

    int signal_number = 0;
    sigwait(&signals, &signal_number);
    std::printf("sparkv serve: %s, stopping (idle connections close within %d s)\n",
                signal_number == SIGINT ? "SIGINT" : "SIGTERM", config.keep_alive_s);
    std::fflush(stdout);
    server.stop();
    const ServerStats st = server.stats();
    std::printf(
        "served %llu requests on %llu connections: %llu objects, %.1f MB of bodies, "
        "%llu not found, %llu rejected, %llu aborted\n",
        static_cast<unsigned long long>(st.requests),
        static_cast<unsigned long long>(st.connections),
        static_cast<unsigned long long>(st.objects_served), st.body_bytes_sent / 1e6,
        static_cast<unsigned long long>(st.not_found), static_cast<unsigned long long>(st.rejected),
        static_cast<unsigned long long>(st.aborted_bodies));
    return 0;
}

}  // namespace

CommandRunner add_serve_command(CLI::App& app) {
    auto opt = std::make_shared<ServeOptions>();
    CLI::App* cmd = app.add_subcommand("serve", "Serve a context store over HTTP/1.1");
    cmd->add_option("--store", opt->store_dir,
                    "Store: a directory (holds contexts/) or s3://BUCKET/PREFIX (settings from "
                    "AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
                    "~/.aws)")
        ->required();
    cmd->add_option("--listen", opt->listen, "HOST:PORT to listen on (port 0: any free port)")
        ->capture_default_str();
    cmd->add_option("--trace", opt->trace_path, "Mahimahi trace to pace every connection by");
    cmd->add_option("--trace-scale", opt->trace_scale, "Multiply the trace's capacity")
        ->capture_default_str();
    cmd->add_option("--trace-start-ms", opt->trace_start_ms,
                    "Start each connection's link at this point of the trace")
        ->capture_default_str();
    cmd->add_option("--rate-mbps", opt->rate_mbps,
                    "Fixed link rate instead of a trace (0: unpaced)")
        ->capture_default_str();
    cmd->add_option("--rtt-ms", opt->rtt_ms, "Base RTT: delay before each response's first byte")
        ->capture_default_str();
    cmd->add_option("--threads", opt->threads,
                    "Worker threads; each open keep-alive connection holds one")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    cmd->add_option("--keep-alive-s", opt->keep_alive_s, "Close idle connections after this long")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    cmd->add_flag("--access-log", opt->access_log, "Log every request on stderr");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
