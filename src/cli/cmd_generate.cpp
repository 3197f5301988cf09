// `sparkv generate`: load a GGUF model, prefill a prompt, and generate text.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "sparkv/sparkv.h"

namespace sparkv::cli {

namespace {

struct GenerateCliOptions {
    GenerationRequest request;
    std::string prompt_file;
    bool json = false;
    bool no_stop = false;
};

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read prompt file {}", path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

int run(GenerateCliOptions opt) {
    if (opt.request.prompt.empty() == opt.prompt_file.empty())
        fail("give exactly one of --prompt TEXT or --prompt-file FILE");
    if (!opt.prompt_file.empty()) opt.request.prompt = read_file(opt.prompt_file);
    opt.request.model_path = resolve_model_path(opt.request.model_path);
    opt.request.stop_at_end_of_generation = !opt.no_stop;

    auto print_piece = [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    };
    const GenerationResult r =
        opt.json ? generate_text(opt.request) : generate_text(opt.request, print_piece);
    if (opt.json) {
        nlohmann::json j;
        j["model"] = opt.request.model_path;
        j["prompt_tokens"] = r.prompt_tokens;
        j["tokens"] = r.tokens;
        j["text"] = r.text;
        j["prefill_tok_s"] = r.prefill_tok_s;
        j["decode_tok_s"] = r.decode_tok_s;
        j["threads"] = r.threads;
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        // The answer ends its own line, flushed before the statistics go to stderr: with both
        // streams on one pipe or file, stdout's buffer would otherwise land after them.
        if (r.text.empty() || r.text.back() != '\n') std::fputc('\n', stdout);
        std::fflush(stdout);
        std::fprintf(
            stderr,
            "sparkv: %lld prompt tokens at %.1f tok/s, %zu generated at %.1f tok/s (%d threads)\n",
            static_cast<long long>(r.prompt_tokens), r.prefill_tok_s, r.tokens.size(),
            r.decode_tok_s, r.threads);
    }
    return 0;
}

}  // namespace

CommandRunner add_generate_command(CLI::App& app) {
    auto opt = std::make_shared<GenerateCliOptions>();
    auto& req = opt->request;
    auto* cmd =
        app.add_subcommand("generate", "Generate text with a GGUF model (local prefill + decode)");
    cmd->add_option(
        "--model", req.model_path,
        "GGUF file or known model name (smollm2-135m, qwen2.5-0.5b; default: the reference "
        "model, see `sparkv model --list`)");
    cmd->add_option("--prompt,-p", req.prompt, "Prompt text");
    cmd->add_option("--prompt-file,-f", opt->prompt_file, "Read the prompt from a file")
        ->check(CLI::ExistingFile);
    cmd->add_option("-n,--n-predict", req.n_predict, "Tokens to generate")->capture_default_str();
    cmd->add_option("--threads,-t", req.threads, "Threads (default: all cores)");
    cmd->add_option("--temp", req.temperature, "Sampling temperature; 0 = greedy")
        ->capture_default_str();
    cmd->add_option("--top-p", req.top_p, "Nucleus sampling threshold")->capture_default_str();
    cmd->add_option("--top-k", req.top_k, "Keep the k most likely tokens; 0 = all")
        ->capture_default_str();
    cmd->add_option("--seed", req.seed, "Sampling seed")->capture_default_str();
    cmd->add_option("--sparse-tau", req.sparse_tau,
                    "Block-sparse prefill attention: softmax mass each query block keeps, in "
                    "(0, 1]; 1 = dense")
        ->capture_default_str();
    cmd->add_option("--sparse-block", req.sparse_block,
                    "Block size of sparse attention (16, 32 or 64)")
        ->capture_default_str();
    cmd->add_flag("--chat", req.chat,
                  "Wrap the prompt in the model's chat template as a user turn");
    cmd->add_flag("--allow-long-context", req.allow_long_context,
                  "Run a prompt + answer longer than the model's training context (an error "
                  "otherwise)");
    cmd->add_flag("--no-stop", opt->no_stop, "Keep generating past end-of-generation tokens");
    cmd->add_flag("--json", opt->json,
                  "Print a JSON result (tokens, text, prefill_tok_s, decode_tok_s)");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
