// The runtime under faults, measured end to end on the reference model (issue "runtime",
// section "Faults"):
//   kill     the server dies `--kill-after` seconds into a sparkv run: the answer must still come,
//            within 10% of local's TTFT;
//   corrupt  one stored unit's bytes are flipped: detected, recomputed, and the answer equals the
//            lossless one;
//   halve    the link's capacity halves `--halve-after` seconds in: sparkv with and without its
//            controller, same link;
//   hog      a CPU hog starts on one core `--hog-after` seconds in: with and without controller.
// Medians of --repeat runs; timelines of the controller runs as SVG next to the JSON.
//
//   build/bench/runtime_faults --doc TEXT --trace TRACE [--scale 1] [--context-tokens 4096]
//       [--repeat 3] --json OUT.json
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/harness.h"
#include "cli/runtime_output.h"
#include "common/error.h"
#include "common/temp_dir.h"
#include "net/link_trace.h"
#include "runtime/cpu_monitor.h"
#include "runtime/device.h"

using namespace sparkv;

namespace {

// The trace with every other delivery opportunity dropped from `after_s` on (capacity halves),
// long enough for any run.
std::shared_ptr<const LinkTrace> halved_after(const LinkTrace& trace, double after_s) {
    std::vector<uint32_t> out;
    const auto& stamps = trace.timestamps_ms();
    const uint32_t period = trace.period_ms();
    const auto cut = static_cast<uint32_t>(after_s * 1000);
    for (uint32_t loop = 0; loop * period < 900'000; ++loop)
        for (size_t i = 0; i < stamps.size(); ++i) {
            const uint32_t t = loop * period + stamps[i];
            if (t >= cut && (i % 2) == 1) continue;
            out.push_back(t);
        }
    return std::make_shared<const LinkTrace>(
        LinkTrace::from_timestamps(std::move(out), trace.name() + "-halved"));
}

struct Stats {
    std::vector<double> ttft_ms;
    std::vector<int> migrations;
    double median_ttft() const { return median(ttft_ms); }
};

nlohmann::json stats_json(const Stats& s) {
    return {
        {"ttft_ms_median", s.median_ttft()}, {"ttft_ms", s.ttft_ms}, {"migrations", s.migrations}};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"SparKV runtime under faults: server death, corruption, link drop, CPU hog"};
    std::string model, doc, trace_path, json_out, scenarios = "kill,corrupt,halve,hog";
    double scale = 1, kill_after = 10, halve_after = 3, hog_after = 3;
    int64_t tokens = 4096;
    int repeat = 3;
    app.add_option("--model", model, "GGUF model (default: the reference model)");
    app.add_option("--doc", doc, "Document for the context")->required();
    app.add_option("--trace", trace_path, "Mahimahi trace the server replays")->required();
    app.add_option("--scale", scale, "Trace capacity scale")->capture_default_str();
    app.add_option("--context-tokens", tokens, "Context length")->capture_default_str();
    app.add_option("--repeat", repeat, "Runs per variant")->capture_default_str();
    app.add_option("--kill-after", kill_after, "Seconds into the run the server dies")
        ->capture_default_str();
    app.add_option("--halve-after", halve_after, "Seconds into the run the link halves")
        ->capture_default_str();
    app.add_option("--hog-after", hog_after, "Seconds into the run the CPU hog starts")
        ->capture_default_str();
    app.add_option("--scenarios", scenarios, "Which scenarios")->capture_default_str();
    app.add_option("--json", json_out, "Where to write the results")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        runtime::DeviceOptions device_options;
        device_options.model_path = model;
        runtime::Device device(device_options);
        TempDirectory dir("sparkv-faults");
        auto backend = std::make_shared<FilesystemBackend>(dir.path());
        ContextStore store(backend);
        const auto context =
            cli::context_of_length(device.model(), cli::read_text_file(doc), tokens);
        const std::string id =
            cli::ingest_tokens(device.model(), store, context, {"fp16", "q5h"}, 0, "ingest");
        const auto trace = std::make_shared<const LinkTrace>(LinkTrace::load(trace_path));
        const std::string json_dir = std::filesystem::path(json_out).parent_path().string();
        const auto svg_path = [&](const std::string& name) {
            return (std::filesystem::path(json_dir.empty() ? "." : json_dir) /
                    ("faults-" + name + ".svg"))
                .string();
        };
        const auto ask = [&](const cli::LoopbackServer& server, plan::Policy policy,
                             bool controller, const std::string& level = "") {
            runtime::AskOptions a;
            a.server = server.address();
            a.context_id = id;
            a.question = "Summarize the text above in one sentence.";
            a.policy = policy;
            a.n_predict = 16;
            a.level = level;
            a.controller.enabled = controller;
            return device.ask(a);
        };
        const auto wants = [&](const char* s) { return scenarios.find(s) != std::string::npos; };
        LinkConfig link;
        link.trace = trace;
        link.trace_scale = scale;
        nlohmann::json out = {{"trace", trace->name()},
                              {"scale", scale},
                              {"context_tokens", tokens},
                              {"repeat", repeat}};

        if (wants("kill")) {
            Stats local, killed;
            size_t failures = 0;
            bool answered = true;
            for (int r = 0; r < repeat; ++r) {
                cli::LoopbackServer server(backend, link);
                local.ttft_ms.push_back(ask(server, plan::Policy::local, true).ttft_ms);
                cli::LoopbackServer doomed(backend, link);
                std::thread killer([&] {
                    std::this_thread::sleep_for(std::chrono::duration<double>(kill_after));
                    doomed.stop();
                });
                const auto res = ask(doomed, plan::Policy::sparkv, true);
                killer.join();
                killed.ttft_ms.push_back(res.ttft_ms);
                failures += res.failures.size();
                answered = answered && !res.answer_tokens.empty();
                if (r == 0) cli::write_timeline_svg(res, svg_path("kill"), {});
                std::fprintf(stderr,
                             "kill: local %.0f ms, sparkv with the server killed at %.0f s: %.0f "
                             "ms (%zu failures)\n",
                             local.ttft_ms.back(), kill_after, res.ttft_ms, res.failures.size());
            }
            out["kill"] = {{"local", stats_json(local)},
                           {"sparkv_server_killed", stats_json(killed)},
                           {"ratio_vs_local", killed.median_ttft() / local.median_ttft()},
                           {"unit_failures", failures},
                           {"answered", answered}};
        }
        if (wants("corrupt")) {
            // The lossless level is ~4x the default's bytes: at the trace's own capacity the
            // stream plan would compute every chunk and never touch the corrupt unit, so this
            // scenario streams over the trace at 16x its capacity.
            LinkConfig fast = link;
            fast.trace_scale = scale * 16;
            cli::LoopbackServer server(backend, fast);
            const auto clean = ask(server, plan::Policy::stream, true, "fp16");
            const auto file = backend->root() / unit_key(store.read_manifest(id), "fp16", 1, 5);
            std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(300);
            char c = 0;
            f.read(&c, 1);
            c ^= 0x10;
            f.seekp(300);
            f.write(&c, 1);
            f.close();
            const auto corrupt = ask(server, plan::Policy::stream, true, "fp16");
            c ^= 0x10;
            std::fstream g(file, std::ios::in | std::ios::out | std::ios::binary);
            g.seekp(300);
            g.write(&c, 1);
            nlohmann::json kinds = nlohmann::json::array();
            for (const auto& fl : corrupt.failures) kinds.push_back(failure_kind_name(fl.kind));
            out["corrupt"] = {
                {"failures", kinds},
                {"units_computed", corrupt.units_computed},
                {"same_answer_as_lossless", corrupt.answer_tokens == clean.answer_tokens},
                {"ttft_ms", corrupt.ttft_ms},
                {"clean_ttft_ms", clean.ttft_ms}};
            std::fprintf(stderr, "corrupt: %zu failure(s), answer %s the lossless one\n",
                         corrupt.failures.size(),
                         corrupt.answer_tokens == clean.answer_tokens ? "equals" : "DIFFERS FROM");
        }
        const auto with_without = [&](const char* name, const LinkConfig& l, double hog_at) {
            Stats on, off;
            for (int r = 0; r < repeat; ++r)
                for (bool controller : {true, false}) {
                    cli::LoopbackServer server(backend, l);
                    std::optional<runtime::BackgroundLoad> hog;
                    std::thread starter;
                    if (hog_at >= 0)
                        starter = std::thread([&] {
                            std::this_thread::sleep_for(std::chrono::duration<double>(hog_at));
                            hog.emplace(1.0);
                        });
                    const auto res = ask(server, plan::Policy::sparkv, controller);
                    if (starter.joinable()) starter.join();
                    hog.reset();
                    (controller ? on : off).ttft_ms.push_back(res.ttft_ms);
                    (controller ? on : off).migrations.push_back(res.controller_migrations);
                    if (r == 0)
                        cli::write_timeline_svg(
                            res,
                            svg_path(std::string(name) +
                                     (controller ? "-controller" : "-no-controller")),
                            {});
                    std::fprintf(stderr, "%s: controller %s: %.0f ms, %d migrations\n", name,
                                 controller ? "on " : "off", res.ttft_ms,
                                 res.controller_migrations);
                }
            out[name] = {{"controller", stats_json(on)},
                         {"no_controller", stats_json(off)},
                         {"speedup", off.median_ttft() / on.median_ttft()}};
        };
        if (wants("halve")) {
            LinkConfig halved;
            halved.trace = halved_after(*trace, halve_after);
            halved.trace_scale = scale;
            with_without("halve", halved, -1);
        }
        if (wants("hog")) with_without("hog", link, hog_after);
        std::ofstream(json_out) << out.dump(2) << "\n";
    } catch (const Error& e) {
        std::fprintf(stderr, "runtime_faults: %s\n", e.what());
        return 1;
    }
    return 0;
}
