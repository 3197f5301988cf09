// `sparkv demo`: the whole system in one command and a few minutes. The reference model and the
// demo text (both already fetched by `sparkv model --fetch`) become a 4,096-token context that a
// cloud ingests into a temporary store and serves on loopback over a real cellular trace; the
// device then asks one question with every policy and shows what each cost.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/harness.h"
#include "cli/runtime_output.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/paths.h"
#include "common/temp_dir.h"
#include "common/timer.h"

namespace sparkv::cli {

namespace {

struct DemoOptions {
    std::string trace;
    double scale = 1;
    int64_t tokens = 4096;
    std::string timeline = "sparkv-demo-timeline.svg";
    std::string question = "What did the President propose about slavery and compensation?";
    int n_predict = 32;
};

// The demo's link: the trace given, else a shared one, else a fixed rate (said so).
LinkConfig demo_link(const DemoOptions& opt, std::string& described) {
    LinkConfig link;
    std::string path = opt.trace;
    if (path.empty()) {
        const std::string dir = find_trace_dir();
        if (!dir.empty()) {
            path = dir + "/TMobile-LTE-driving.down";
            if (!std::filesystem::exists(path)) {
                for (const auto& e : std::filesystem::directory_iterator(dir))
                    if (e.path().extension() == ".down") {
                        path = e.path().string();
                        break;
                    }
            }
        }
    }
    if (!path.empty()) {
        link.trace = std::make_shared<const LinkTrace>(LinkTrace::load(path));
        link.trace_scale = opt.scale;
        described = fmt::format("{} x{:g} ({:.1f} Mbit/s mean)",
                                std::filesystem::path(path).filename().string(), opt.scale,
                                link.trace->mean_bits_per_second() * opt.scale / 1e6);
    } else {
        link.rate_mbps = 12;
        described = "a fixed 12 Mbit/s (no trace found: set SPARKV_TRACES or pass --trace)";
    }
    link.validate();
    return link;
}

int run(const DemoOptions& opt) {
    const double t0 = now_seconds();
    const std::string doc_path = demo_text_path();
    if (!std::filesystem::exists(doc_path))
        fail("the demo text is not in the cache ({}); run `sparkv model --fetch` first", doc_path);
    runtime::DeviceOptions device_options;
    const auto device_ptr =
        open_device(std::move(device_options), "profiling this device (first run only)");
    runtime::Device& device = *device_ptr;

    TempDirectory store_dir("sparkv-demo");
    auto backend = std::make_shared<FilesystemBackend>(store_dir.path());
    ContextStore store(backend);
    const auto tokens = context_of_length(device.model(), read_text_file(doc_path), opt.tokens);
    const std::string default_level = device.default_level();
    std::fprintf(stderr, "cloud: ingesting %lld tokens of Lincoln's 1862 State of the Union\n",
                 static_cast<long long>(tokens.size()));
    const std::string id =
        ingest_tokens(device.model(), store, tokens, {"fp16", default_level, "q3h"}, 0, "ingest");
    std::string described;
    LoopbackServer server(backend, demo_link(opt, described));
    std::printf("context %s: %lld tokens, served on %s over %s\n", id.c_str(),
                static_cast<long long>(tokens.size()), server.address().c_str(), described.c_str());
    std::printf("question: %s\n\n", opt.question.c_str());

    std::printf("%-7s %9s %8s %10s %9s %9s %8s\n", "policy", "TTFT (s)", "vs local", "energy (J)",
                "computed", "streamed", "MB");
    double local_ttft = 0;
    std::vector<double> local_costs;
    runtime::AskResult sparkv_result;
    std::string sparkv_answer;
    for (auto policy : plan::all_policies()) {
        runtime::AskOptions ask;
        ask.server = server.address();
        ask.context_id = id;
        ask.question = opt.question;
        ask.policy = policy;
        ask.n_predict = opt.n_predict;
        if (policy == plan::Policy::oracle) {
            ask.realised_link = server.realised();
            ask.measured_compute_s = local_costs;
        }
        const auto r = device.ask(ask);
        if (policy == plan::Policy::local) local_ttft = r.ttft_ms, local_costs = r.unit_compute_s;
        std::printf("%-7s %9.2f %7.2fx %10.1f %9zu %9zu %8.1f\n", r.policy.c_str(), r.ttft_ms / 1e3,
                    local_ttft / r.ttft_ms, r.energy.total_j, r.units_computed, r.units_streamed,
                    static_cast<double>(r.bytes_received) / 1e6);
        std::fflush(stdout);
        if (policy == plan::Policy::sparkv) sparkv_result = r;
    }
    std::printf("\nenergy is modelled (measured time x the 'phone' power model, LTE radio)\n");
    std::printf("sparkv's answer:%s\n", sparkv_result.answer.c_str());
    write_timeline_svg(sparkv_result, opt.timeline,
                       server.capacity(sparkv_result.ttft_ms / 1e3 + 1));
    std::printf("timeline of the sparkv run: %s\n", opt.timeline.c_str());
    std::fprintf(stderr, "demo: %.0f s\n", now_seconds() - t0);
    return 0;
}

}  // namespace

CommandRunner add_demo_command(CLI::App& app) {
    auto opt = std::make_shared<DemoOptions>();
    auto* cmd = app.add_subcommand(
        "demo", "Ingest the demo text, serve it over a cellular trace, ask with every policy");
    cmd->add_option("--trace", opt->trace, "Mahimahi trace (default: a shared one if found)");
    cmd->add_option("--trace-scale", opt->scale, "Capacity scale of the trace")
        ->capture_default_str();
    cmd->add_option("--context-tokens", opt->tokens, "Context length")->capture_default_str();
    cmd->add_option("--timeline", opt->timeline, "Where to write the sparkv run's timeline")
        ->capture_default_str();
    cmd->add_option("--question", opt->question, "The question")->capture_default_str();
    cmd->add_option("-n,--n-predict", opt->n_predict, "Answer tokens")->capture_default_str();
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
