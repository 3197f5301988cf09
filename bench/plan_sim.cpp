// The planner alone, without noise: every policy planned on the cost instance of a real stored
// context and this device's profile, then simulated on each real trace (plan/simulator.h). The
// policies plan with the trace's mean rate over its first seconds (what the stream lane learns
// quickly), the oracle with the whole realised trace; no controller runs here. Prints TTFT per
// policy and the ratios the runtime issue asks about, and can sweep the greedy's stage length.
//
//   build/bench/plan_sim --manifest STORE/contexts/ID/manifest.json --traces a.down,b.down
//       --scales 1,4,16 [--stage-s 0.25,0.5,1] [--json]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/timer.h"
#include "net/link_trace.h"
#include "plan/policy.h"
#include "plan/simulator.h"
#include "runtime/cost_builder.h"
#include "store/manifest.h"

using namespace sparkv;

namespace {

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Simulate every policy's plan on real traces (planner quality without noise)"};
    std::string manifest_path, profile_path, traces, scales = "1,4,16", level, stages = "0.5";
    double availability = 1.0, probe_s = 3.0;
    int question_tokens = 30;
    bool json = false;
    app.add_option("--manifest", manifest_path, "A stored context's manifest.json")->required();
    app.add_option("--profile", profile_path, "Device profile (default: the cached one)")
        ->required();
    app.add_option("--traces", traces, "Mahimahi traces, comma-separated")->required();
    app.add_option("--scales", scales, "Capacity scales")->capture_default_str();
    app.add_option("--level", level, "Level to stream (default: q5h if stored)");
    app.add_option("--stage-s", stages, "Stage lengths of the greedy to compare")
        ->capture_default_str();
    app.add_option("--availability", availability, "CPU availability")->capture_default_str();
    app.add_option("--probe-s", probe_s,
                   "Seconds of the trace the planners' bandwidth estimate averages")
        ->capture_default_str();
    app.add_option("--question-tokens", question_tokens, "Question length")->capture_default_str();
    app.add_flag("--json", json, "Print JSON");
    CLI11_PARSE(app, argc, argv);
    try {
        std::ifstream in(manifest_path);
        std::stringstream text;
        text << in.rdbuf();
        const Manifest m = Manifest::parse(text.str());
        const auto profile = plan::DeviceProfile::load(profile_path);
        int level_index = level.empty() ? m.level_index("q5h") : m.require_level(level);
        if (level_index < 0) level_index = 0;
        const auto costs =
            runtime::build_costs(m, profile, availability, level_index, 0.0, question_tokens);

        nlohmann::json out = nlohmann::json::array();
        std::vector<std::string> policies = {"local", "stream", "cake", "sparkv", "oracle"};
        if (!json)
            std::printf("%-28s %6s %8s %8s %8s %8s %8s %7s  %s\n", "trace", "stage", "local",
                        "stream", "cake", "sparkv", "oracle", "bound",
                        "sparkv/best  sparkv/oracle  plan ms");
        for (const auto& trace_path : split(traces)) {
            const auto trace = LinkTrace::load(trace_path);
            for (const auto& scale_text : split(scales)) {
                const double scale = std::stod(scale_text);
                const plan::TraceLink realised(trace.timestamps_ms(), scale, 0.05);
                const double bandwidth = realised.mean_rate(0, probe_s);
                for (const auto& stage_text : split(stages)) {
                    plan::PlannerSettings settings;
                    settings.stage_s = std::stod(stage_text);
                    nlohmann::json row = {
                        {"trace", std::filesystem::path(trace_path).filename().string()},
                        {"scale", scale},
                        {"stage_s", settings.stage_s}};
                    double sparkv_plan_ms = 0, bound = 0;
                    for (const auto& name : policies) {
                        const auto policy = plan::policy_from_name(name);
                        const double t0 = now_seconds();
                        const auto p =
                            plan::make_plan(policy, costs, bandwidth, settings, &realised);
                        if (policy == plan::Policy::sparkv)
                            sparkv_plan_ms = (now_seconds() - t0) * 1e3;
                        if (policy == plan::Policy::oracle) bound = p.lower_bound_s;
                        row["ttft_s"][name] = plan::simulate(costs, p, realised).ttft_s;
                    }
                    const auto& t = row["ttft_s"];
                    const double best =
                        std::min({t["local"].get<double>(), t["stream"].get<double>(),
                                  t["cake"].get<double>()});
                    row["sparkv_vs_best"] = t["sparkv"].get<double>() / best;
                    row["sparkv_vs_oracle"] = t["sparkv"].get<double>() / t["oracle"].get<double>();
                    row["lower_bound_s"] = bound;
                    row["sparkv_plan_ms"] = sparkv_plan_ms;
                    out.push_back(row);
                    if (!json)
                        std::printf(
                            "%-28s %6.2f %8.2f %8.2f %8.2f %8.2f %8.2f %7.2f  %10.2f  %13.2f  "
                            "%7.1f\n",
                            (row["trace"].get<std::string>() + " x" + scale_text).c_str(),
                            settings.stage_s, t["local"].get<double>(), t["stream"].get<double>(),
                            t["cake"].get<double>(), t["sparkv"].get<double>(),
                            t["oracle"].get<double>(), bound, row["sparkv_vs_best"].get<double>(),
                            row["sparkv_vs_oracle"].get<double>(), sparkv_plan_ms);
                }
            }
        }
        if (json) std::printf("%s\n", out.dump(2).c_str());
    } catch (const Error& e) {
        std::fprintf(stderr, "plan_sim: %s\n", e.what());
        return 1;
    }
    return 0;
}
