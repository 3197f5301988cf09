// `sparkv codec-bench`: size, speed and fidelity of every codec level on a real model and text.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cloud/codec_eval.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/prompt.h"

namespace sparkv::cli {

namespace {

struct CodecBenchOptions {
    std::string model;
    std::string doc;
    CodecEvalOptions eval;
    std::string levels = "fp16,int8,q6h,q5h,q4h,q3h";
    bool json = false;
};

int run(CodecBenchOptions opt) {
    const std::string model_path = opt.model.empty() ? require_reference_model() : opt.model;
    const std::string doc_path = opt.doc.empty() ? demo_text_path() : opt.doc;
    std::ifstream f(doc_path, std::ios::binary);
    if (!f) fail("cannot read {} (run `sparkv model --fetch` for the demo text, or pass --doc)", doc_path);
    std::ostringstream text;
    text << f.rdbuf();

    const auto model = Model::load(model_path);
    const auto tokens = context_tokens(*model, text.str(), PromptFormat::raw);
    opt.eval.levels.clear();
    std::stringstream list(opt.levels);
    for (std::string item; std::getline(list, item, ',');)
        if (!item.empty()) opt.eval.levels.push_back(item);
    if (!opt.json) opt.eval.on_stage = [](const std::string& s) { std::fprintf(stderr, "codec-bench: %s\n", s.c_str()); };

    const CodecEvalResult r = evaluate_codec(*model, tokens, opt.eval);
    const std::string default_level(codec::level_name(codec::kDefaultLossyLevel));

    if (opt.json) {
        nlohmann::json j;
        j["model"] = model_path;
        j["doc"] = doc_path;
        j["context_tokens"] = r.context_tokens;
        j["continuation_tokens"] = r.continuation_tokens;
        j["exact_ppl"] = r.exact_ppl;
        j["default_level"] = default_level;
        j["levels"] = nlohmann::json::array();
        for (const auto& l : r.levels) {
            j["levels"].push_back({{"name", l.name}, {"lossless", l.lossless}, {"bytes", l.bytes},
                                   {"bytes_per_token", l.bytes_per_token}, {"ratio_vs_fp16", l.ratio_vs_fp16},
                                   {"encode_mb_s", l.encode_mb_s}, {"decode_mb_s", l.decode_mb_s},
                                   {"decode_output_mb_s", l.decode_output_mb_s}, {"kl_mean", l.kl_mean},
                                   {"kl_max", l.kl_max}, {"top1_agree", l.top1_agree},
                                   {"greedy_agree_32", l.greedy_agree_32}, {"ppl", l.ppl},
                                   {"ppl_change_rel", l.ppl_change_rel}});
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("codec-bench: %s, %lld context tokens + %lld continuation tokens of %s\n", model_path.c_str(),
                static_cast<long long>(r.context_tokens), static_cast<long long>(r.continuation_tokens),
                doc_path.c_str());
    std::printf("exact fp16 KV: perplexity %.4f on the continuation\n\n", r.exact_ppl);
    std::printf("%-6s %9s %8s %10s %10s %10s %9s %7s %7s %9s\n", "level", "B/token", "vs fp16", "enc MB/s",
                "dec MB/s", "dec out", "KL mean", "top-1", "greedy", "ppl chg");
    for (const auto& l : r.levels)
        std::printf("%-6s %9.1f %7.2fx %10.0f %10.0f %10.0f %9.2e %6.1f%% %6.1f%% %+8.3f%%%s\n", l.name.c_str(),
                    l.bytes_per_token, l.ratio_vs_fp16, l.encode_mb_s, l.decode_mb_s, l.decode_output_mb_s,
                    l.kl_mean, 100 * l.top1_agree, 100 * l.greedy_agree_32, 100 * l.ppl_change_rel,
                    l.name == default_level ? "  (default)" : "");
    std::printf("\nMB/s on 1 thread; dec MB/s counts encoded input, dec out counts fp16 output.\n");
    return 0;
}

}  // namespace

CommandRunner add_codec_bench_command(CLI::App& app) {
    auto opt = std::make_shared<CodecBenchOptions>();
    auto* cmd = app.add_subcommand("codec-bench", "Size, speed and fidelity of every KV codec level on a real model and text");
    cmd->add_option("--model", opt->model, "GGUF model (default: the reference model)");
    cmd->add_option("--doc", opt->doc, "Text file (default: the demo text, Lincoln's 1862 State of the Union)");
    cmd->add_option("--context-tokens", opt->eval.context_tokens, "Context length")->capture_default_str();
    cmd->add_option("--continuation-tokens", opt->eval.continuation_tokens, "Real continuation scored for perplexity and KL")
        ->capture_default_str();
    cmd->add_option("--chunk-tokens", opt->eval.chunk_tokens, "Tokens per unit")->capture_default_str();
    cmd->add_option("--levels", opt->levels, "Levels to measure, comma-separated")->capture_default_str();
    cmd->add_option("--question", opt->eval.question, "Question whose greedy answer is compared")->capture_default_str();
    cmd->add_option("--threads,-t", opt->eval.threads, "Model threads (codec timings use 1 thread)");
    cmd->add_flag("--json", opt->json, "Print JSON (default_level, levels[...])");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
