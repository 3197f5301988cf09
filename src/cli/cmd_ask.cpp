// `sparkv ask`: the device side of SparKV for one question over a served context: stream and
// compute the context's KV at once, prefill the question, answer, and say where the time went.
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/device_trust.h"
#include "cli/harness.h"
#include "cli/runtime_output.h"
#include "common/error.h"
#include "net/link_trace.h"
#include "runtime/device.h"

namespace sparkv::cli {

namespace {

struct AskCliOptions {
    std::string model;
    std::string server = "127.0.0.1:8080";
    std::string context;
    std::string question;
    std::string policy = "sparkv";
    int n_predict = 32;
    std::string level;
    int threads = 0;
    bool json = false;
    std::string timeline_svg;
    std::string timeline_json;
    std::string power = "phone";
    std::string profile;
    std::string trace;
    double trace_scale = 1;
    double rate_mbps = 0;
    bool no_controller = false;
    bool refuse_untrusted = false;
    double timeout_s = 10;
    int connections = ClientConfig{}.connections;
    DeviceTrustOptions trust;
};

int run(const AskCliOptions& opt) {
    runtime::DeviceOptions device_options;
    device_options.model_path = opt.model;
    device_options.threads = opt.threads;
    device_options.profile_path = opt.profile;
    const auto device_ptr = open_device(std::move(device_options));
    runtime::Device& device = *device_ptr;

    runtime::AskOptions ask;
    ask.server = opt.server;
    ask.context_id = opt.context;
    ask.question = opt.question;
    ask.policy = plan::policy_from_name(opt.policy);
    ask.n_predict = opt.n_predict;
    ask.level = opt.level;
    ask.power_profile = opt.power;
    ask.read_timeout_s = opt.timeout_s;
    ask.connections = opt.connections;
    ask.trust = trust_policy(opt.trust);
    ask.bearer_token = read_bearer_token(opt.trust);
    ask.controller.enabled = !opt.no_controller;
    ask.compute_untrusted = !opt.refuse_untrusted;
    runtime::power_profile(opt.power);  // a bad name fails before any work
    if (!opt.trace.empty() || opt.rate_mbps > 0) {
        runtime::RealisedLink link;
        if (!opt.trace.empty()) link.trace_ms = LinkTrace::load(opt.trace).timestamps_ms();
        link.scale = opt.trace_scale;
        link.rate_mbps = opt.rate_mbps;
        ask.realised_link = link;
    } else if (ask.policy == plan::Policy::oracle) {
        fail(
            "--policy oracle needs the link the server replays: --trace FILE [--trace-scale X] "
            "or --rate-mbps R");
    }
    if (!opt.json) {
        std::printf("\n");
        ask.on_piece = [](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        };
    }
    const runtime::AskResult r = device.ask(ask);
    if (!opt.timeline_svg.empty()) write_timeline_svg(r, opt.timeline_svg, {});
    if (!opt.timeline_json.empty()) {
        std::ofstream out(opt.timeline_json);
        out << r.timeline->to_json().dump(1) << "\n";
        if (!out) fail("cannot write {}", opt.timeline_json);
    }
    if (opt.json) {
        std::printf("%s\n", ask_result_json(r).dump(2).c_str());
    } else {
        std::printf("\n\n");
        print_ask_breakdown(r, stdout);
    }
    return 0;
}

}  // namespace

CommandRunner add_ask_command(CLI::App& app) {
    auto opt = std::make_shared<AskCliOptions>();
    auto* cmd = app.add_subcommand(
        "ask", "Answer a question over a served context, streaming and computing its KV at once");
    cmd->add_option("--model", opt->model, "GGUF model (default: the reference model)");
    cmd->add_option("--server", opt->server, "Server: http://HOST:PORT or HOST:PORT")
        ->capture_default_str();
    cmd->add_option("--context", opt->context, "Context id (printed by `sparkv ingest`)")
        ->required();
    cmd->add_option("--question,-q", opt->question, "The question")->required();
    cmd->add_option("--policy", opt->policy, "local, stream, cake, sparkv or oracle")
        ->capture_default_str();
    cmd->add_option("-n,--n-predict", opt->n_predict, "Answer tokens to generate")
        ->capture_default_str();
    cmd->add_option("--level", opt->level,
                    "Codec level to stream (default: the default lossy level if stored)");
    cmd->add_option("--threads,-t", opt->threads, "Compute lane threads (default: all cores)");
    cmd->add_option("--connections", opt->connections,
                    "Connections the stream lane requests units on at once (hides round trips)")
        ->capture_default_str()
        ->check(CLI::Range(1, 8));
    cmd->add_flag("--json", opt->json, "Print one JSON object");
    cmd->add_option("--timeline", opt->timeline_svg, "Write the run's timeline as an SVG picture");
    cmd->add_option("--timeline-json", opt->timeline_json, "Write the run's timeline as JSON");
    cmd->add_option("--device-profile", opt->power,
                    "Power model for the (modelled) energy: phone, jetson or laptop")
        ->capture_default_str();
    cmd->add_option("--profile", opt->profile,
                    "Device cost profile (default: the cached one, measured on first use)");
    cmd->add_option("--trace", opt->trace,
                    "Mahimahi trace the server replays (what the oracle is told)");
    cmd->add_option("--trace-scale", opt->trace_scale, "Scale of that trace")
        ->capture_default_str();
    cmd->add_option("--rate-mbps", opt->rate_mbps, "Fixed link rate the server paces at (oracle)");
    cmd->add_flag("--no-controller", opt->no_controller,
                  "Run the plan as made, without run-time migrations");
    cmd->add_flag("--refuse-untrusted", opt->refuse_untrusted,
                  "With --trust-key: fail on a context the keys do not vouch for (default: compute "
                  "it locally from its token ids, which must hash to the context id)");
    cmd->add_option("--timeout", opt->timeout_s, "Seconds without a byte before a unit fails")
        ->capture_default_str();
    add_device_trust_options(cmd, opt->trust);
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
