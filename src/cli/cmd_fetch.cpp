// `sparkv fetch`: the device side's streaming lane on its own. Fetches a context's manifest from a
// `sparkv serve` endpoint, streams every unit at one level over one connection, verifies and
// decodes each, and reports link throughput, decode speed and any failed units.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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
#include "store/trust.h"

namespace sparkv::cli {

namespace {

struct FetchOptions {
    std::string server = "127.0.0.1:8080";
    std::string context;
    std::string level = "q5h";
    double timeout_s = 10;
    std::vector<std::string> trust_keys;
    std::string token_file;
    bool json = false;
};

// The bearer token: --token-file, else $SPARKV_TOKEN, else none. Never from the command line,
// where other users could read it in the process list.
std::string bearer_token(const FetchOptions& opt) {
    std::string token;
    if (!opt.token_file.empty()) {
        std::ifstream in(opt.token_file);
        if (!in) fail("--token-file {}: cannot open", opt.token_file);
        std::getline(in, token);
    } else if (const char* env = std::getenv("SPARKV_TOKEN")) {
        token = env;
    }
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    return token;
}

std::pair<std::string, int> parse_host_port(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0)
        fail("--server must be HOST:PORT, got '{}'", text);
    try {
        const int port = std::stoi(text.substr(colon + 1));
        if (port < 1 || port > 65535) throw std::out_of_range("port");
        return {text.substr(0, colon), port};
    } catch (const std::exception&) {
        fail("--server must be HOST:PORT with a port in 1..65535, got '{}'", text);
    }
}

int run(const FetchOptions& opt) {
    if (!is_context_id(opt.context)) fail("'{}' is not a context id (64 hex digits)", opt.context);
    const auto level = codec::level_from_name(opt.level);
    auto [host, port] = parse_host_port(opt.server);
    ClientConfig config;
    config.host = host;
    config.port = port;
    config.read_timeout_s = opt.timeout_s;
    config.trust = std::make_shared<const TrustPolicy>(TrustPolicy::from_files(opt.trust_keys));
    config.bearer_token = bearer_token(opt);
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
            opt.context.c_str(), opt.level.c_str(), static_cast<unsigned long long>(decoded_units),
            total, static_cast<double>(stats.bytes_received) / 1e6, seconds, mbit_s, estimate,
            decode_mb_s, static_cast<unsigned long long>(stats.connections_opened));
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
    cmd->add_option("--server", opt->server, "HOST:PORT of `sparkv serve`")->capture_default_str();
    cmd->add_option("--context", opt->context, "Context id (printed by `sparkv ingest`)")
        ->required();
    cmd->add_option("--level", opt->level, "Codec level to stream")->capture_default_str();
    cmd->add_option("--timeout", opt->timeout_s, "Seconds without a byte before a unit fails")
        ->capture_default_str();
    cmd->add_option("--trust-key", opt->trust_keys,
                    "Only accept contexts signed by this public key (PREFIX.pub from `sparkv "
                    "keygen`); repeatable")
        ->check(CLI::ExistingFile);
    cmd->add_option("--token-file", opt->token_file,
                    "File holding the bearer token for a server with --auth (default: "
                    "$SPARKV_TOKEN)")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--json", opt->json, "Print a JSON result");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
