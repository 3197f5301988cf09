// Streams every unit of one context from several endpoints with the device client and compares
// them: e.g. `sparkv serve` on a local directory (the baseline), a Garage bucket's website
// endpoint read directly, and `sparkv serve` fronting the bucket. Endpoints are measured in turn,
// their order rotating from run to run; per endpoint it prints the median throughput over the
// runs and the p50/p99 unit latency (request sent to last byte) over all units of all runs, with
// the ratio to the first endpoint. Unpaced loopback: this measures the servers, not a link.
//
//   store_stream_bench --context ID --level q5h --runs 5
//       --endpoint serve-fs=127.0.0.1:8080
//       --endpoint garage-web=http://127.0.0.1:3902/kv@bucket.web.garage.localhost
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "net/unit_client.h"

namespace {

using namespace sparkv;

struct Endpoint {
    std::string name;
    ClientConfig config;
    std::vector<double> mb_per_s;    // one per run
    std::vector<double> latency_ms;  // one per unit, all runs
    size_t failures = 0;
    std::string first_failure;
};

Endpoint parse_endpoint(const std::string& text) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
        fail("--endpoint wants NAME=SERVER[@HOST], got {}", text);
    Endpoint e;
    e.name = text.substr(0, eq);
    std::string server = text.substr(eq + 1);
    std::string host;
    if (const size_t at = server.find('@'); at != std::string::npos) {
        host = server.substr(at + 1);
        server = server.substr(0, at);
    }
    e.config = client_config_for_server(server);
    e.config.host_header = host;
    return e;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    return v[i];
}

double median(std::vector<double> v) {
    return percentile(std::move(v), 0.5);
}

void run_once(Endpoint& e, const std::string& context, const std::string& level) {
    UnitClient client(e.config);
    const Manifest& m = client.fetch_manifest(context);
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : m.units) schedule->add({u.t, u.l, level});
    schedule->close();
    std::mutex mutex;
    ClientCallbacks cb;
    cb.on_timing = [&](const UnitTiming& t) {
        std::lock_guard lock(mutex);
        e.latency_ms.push_back((t.last_byte_s - t.request_s) * 1e3);
    };
    cb.on_unit = [](ReceivedUnit&&) {};
    cb.on_failure = [&](const UnitFailure& f) {
        std::lock_guard lock(mutex);
        if (e.failures++ == 0) e.first_failure = f.reason;
    };
    const uint64_t before = client.stats().bytes_received;
    const double t0 = now_seconds();
    client.start(schedule, cb);
    client.wait();
    const double seconds = now_seconds() - t0;
    e.mb_per_s.push_back(static_cast<double>(client.stats().bytes_received - before) / 1e6 /
                         seconds);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Unit streaming from several endpoints: throughput and unit latency"};
    std::string context, level = "q5h";
    int runs = 5;
    std::vector<std::string> endpoint_texts;
    bool json = false;
    app.add_option("--context", context, "Context id")->required();
    app.add_option("--level", level, "Codec level to stream")->capture_default_str();
    app.add_option("--runs", runs, "Full streams per endpoint")->capture_default_str();
    app.add_option("--endpoint", endpoint_texts,
                   "NAME=SERVER[@HOST]: SERVER as `sparkv fetch --server`, HOST its Host header; "
                   "the first is the baseline")
        ->required();
    app.add_flag("--json", json, "Print JSON");
    CLI11_PARSE(app, argc, argv);
    try {
        std::vector<Endpoint> endpoints;
        for (const auto& t : endpoint_texts) endpoints.push_back(parse_endpoint(t));
        for (int r = 0; r < runs; ++r)
            for (size_t k = 0; k < endpoints.size(); ++k)
                run_once(endpoints[(k + static_cast<size_t>(r)) % endpoints.size()], context,
                         level);
        const double base_mb = median(endpoints[0].mb_per_s);
        const double base_p99 = percentile(endpoints[0].latency_ms, 0.99);
        nlohmann::json out = nlohmann::json::array();
        std::printf("%-14s %10s %8s %10s %10s %8s %9s\n", "endpoint", "MB/s", "x base", "p50 ms",
                    "p99 ms", "x base", "failures");
        for (const auto& e : endpoints) {
            const double mb = median(e.mb_per_s), p50 = percentile(e.latency_ms, 0.5),
                         p99 = percentile(e.latency_ms, 0.99);
            std::printf("%-14s %10.1f %8.2f %10.2f %10.2f %8.2f %9zu\n", e.name.c_str(), mb,
                        mb / base_mb, p50, p99, p99 / base_p99, e.failures);
            if (e.failures) std::printf("  first failure: %s\n", e.first_failure.c_str());
            out.push_back({{"endpoint", e.name},
                           {"median_mb_per_s", mb},
                           {"throughput_vs_baseline", mb / base_mb},
                           {"p50_unit_ms", p50},
                           {"p99_unit_ms", p99},
                           {"p99_vs_baseline", p99 / base_p99},
                           {"units", e.latency_ms.size()},
                           {"failures", e.failures}});
        }
        std::printf("(%d runs per endpoint, context %s, level %s; baseline: %s)\n", runs,
                    context.c_str(), level.c_str(), endpoints[0].name.c_str());
        if (json) std::printf("%s\n", out.dump(2).c_str());
        for (const auto& e : endpoints)
            if (e.failures) return 3;
    } catch (const sparkv::Error& e) {
        std::fprintf(stderr, "store_stream_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
