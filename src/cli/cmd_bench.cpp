// `sparkv bench`: every policy on every (trace, scale, context length) cell, in one run, on the
// same machine: a server on loopback replays each link, the document is ingested at each length,
// and the policies take turns within each repeat. Writes medians (JSON, Markdown, SVG).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/harness.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/svg_chart.h"
#include "common/temp_dir.h"
#include "common/timer.h"
#include "engine/prompt.h"

namespace sparkv::cli {

namespace {

struct BenchOptions {
    std::string model;
    std::string doc;
    std::string traces;
    std::string scales = "1";
    std::string lengths = "4096";
    std::string policies = "local,stream,cake,sparkv,oracle";
    int repeat = 3;
    std::string json_out;
    std::string markdown_out;
    std::string plot_out;
    int threads = 0;
    std::string question = "Summarize the text above in one sentence.";
    int answer_tokens = 1;
    std::string power = "phone";
    double rtt_ms = 0;
    int connections = ClientConfig{}.connections;
    std::string store_dir;
    std::string timelines_dir;
};

struct Run {
    double ttft_ms, energy_j;
    size_t computed, streamed;
    int migrations;
    double planning_ms;
};

struct Cell {
    std::string trace;
    double scale;
    int64_t tokens;
    std::map<std::string, std::vector<Run>> runs;  // by policy
    int64_t tokens_used = 0;                       // context tokens really used (see run())
    double median_ttft(const std::string& p) const {
        std::vector<double> v;
        for (const auto& r : runs.at(p)) v.push_back(r.ttft_ms);
        return median(v);
    }
    double median_energy(const std::string& p) const {
        std::vector<double> v;
        for (const auto& r : runs.at(p)) v.push_back(r.energy_j);
        return median(v);
    }
};

std::string cell_label(const Cell& c) {
    return fmt::format("{} x{:g}", std::filesystem::path(c.trace).stem().string(), c.scale);
}

nlohmann::json cell_json(const Cell& c, const std::vector<std::string>& policies) {
    nlohmann::json ttft = nlohmann::json::object(), energy = nlohmann::json::object(),
                   runs = nlohmann::json::object();
    for (const auto& p : policies) {
        ttft[p] = c.median_ttft(p);
        energy[p] = c.median_energy(p);
        nlohmann::json list = nlohmann::json::array();
        for (const auto& r : c.runs.at(p))
            list.push_back({{"ttft_ms", r.ttft_ms},
                            {"energy_j", r.energy_j},
                            {"units_computed", r.computed},
                            {"units_streamed", r.streamed},
                            {"controller_migrations", r.migrations},
                            {"planning_ms", r.planning_ms}});
        runs[p] = list;
    }
    nlohmann::json j = {{"trace", std::filesystem::path(c.trace).filename().string()},
                        {"scale", c.scale},
                        {"context_tokens", c.tokens},
                        {"context_tokens_used", c.tokens_used},
                        {"ttft_ms", ttft},
                        {"energy_j", energy},
                        {"runs", runs}};
    const auto has = [&](const char* p) { return c.runs.count(p) > 0; };
    if (has("sparkv") && has("local") && has("stream") && has("cake")) {
        const double best =
            std::min({c.median_ttft("local"), c.median_ttft("stream"), c.median_ttft("cake")});
        const double single = std::min(c.median_ttft("local"), c.median_ttft("stream"));
        const double spread = std::max(c.median_ttft("local"), c.median_ttft("stream")) / single;
        j["sparkv_vs_best_baseline"] = c.median_ttft("sparkv") / best;
        j["single_paths_within_2x"] = spread <= 2.0;
        j["speedup_vs_best_single_path"] = single / c.median_ttft("sparkv");
    }
    if (has("sparkv") && has("oracle"))
        j["sparkv_vs_oracle"] = c.median_ttft("sparkv") / c.median_ttft("oracle");
    return j;
}

int run(const BenchOptions& opt) {
    const auto trace_files = split_list(opt.traces);
    if (trace_files.empty()) fail("--traces: give at least one Mahimahi trace file");
    const auto scales = parse_numbers(opt.scales, "--trace-scale");
    std::vector<int64_t> lengths;
    for (double v : parse_numbers(opt.lengths, "--context-tokens"))
        lengths.push_back(static_cast<int64_t>(v));
    const auto policies = split_list(opt.policies);
    for (const auto& p : policies) plan::policy_from_name(p);
    if (opt.repeat < 1) fail("--repeat must be at least 1");
    runtime::power_profile(opt.power);
    std::vector<std::shared_ptr<const LinkTrace>> traces;
    for (const auto& f : trace_files)
        traces.push_back(std::make_shared<const LinkTrace>(LinkTrace::load(f)));
    const std::string document = read_text_file(opt.doc);
    if (!opt.timelines_dir.empty()) std::filesystem::create_directories(opt.timelines_dir);
    const double t_start = now_seconds();

    runtime::DeviceOptions device_options;
    device_options.model_path = opt.model;
    device_options.threads = opt.threads;
    const auto device_ptr = open_device(std::move(device_options));
    runtime::Device& device = *device_ptr;

    // The store: a temporary directory unless the caller keeps one (re-runs skip the ingest).
    std::optional<TempDirectory> temporary;
    std::string store_dir = opt.store_dir;
    if (store_dir.empty()) store_dir = temporary.emplace("sparkv-bench").path().string();
    auto backend = std::make_shared<FilesystemBackend>(store_dir);
    ContextStore store(backend);
    const std::string default_level = device.default_level();
    std::vector<std::string> levels = {default_level};
    if (default_level != "q3h") levels.push_back("q3h");  // smaller, for CacheGen's adaptation
    std::map<int64_t, std::string> contexts;
    std::map<int64_t, int64_t> used;  // tokens each length's context really has
    // The model never runs past the window it was trained for: a length that leaves no room for
    // the question and the answer is shortened by what they need (and the JSON says so).
    const int64_t window = device.model().config().n_ctx_train;
    const int64_t asked = static_cast<int64_t>(
        question_tokens(device.model(), opt.question, default_prompt_format(device.model()))
            .size());
    for (int64_t n : lengths) {
        used[n] = std::min(n, window - asked - opt.answer_tokens - 1);
        if (used[n] < 1) fail("the question does not fit the model's {}-token window", window);
        if (used[n] < n)
            std::fprintf(stderr,
                         "bench: %lld-token cells use %lld context tokens: the question (%lld) and "
                         "the answer (%d) must fit the model's %lld-token window too\n",
                         static_cast<long long>(n), static_cast<long long>(used[n]),
                         static_cast<long long>(asked), opt.answer_tokens,
                         static_cast<long long>(window));
        const auto tokens = context_of_length(device.model(), document, used[n]);
        contexts[n] = ingest_tokens(device.model(), store, tokens, levels, opt.threads,
                                    fmt::format("ingest {} tokens", n));
    }

    std::vector<Cell> cells;
    const size_t total_runs = traces.size() * scales.size() * lengths.size() *
                              static_cast<size_t>(opt.repeat) * policies.size();
    size_t done = 0;
    for (size_t ti = 0; ti < traces.size(); ++ti)
        for (double scale : scales) {
            LinkConfig link;
            link.trace = traces[ti];
            link.trace_scale = scale;
            link.rtt_ms = opt.rtt_ms;
            link.validate();
            LoopbackServer server(backend, link);
            for (int64_t n : lengths) {
                Cell cell{trace_files[ti], scale, n, {}};
                for (int r = 0; r < opt.repeat; ++r) {
                    std::vector<double> local_costs;
                    for (const auto& p : policies) {
                        runtime::AskOptions ask;
                        ask.server = server.address();
                        ask.context_id = contexts[n];
                        ask.question = opt.question;
                        ask.policy = plan::policy_from_name(p);
                        ask.n_predict = opt.answer_tokens;
                        ask.power_profile = opt.power;
                        ask.connections = opt.connections;
                        if (ask.policy == plan::Policy::oracle) {
                            ask.realised_link = server.realised();
                            ask.measured_compute_s =
                                local_costs;  // "measured costs", when local ran
                        }
                        const auto result = device.ask(ask);
                        if (ask.policy == plan::Policy::local) local_costs = result.unit_compute_s;
                        if (!opt.timelines_dir.empty()) {
                            const auto path =
                                std::filesystem::path(opt.timelines_dir) /
                                fmt::format("{}-x{:g}-{}-r{}-{}.json",
                                            std::filesystem::path(cell.trace).stem().string(),
                                            scale, n, r + 1, p);
                            std::ofstream out(path);
                            out << result.timeline->to_json().dump(1) << "\n";
                            if (!out) fail("cannot write {}", path.string());
                        }
                        cell.runs[p].push_back({result.ttft_ms, result.energy.total_j,
                                                result.units_computed, result.units_streamed,
                                                result.controller_migrations, result.planning_ms});
                        ++done;
                        std::fprintf(
                            stderr,
                            "[%zu/%zu %.0fs] %s, %lld tokens, repeat %d: %-6s TTFT %8.0f ms, "
                            "%3zu computed / %3zu streamed, %d migrations\n",
                            done, total_runs, now_seconds() - t_start, cell_label(cell).c_str(),
                            static_cast<long long>(n), r + 1, p.c_str(), result.ttft_ms,
                            result.units_computed, result.units_streamed,
                            result.controller_migrations);
                    }
                }
                cell.tokens_used = used[n];
                cells.push_back(std::move(cell));
            }
        }

    // Reports.
    nlohmann::json out;
    out["model"] = device.model().config().name;
    out["threads"] = device.threads();
    out["repeat"] = opt.repeat;
    out["policies"] = policies;
    out["energy_note"] = "energy is modelled: measured time x the '" + opt.power + "' power model";
    out["rtt_ms"] = opt.rtt_ms;
    out["connections"] = opt.connections;
    out["seconds"] = now_seconds() - t_start;
    out["cells"] = nlohmann::json::array();
    std::vector<double> vs_oracle;
    for (const auto& c : cells) {
        out["cells"].push_back(cell_json(c, policies));
        if (out["cells"].back().contains("sparkv_vs_oracle"))
            vs_oracle.push_back(out["cells"].back()["sparkv_vs_oracle"]);
    }
    if (!vs_oracle.empty()) out["median_sparkv_vs_oracle"] = median(vs_oracle);
    std::ofstream(opt.json_out) << out.dump(2) << "\n";

    if (!opt.markdown_out.empty()) {
        std::ofstream md(opt.markdown_out);
        md << fmt::format(
            "Median TTFT (s) over {} repeats, {} threads; energy is modelled ({}).\n\n", opt.repeat,
            device.threads(), opt.power);
        md << "| trace | scale | tokens |";
        for (const auto& p : policies) md << " " << p << " |";
        md << " sparkv / best baseline | sparkv / oracle | energy sparkv / local "
              "|\n|---|---:|---:|";
        for (size_t i = 0; i < policies.size() + 3; ++i) md << "---:|";
        md << "\n";
        for (size_t i = 0; i < cells.size(); ++i) {
            const auto& c = cells[i];
            const auto& j = out["cells"][i];
            md << fmt::format("| {} | {:g} | {} |",
                              std::filesystem::path(c.trace).filename().string(), c.scale,
                              c.tokens);
            for (const auto& p : policies) md << fmt::format(" {:.2f} |", c.median_ttft(p) / 1e3);
            md << (j.contains("sparkv_vs_best_baseline")
                       ? fmt::format(" {:.2f} |", j["sparkv_vs_best_baseline"].get<double>())
                       : " |");
            md << (j.contains("sparkv_vs_oracle")
                       ? fmt::format(" {:.2f} |", j["sparkv_vs_oracle"].get<double>())
                       : " |");
            md << (c.runs.count("sparkv") && c.runs.count("local")
                       ? fmt::format(" {:.2f} |",
                                     c.median_energy("sparkv") / c.median_energy("local"))
                       : " |");
            md << "\n";
        }
    }
    if (!opt.plot_out.empty()) {
        std::vector<std::string> charts;
        for (int64_t n : lengths) {
            std::vector<std::string> groups;
            std::vector<svg::Series> series;
            for (const auto& p : policies) series.push_back({p, {}, {}, ""});
            for (const auto& c : cells) {
                if (c.tokens != n) continue;
                groups.push_back(cell_label(c));
                for (size_t k = 0; k < policies.size(); ++k)
                    series[k].values.push_back(c.median_ttft(policies[k]) / 1e3);
            }
            svg::ChartOptions o;
            o.title =
                fmt::format("Time to first token, {}-token context (median of {})", n, opt.repeat);
            o.subtitle = fmt::format("{}, {} threads; link: trace x scale replayed on loopback",
                                     device.model().config().name, device.threads());
            o.y_label = "TTFT (s, log scale)";
            o.x_label = "link condition";
            o.log_y = true;
            o.width = std::max(960.0, 110.0 * static_cast<double>(groups.size()) + 250);
            charts.push_back(svg::bar_chart(groups, series, o));
        }
        std::ofstream(opt.plot_out) << svg::stack(charts);
    }
    std::fprintf(stderr, "bench: %zu runs in %.0f s; results in %s\n", done,
                 now_seconds() - t_start, opt.json_out.c_str());
    return 0;
}

}  // namespace

CommandRunner add_bench_command(CLI::App& app) {
    auto opt = std::make_shared<BenchOptions>();
    auto* cmd = app.add_subcommand(
        "bench", "Run every policy on every link condition and context length; report medians");
    cmd->add_option("--model", opt->model, "GGUF model (default: the reference model)");
    cmd->add_option("--doc", opt->doc, "Document to build the contexts from")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--traces", opt->traces, "Mahimahi traces, comma-separated")->required();
    cmd->add_option("--trace-scale", opt->scales, "Capacity scales, comma-separated")
        ->capture_default_str();
    cmd->add_option("--context-tokens", opt->lengths, "Context lengths, comma-separated")
        ->capture_default_str();
    cmd->add_option("--policies", opt->policies, "Policies, comma-separated")
        ->capture_default_str();
    cmd->add_option("--repeat", opt->repeat, "Repeats of every cell")->capture_default_str();
    cmd->add_option("--json", opt->json_out, "Where to write the JSON results")->required();
    cmd->add_option("--markdown", opt->markdown_out, "Also write a Markdown table");
    cmd->add_option("--plot", opt->plot_out, "Also write an SVG chart");
    cmd->add_option("--threads,-t", opt->threads, "Compute lane threads (default: all cores)");
    cmd->add_option("--question", opt->question, "The question asked every time")
        ->capture_default_str();
    cmd->add_option("--answer-tokens", opt->answer_tokens, "Tokens generated per answer")
        ->capture_default_str();
    cmd->add_option("--device-profile", opt->power, "Power model: phone, jetson or laptop")
        ->capture_default_str();
    cmd->add_option("--connections", opt->connections,
                    "Connections each request streams units on at once (hides round trips)")
        ->capture_default_str()
        ->check(CLI::Range(1, 8));
    cmd->add_option("--rtt-ms", opt->rtt_ms, "Base round-trip time the server adds per response")
        ->capture_default_str();
    cmd->add_option("--store", opt->store_dir, "Keep the ingested contexts in this directory");
    cmd->add_option("--timelines", opt->timelines_dir,
                    "Write every run's timeline (JSON) into this directory, one file per run");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
