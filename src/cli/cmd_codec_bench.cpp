// `sparkv codec-bench`: size, speed and fidelity of every codec level on a real model and text.
//
// Fidelity is measured twice. "deployed" runs the model as given (Q4_1 weights, Q8 activations,
// like llama.cpp): what a user gets, but any change to the KV, even one ulp, flips activation
// rounding, so it carries the engine's own noise floor (reported). "precise" runs an F32 copy of
// the same weights with fp32 activations: the codec's own effect on the model.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cloud/codec_eval.h"
#include "codec/codec.h"
#include "codec/profile.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/convert.h"
#include "engine/engine.h"
#include "engine/prompt.h"

namespace sparkv::cli {

namespace {

// Plus the calibrated levels of the model's codec profile, when there is one.
constexpr const char* kDefaultLevels = "fp16,int8,q6h,q5h,q4h,q3h";

struct CodecBenchOptions {
    std::string model;
    std::string doc;
    CodecEvalOptions eval;
    std::string levels = kDefaultLevels;
    std::string sparse_taus;
    std::string profile;
    bool no_precise = false;
    bool json = false;
};

std::vector<float> parse_taus(const std::string& list) {
    std::vector<float> taus;
    std::stringstream s(list);
    for (std::string item; std::getline(s, item, ',');) {
        if (item.empty()) continue;
        size_t used = 0;
        float tau = 0;
        try {
            tau = std::stof(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != item.size()) fail("--sparse-tau: '{}' is not a number", item);
        taus.push_back(tau);
    }
    return taus;
}

nlohmann::json fidelity_json(const LevelEval& l) {
    return {{"kl_mean", l.kl_mean},
            {"kl_max", l.kl_max},
            {"top1_agree", l.top1_agree},
            {"greedy_agree_32", l.greedy_agree_32},
            {"ppl", l.ppl},
            {"ppl_change_rel", l.ppl_change_rel}};
}

// Runs the evaluation on an F32 copy of the model written to a temporary directory.
CodecEvalResult evaluate_precise(const Model& model, const std::vector<int32_t>& tokens,
                                 const CodecEvalOptions& opt) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("sparkv-codec-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    struct Cleanup {
        std::filesystem::path p;
        ~Cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(p, ec);
        }
    } cleanup{dir};
    const std::string path = (dir / "model-f32.gguf").string();
    write_converted_model(model.file(), GgmlType::F32, path);
    const auto precise = Model::load(path);
    CodecEvalOptions popt = opt;
    // Same tables for the F32 copy (another fingerprint, hence another profile hash).
    if (popt.profile) popt.profile->model_fingerprint = precise->fingerprint();
    return evaluate_codec(*precise, tokens, popt);
}

void print_table(const char* title, const CodecEvalResult& r, bool sizes,
                 const std::string& default_level) {
    std::printf("\n%s: exact-KV perplexity %.4f\n", title, r.exact_ppl);
    if (sizes)
        std::printf("%-11s %9s %8s %9s %9s %9s %10s %7s %7s %9s\n", "level", "B/token", "vs fp16",
                    "enc MB/s", "dec MB/s", "dec out", "KL mean", "top-1", "greedy", "ppl chg");
    else
        std::printf("%-11s %10s %7s %7s %9s\n", "level", "KL mean", "top-1", "greedy", "ppl chg");
    auto row = [&](const LevelEval& l, bool with_sizes) {
        std::printf("%-11s ", l.name.c_str());
        if (with_sizes)
            std::printf("%9.1f %7.2fx %9.0f %9.0f %9.0f ", l.bytes_per_token, l.ratio_vs_fp16,
                        l.encode_mb_s, l.decode_mb_s, l.decode_output_mb_s);
        else if (sizes)
            std::printf("%9s %8s %9s %9s %9s ", "-", "-", "-", "-", "-");
        std::printf("%10.2e %6.1f%% %6.1f%% %+8.3f%%%s\n", l.kl_mean, 100 * l.top1_agree,
                    100 * l.greedy_agree_32, 100 * l.ppl_change_rel,
                    l.name == default_level ? "  (default)" : "");
    };
    for (const auto& l : r.levels) row(l, sizes);
    for (const auto& sp : r.sparse) row(sp.fidelity, false);
    row(r.noise_floor, false);
}

void print_sparse(const CodecEvalResult& r) {
    if (r.sparse.empty()) return;
    std::printf("\nsparse prefill of the context (block %d): dense prefill %.2f s\n",
                r.sparse[0].options.block, r.exact_prefill_seconds);
    std::printf("%-8s %9s %10s %8s\n", "tau", "density", "prefill s", "speedup");
    for (const auto& sp : r.sparse)
        std::printf("%-8.3f %9.3f %10.2f %7.2fx\n", sp.options.tau, sp.density, sp.prefill_seconds,
                    r.exact_prefill_seconds / sp.prefill_seconds);
}

int run(CodecBenchOptions opt) {
    const std::string model_path = resolve_model_path(opt.model);
    const std::string doc_path = opt.doc.empty() ? demo_text_path() : opt.doc;
    std::ifstream f(doc_path, std::ios::binary);
    if (!f)
        fail("cannot read {} (run `sparkv model --fetch` for the demo text, or pass --doc)",
             doc_path);
    std::ostringstream text;
    text << f.rdbuf();

    const auto model = Model::load(model_path);
    const auto tokens = context_tokens(*model, text.str(), PromptFormat::raw);
    opt.eval.sparse_taus = parse_taus(opt.sparse_taus);
    for (float tau : opt.eval.sparse_taus) {
        SparseAttentionOptions check = opt.eval.sparse;
        check.tau = tau;
        kernels::validate(check);
    }
    const std::string profile_path =
        opt.profile.empty() ? codec::find_model_profile_path(model->fingerprint()) : opt.profile;
    if (!profile_path.empty()) {
        opt.eval.profile = codec::load_profile(profile_path);
        if (opt.eval.profile->model_fingerprint != model->fingerprint())
            fail("codec profile {} is for model {:016x}, not {} ({:016x})", profile_path,
                 opt.eval.profile->model_fingerprint, model_path, model->fingerprint());
        if (opt.levels == kDefaultLevels)
            for (const auto& t : opt.eval.profile->levels)
                opt.levels += "," + std::string(codec::level_name(t.level));
    }
    opt.eval.levels.clear();
    std::stringstream list(opt.levels);
    for (std::string item; std::getline(list, item, ',');)
        if (!item.empty()) opt.eval.levels.push_back(item);
    if (!opt.json)
        opt.eval.on_stage = [](const std::string& s) {
            std::fprintf(stderr, "codec-bench: %s\n", s.c_str());
        };

    const CodecEvalResult deployed = evaluate_codec(*model, tokens, opt.eval);
    CodecEvalResult precise;
    if (!opt.no_precise) {
        if (opt.eval.on_stage) opt.eval.on_stage("precise run on an F32 copy of the model");
        CodecEvalOptions popt = opt.eval;
        popt.timing_repeats = 1;  // sizes and speeds come from the deployed run
        precise = evaluate_precise(*model, tokens, popt);
    }
    // The model's default: its profile's default level, or q5h.
    const std::string default_level(codec::level_name(
        codec::default_lossy_level(opt.eval.profile ? &*opt.eval.profile : nullptr)));

    if (opt.json) {
        nlohmann::json j;
        j["model"] = model_path;
        j["doc"] = doc_path;
        j["context_tokens"] = deployed.context_tokens;
        j["continuation_tokens"] = deployed.continuation_tokens;
        j["exact_ppl"] = deployed.exact_ppl;
        j["default_level"] = default_level;
        if (opt.eval.profile)
            j["profile"] = {{"path", profile_path},
                            {"hash", fmt::format("{:016x}", opt.eval.profile->hash())}};
        j["noise_floor"] = fidelity_json(deployed.noise_floor);
        if (!opt.no_precise) {
            j["exact_ppl_precise"] = precise.exact_ppl;
            j["noise_floor_precise"] = fidelity_json(precise.noise_floor);
        }
        j["levels"] = nlohmann::json::array();
        for (size_t i = 0; i < deployed.levels.size(); ++i) {
            const auto& l = deployed.levels[i];
            nlohmann::json e = fidelity_json(l);
            e.update({{"name", l.name},
                      {"lossless", l.lossless},
                      {"bytes", l.bytes},
                      {"bytes_per_token", l.bytes_per_token},
                      {"ratio_vs_fp16", l.ratio_vs_fp16},
                      {"encode_mb_s", l.encode_mb_s},
                      {"decode_mb_s", l.decode_mb_s},
                      {"decode_output_mb_s", l.decode_output_mb_s}});
            if (!opt.no_precise) e["precise"] = fidelity_json(precise.levels[i]);
            j["levels"].push_back(e);
        }
        j["exact_prefill_seconds"] = deployed.exact_prefill_seconds;
        j["sparse"] = nlohmann::json::array();
        for (size_t i = 0; i < deployed.sparse.size(); ++i) {
            const auto& sp = deployed.sparse[i];
            nlohmann::json e = fidelity_json(sp.fidelity);
            e.update({{"tau", sp.options.tau},
                      {"block", sp.options.block},
                      {"min_similarity", sp.options.min_similarity},
                      {"density", sp.density},
                      {"prefill_seconds", sp.prefill_seconds}});
            if (!opt.no_precise) e["precise"] = fidelity_json(precise.sparse[i].fidelity);
            j["sparse"].push_back(e);
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("codec-bench: %s\n  %lld context tokens + %lld continuation tokens of %s\n",
                model_path.c_str(), static_cast<long long>(deployed.context_tokens),
                static_cast<long long>(deployed.continuation_tokens), doc_path.c_str());
    print_table("deployed model (as given: quantised weights and activations)", deployed, true,
                default_level);
    print_sparse(deployed);
    if (!opt.no_precise)
        print_table("precise (F32 copy of the weights, fp32 activations): the codec's own effect",
                    precise, false, default_level);
    std::printf(
        "\nMB/s on 1 thread; dec MB/s counts encoded input, dec out counts fp16 output.\n"
        "greedy = common prefix of %d greedy answer tokens; ppl chg = perplexity vs exact KV.\n",
        opt.eval.greedy_tokens);
    return 0;
}

}  // namespace

CommandRunner add_codec_bench_command(CLI::App& app) {
    auto opt = std::make_shared<CodecBenchOptions>();
    auto* cmd = app.add_subcommand(
        "codec-bench", "Size, speed and fidelity of every KV codec level on a real model and text");
    cmd->add_option("--model", opt->model,
                    "GGUF file or known model name (default: the reference model)");
    cmd->add_option("--doc", opt->doc,
                    "Text file (default: the demo text, Lincoln's 1862 State of the Union)");
    cmd->add_option("--context-tokens", opt->eval.context_tokens, "Context length")
        ->capture_default_str();
    cmd->add_option("--continuation-tokens", opt->eval.continuation_tokens,
                    "Real continuation scored for perplexity and KL")
        ->capture_default_str();
    cmd->add_option("--chunk-tokens", opt->eval.chunk_tokens, "Tokens per unit")
        ->capture_default_str();
    cmd->add_option("--levels", opt->levels, "Levels to measure, comma-separated")
        ->capture_default_str();
    cmd->add_option("--question", opt->eval.question, "Question whose greedy answer is compared")
        ->capture_default_str();
    cmd->add_option("--threads,-t", opt->eval.threads,
                    "Model threads (codec timings use 1 thread)");
    cmd->add_option("--sparse-tau", opt->sparse_taus,
                    "Also score the context prefilled with block-sparse attention at each of "
                    "these taus (comma-separated, in (0, 1]) against the exact dense KV");
    cmd->add_option("--sparse-block", opt->eval.sparse.block,
                    "Block size of the sparse rows (16, 32 or 64)")
        ->capture_default_str();
    cmd->add_option("--profile", opt->profile,
                    "Codec profile for the calibrated levels (default: the model's profile in "
                    "the cache, else the one shipped for it, if any; see codec-calibrate)");
    cmd->add_flag("--no-precise", opt->no_precise, "Skip the F32 (precise) fidelity run");
    cmd->add_flag("--json", opt->json, "Print JSON (default_level, levels[...], noise_floor)");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
