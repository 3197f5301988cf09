// `sparkv fetch`: the device side's streaming lane on its own. Fetches a context's manifest from a
// `sparkv serve` endpoint (or straight from an object store's website endpoint or a CDN), streams
// every unit at one level over one connection, verifies and decodes each, and reports link
// throughput, decode speed and any failed units.
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/progress.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/timer.h"
#include "net/unit_client.h"
#include "store/content_id.h"

namespace sparkv::cli {

namespace {

struct FetchOptions {
    std::string server = "127.0.0.1:8080";
    std::string context;
    std::string level = "q5h";
    double timeout_s = 10;
    std::string host_header;
    int retries = 2;
    bool json = false;
};

int run(const FetchOptions& opt) {
    if (!is_context_id(opt.context)) fail("'{}' is not a context id (32 hex digits)", opt.context);
    const auto level = codec::level_from_name(opt.level);
    ClientConfig config = client_config_for_server(opt.server);
    config.read_timeout_s = opt.timeout_s;
    config.host_header = opt.host_header;
    config.server_error_retries = opt.retries;
    UnitClient client(config);
    const Manifest& m = client.fetch_manifest(opt.context);
    m.require_level(opt.level);
    const auto fingerprint = parse_hex64(m.model.fingerprint);
    if (!fingerprint)
        fail("manifest of {}: model fingerprint '{}' is not 16 hex digits", opt.context,
             m.model.fingerprint);

    std::vector<UnitRequest> order;
    for (int32_t t = 0; t < m.n_chunks(); ++t)
        for (int32_t l = 0; l < m.n_layers(); ++l) order.push_back({t, l, opt.level});
    auto schedule = std::make_shared<FetchSchedule>(order);
    schedule->close();

    BandwidthEstimator estimator;
    std::mutex mutex;
    std::vector<UnitFailure> failures;
    std::atomic<size_t> failed{0};
    codec::Decoder decoder;
    std::vector<uint16_t> k, v;
    double decode_seconds = 0;
    uint64_t decoded_units = 0;
    ProgressBar bar("fetch");
    const double t0 = now_seconds();
    const size_t total = order.size();

    ClientCallbacks cb;
    cb.on_timing = [&](const UnitTiming& timing) { estimator.add(timing); };
    cb.on_unit = [&](ReceivedUnit&& unit) {
        const auto& chunk = m.chunks[static_cast<size_t>(unit.unit.t)];
        const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                     static_cast<uint16_t>(m.model.n_kv_heads),
                                     static_cast<uint16_t>(m.model.head_dim)};
        k.resize(shape.elements());
        v.resize(shape.elements());
        const double d0 = now_seconds();
        try {
            decoder.decode(unit.bytes,
                           {*fingerprint, static_cast<uint32_t>(unit.unit.t),
                            static_cast<uint32_t>(unit.unit.l)},
                           shape, codec::contiguous(k.data(), shape),
                           codec::contiguous(v.data(), shape), level);
        } catch (const Error& e) {
            std::lock_guard lock(mutex);
            failures.push_back({unit.unit, FailureKind::decode, e.what()});
            ++failed;
            return;
        }
        decode_seconds += now_seconds() - d0;
        ++decoded_units;
        bar.update(static_cast<long>(decoded_units + failed.load()), static_cast<long>(total),
                   now_seconds() - t0);
    };
    cb.on_failure = [&](const UnitFailure& f) {
        std::lock_guard lock(mutex);
        failures.push_back(f);
        ++failed;
    };
    client.start(schedule, cb);
    client.wait();
    bar.finish();
    const double seconds = now_seconds() - t0;
    const auto stats = client.stats();
    const double mbit_s = static_cast<double>(stats.bytes_received) * 8 / 1e6 / seconds;
    const double estimate = estimator.bytes_per_second().value_or(0) * 8 / 1e6;
    const double decode_mb_s =
        decode_seconds > 0 ? static_cast<double>(stats.bytes_received) / 1e6 / decode_seconds : 0;

    if (opt.json) {
        nlohmann::json j;
        j["context_id"] = opt.context;
        j["level"] = opt.level;
        j["units"] = total;
        j["units_decoded"] = decoded_units;
        j["units_failed"] = failures.size();
        j["bytes"] = stats.bytes_received;
        j["seconds"] = seconds;
        j["mbit_s"] = mbit_s;
        j["estimated_mbit_s"] = estimate;
        j["decode_mb_s"] = decode_mb_s;
        j["connections"] = stats.connections_opened;
        j["retries"] = stats.retries;
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
            opt.context.c_str(), opt.level.c_str(), static_cast<unsigned long long>(decoded_units),
            total, static_cast<double>(stats.bytes_received) / 1e6, seconds, mbit_s, estimate,
            decode_mb_s, static_cast<unsigned long long>(stats.connections_opened));
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
                    "HOST:PORT of `sparkv serve`, or http://HOST[:PORT][/PREFIX] of a store's "
                    "objects (an object store's website endpoint, a CDN edge)")
        ->capture_default_str();
    cmd->add_option("--host-header", opt->host_header,
                    "Host header to send (the bucket or site name of a website endpoint or CDN)");
    cmd->add_option("--retries", opt->retries,
                    "Times to ask again for a unit answered 500/502/503/504")
        ->capture_default_str()
        ->check(CLI::Range(0, 10));
    cmd->add_option("--context", opt->context, "Context id (printed by `sparkv ingest`)")
        ->required();
    cmd->add_option("--level", opt->level, "Codec level to stream")->capture_default_str();
    cmd->add_option("--timeout", opt->timeout_s, "Seconds without a byte before a unit fails")
        ->capture_default_str();
    cmd->add_flag("--json", opt->json, "Print a JSON result");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
