// What streaming does to the answer, end to end through the runtime: for each stored level, the
// whole context streamed at that level (and sparkv's own mix) against a local prefill of the
// same context and question -- next-token KL of the first answer token's distribution and greedy
// agreement of the first N answer tokens. With the lossless level the answers must be identical.
//
//   build/bench/runtime_fidelity --doc TEXT [--context-tokens 4096] [--questions FILE] [-n 32]
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/harness.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/temp_dir.h"
#include "runtime/device.h"

using namespace sparkv;

namespace {

double kl_divergence(const std::vector<float>& p_logits, const std::vector<float>& q_logits) {
    const auto softmax = [](const std::vector<float>& x) {
        const float m = *std::max_element(x.begin(), x.end());
        std::vector<double> p(x.size());
        double sum = 0;
        for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::exp(static_cast<double>(x[i] - m));
        for (auto& v : p) v /= sum;
        return p;
    };
    const auto p = softmax(p_logits), q = softmax(q_logits);
    double kl = 0;
    for (size_t i = 0; i < p.size(); ++i)
        if (p[i] > 0) kl += p[i] * std::log(p[i] / std::max(q[i], 1e-300));
    return kl;
}

size_t agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Answer fidelity of streamed KV through the runtime, against local prefill"};
    std::string model, doc, questions_file, json_out;
    int64_t tokens = 4096;
    int n_predict = 32;
    app.add_option("--model", model, "GGUF model (default: the reference model)");
    app.add_option("--doc", doc, "Document")->required();
    app.add_option("--context-tokens", tokens, "Context length")->capture_default_str();
    app.add_option("--questions", questions_file,
                   "One question per line (default: three built in)");
    app.add_option("-n", n_predict, "Answer tokens compared")->capture_default_str();
    app.add_option("--json", json_out, "Write the results as JSON");
    CLI11_PARSE(app, argc, argv);
    try {
        std::vector<std::string> questions = {"Summarize the text above in one sentence.",
                                              "What is the main subject of the text?",
                                              "Who is speaking, and to whom?"};
        if (!questions_file.empty()) {
            questions.clear();
            std::ifstream in(questions_file);
            for (std::string line; std::getline(in, line);)
                if (!line.empty()) questions.push_back(line);
        }
        runtime::DeviceOptions device_options;
        device_options.model_path = model;
        runtime::Device device(device_options);
        TempDirectory dir("sparkv-fidelity");
        auto backend = std::make_shared<FilesystemBackend>(dir.path());
        ContextStore store(backend);
        const auto context =
            cli::context_of_length(device.model(), cli::read_text_file(doc), tokens);
        std::vector<std::string> levels;
        for (const auto& info : codec::all_levels()) levels.emplace_back(info.name);
        const std::string id =
            cli::ingest_tokens(device.model(), store, context, levels, 0, "ingest");
        cli::LoopbackServer server(backend, {});
        const Manifest m = store.read_manifest(id);
        const auto shape = plan::ContextShape::uniform(m.n_tokens, m.chunk_size, m.n_layers());

        nlohmann::json out = {{"context_tokens", tokens},
                              {"answer_tokens", n_predict},
                              {"rows", nlohmann::json::array()}};
        std::printf("%-8s %-6s %12s %14s\n", "variant", "level", "KL (mean)", "greedy agree");
        // Local prefill answers once per question: the reference every variant is compared with.
        std::vector<runtime::AskResult> locals;
        for (const auto& q : questions) {
            runtime::AskOptions ask;
            ask.server = server.address();
            ask.context_id = id;
            ask.question = q;
            ask.n_predict = n_predict;
            ask.policy = plan::Policy::local;
            locals.push_back(device.ask(ask));
        }
        std::vector<std::pair<std::string, std::string>> variants;  // (how, level)
        for (const auto& l : levels) variants.emplace_back("stream", l);
        variants.emplace_back("sparkv", std::string(codec::level_name(codec::kDefaultLossyLevel)));
        for (const auto& [how, level] : variants) {
            double kl_sum = 0;
            size_t agree = 0, total = 0, identical = 0;
            for (size_t qi = 0; qi < questions.size(); ++qi) {
                const auto& local = locals[qi];
                runtime::AskOptions ask;
                ask.server = server.address();
                ask.context_id = id;
                ask.question = questions[qi];
                ask.n_predict = n_predict;
                ask.level = level;
                if (how == "stream") {
                    ask.fixed_plan = plan::Plan::from_prefixes(
                        shape, std::vector<int32_t>(static_cast<size_t>(shape.n_chunks()), 0),
                        static_cast<int8_t>(m.require_level(level)));
                    ask.fixed_plan->policy = "stream-all";
                } else {
                    ask.policy = plan::Policy::sparkv;
                }
                const auto r = device.ask(ask);
                kl_sum += kl_divergence(local.first_logits, r.first_logits);
                agree += agreement(local.answer_tokens, r.answer_tokens);
                total += local.answer_tokens.size();
                identical += r.answer_tokens == local.answer_tokens;
            }
            const double kl = kl_sum / static_cast<double>(questions.size());
            const double agreement_rate =
                static_cast<double>(agree) / static_cast<double>(std::max<size_t>(1, total));
            std::printf("%-8s %-6s %12.5f %13.0f%%  (%zu/%zu answers identical)\n", how.c_str(),
                        level.c_str(), kl, 100 * agreement_rate, identical, questions.size());
            out["rows"].push_back({{"variant", how},
                                   {"level", level},
                                   {"kl_mean", kl},
                                   {"greedy_agreement", agreement_rate},
                                   {"identical_answers", identical},
                                   {"questions", questions.size()}});
        }
        if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
    } catch (const Error& e) {
        std::fprintf(stderr, "runtime_fidelity: %s\n", e.what());
        return 1;
    }
    return 0;
}
