// `sparkv fetch`: the device side's stream lane on its own -- fetch, verify, decode into a KV
// cache -- for every unit of a context served by `sparkv serve`, an object store's website
// endpoint or a CDN, at one level; reports link throughput, decode speed and any failed units.
// A thin caller of runtime/stream_lane.h.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/device_trust.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/timer.h"
#include "engine/kv_cache.h"
#include "net/endpoint.h"
#include "runtime/stream_lane.h"
#include "runtime/unit_board.h"

namespace sparkv::cli {

namespace {

struct FetchOptions {
    std::string server = "127.0.0.1:8080";
    std::string context;
    std::string level = "q5h";
    double timeout_s = 10;
    int connections = ClientConfig{}.connections;
    std::string host_header;
    int retries = 2;
    DeviceTrustOptions trust;
    bool json = false;
};

int run(const FetchOptions& opt) {
    ClientConfig config = client_config_for_server(opt.server);
    config.read_timeout_s = opt.timeout_s;
    config.connections = opt.connections;
    config.host_header = opt.host_header;
    config.server_error_retries = opt.retries;
    config.trust = trust_policy(opt.trust);
    config.bearer_token = read_bearer_token(opt.trust);
    UnitClient client(config);
    const double t0 = now_seconds();
    const Manifest& m = client.fetch_manifest(opt.context);
    const int level = m.require_level(opt.level);

    plan::ContextShape shape;
    shape.n_layers = m.n_layers();
    for (const auto& c : m.chunks) shape.chunk_tokens.push_back(c.n_tokens);
    KvCache cache(m.n_layers(), m.model.n_kv_heads, m.model.head_dim, m.n_tokens);
    runtime::UnitBoard board(shape);
    const plan::Plan all_streamed = plan::Plan::from_prefixes(
        shape, std::vector<int32_t>(m.chunks.size(), 0), static_cast<int8_t>(level));
    board.apply(all_streamed);
    runtime::Timeline timeline;
    runtime::StreamLane lane(client, board, cache, timeline, t0);
    std::vector<std::pair<plan::UnitId, int>> order;
    for (const auto& u : all_streamed.stream_order) order.emplace_back(u, level);
    lane.start(order, false);

    ProgressBar bar("fetch");
    const size_t total = shape.n_units();
    for (uint64_t version = board.version(); board.stream_pending() > 0;) {
        version = board.wait_for_change(version, std::chrono::milliseconds(200));
        bar.update(static_cast<long>(total - board.stream_pending()), static_cast<long>(total),
                   now_seconds() - t0);
    }
    lane.finish();
    bar.finish();
    const double seconds = now_seconds() - t0;
    const auto stats = lane.stats();
    const auto failures = lane.failures();
    const auto client_stats = client.stats();
    const double mbit_s = static_cast<double>(client_stats.bytes_received) * 8 / 1e6 / seconds;
    const double estimate = lane.estimator().bytes_per_second().value_or(0) * 8 / 1e6;
    const double decode_mb_s =
        stats.decode_s > 0 ? static_cast<double>(stats.bytes) / 1e6 / stats.decode_s : 0;

    if (opt.json) {
        nlohmann::json j;
        j["context_id"] = opt.context;
        j["level"] = opt.level;
        j["units"] = total;
        j["units_decoded"] = stats.units;
        j["units_failed"] = failures.size();
        j["bytes"] = client_stats.bytes_received;
        j["seconds"] = seconds;
        j["mbit_s"] = mbit_s;
        j["estimated_mbit_s"] = estimate;
        j["decode_mb_s"] = decode_mb_s;
        j["connections"] = client_stats.connections_opened;
        j["verified"] = config.trust->enforcing();
        j["trust"] = config.trust->describe();
        j["failures"] = nlohmann::json::array();
        for (const auto& f : failures)
            j["failures"].push_back({{"t", f.unit.t},
                                     {"l", f.unit.l},
                                     {"kind", failure_kind_name(f.kind)},
                                     {"reason", f.reason}});
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf(
            "%s at %s: %llu/%zu units, %.2f MB in %.2fs = %.2f Mbit/s (estimator: %.2f Mbit/s), "
            "decode %.0f MB/s, %llu connection(s)\n",
            opt.context.c_str(), opt.level.c_str(), static_cast<unsigned long long>(stats.units),
            total, static_cast<double>(client_stats.bytes_received) / 1e6, seconds, mbit_s,
            estimate, decode_mb_s,
            static_cast<unsigned long long>(client_stats.connections_opened));
        std::printf("%s\n",
                    config.trust->enforcing()
                        ? ("signature and SHA-256 verified, " + config.trust->describe()).c_str()
                        : config.trust->describe().c_str());
        for (const auto& f : failures) std::printf("failed: %s\n", f.reason.c_str());
    }
    return failures.empty() ? 0 : 3;
}

}  // namespace

CommandRunner add_fetch_command(CLI::App& app) {
    auto opt = std::make_shared<FetchOptions>();
    auto* cmd = app.add_subcommand(
        "fetch", "Stream, verify and decode every unit of a served context (device side)");
    cmd->add_option("--server", opt->server,
                    "HOST:PORT of `sparkv serve`, or http://HOST[:PORT][/PREFIX] of an object "
                    "store's website endpoint or a CDN serving the store")
        ->capture_default_str();
    cmd->add_option("--host-header", opt->host_header,
                    "Host header to send (an object store's website endpoint picks the bucket by "
                    "it)");
    cmd->add_option("--retries", opt->retries,
                    "Times a unit answered 500/502/503/504 is asked for again")
        ->capture_default_str();
    cmd->add_option("--context", opt->context, "Context id (printed by `sparkv ingest`)")
        ->required();
    cmd->add_option("--level", opt->level, "Codec level to stream")->capture_default_str();
    cmd->add_option("--connections", opt->connections,
                    "Connections to stream units on at once (hides round trips)")
        ->capture_default_str()
        ->check(CLI::Range(1, 8));
    cmd->add_option("--timeout", opt->timeout_s, "Seconds without a byte before a unit fails")
        ->capture_default_str();
    add_device_trust_options(cmd, opt->trust);
    cmd->add_flag("--json", opt->json, "Print a JSON result");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
