// `sparkv generate`: load a GGUF model, prefill a prompt, and generate text.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "engine/model.h"

namespace sparkv::cli {

namespace {

struct GenerateCliOptions {
    std::string model;
    std::string prompt;
    std::string prompt_file;
    int n_predict = 32;
    int threads = 0;
    int64_t ctx = 0;
    float temperature = 0.0f;
    float top_p = 1.0f;
    int top_k = 0;
    uint64_t seed = 0;
    bool chat = false;
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

int run(const GenerateCliOptions& opt) {
    if (opt.prompt.empty() == opt.prompt_file.empty())
        fail("give exactly one of --prompt TEXT or --prompt-file FILE");
    if (opt.n_predict < 1) fail("-n must be at least 1");
    const std::string model_path = opt.model.empty() ? require_reference_model() : opt.model;
    const auto model = Model::load(model_path);
    const auto& tok = model->tokenizer();

    std::string text = opt.prompt.empty() ? read_file(opt.prompt_file) : opt.prompt;
    if (opt.chat) text = apply_chat_template(model->file(), {{"user", text}}, true);
    const auto prompt = tok.encode(text, /*add_special=*/true, /*parse_special=*/opt.chat);
    if (prompt.empty()) fail("the prompt encodes to no tokens");

    EngineOptions eo;
    eo.n_threads = opt.threads;
    eo.n_ctx = opt.ctx > 0 ? opt.ctx : static_cast<int64_t>(prompt.size()) + opt.n_predict;
    Engine engine(*model, eo);

    GenerateOptions go;
    go.n_predict = opt.n_predict;
    go.sampling = {opt.temperature, opt.top_p, opt.top_k, opt.seed};
    go.stop_at_end_of_generation = !opt.no_stop;
    if (!opt.json) {
        go.on_token = [&](int32_t t) {
            const std::string piece = tok.token_to_piece(t);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        };
    }
    const auto result = generate(engine, prompt, go);
    const double prefill_tok_s = static_cast<double>(result.prompt_tokens) / result.prefill_seconds;
    const double decode_tok_s = result.decode_steps > 0
                                    ? static_cast<double>(result.decode_steps) / result.decode_seconds
                                    : 0.0;
    if (opt.json) {
        nlohmann::json j;
        j["model"] = model_path;
        j["prompt_tokens"] = result.prompt_tokens;
        j["tokens"] = result.tokens;
        j["text"] = tok.decode(result.tokens);
        j["prefill_tok_s"] = prefill_tok_s;
        j["decode_tok_s"] = decode_tok_s;
        j["prefill_seconds"] = result.prefill_seconds;
        j["decode_seconds"] = result.decode_seconds;
        j["threads"] = engine.pool().size();
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("\n");
        std::fprintf(stderr, "sparkv: %lld prompt tokens at %.1f tok/s, %zu generated at %.1f tok/s (%d threads)\n",
                     static_cast<long long>(result.prompt_tokens), prefill_tok_s, result.tokens.size(),
                     decode_tok_s, engine.pool().size());
    }
    return 0;
}

}  // namespace

CommandRunner add_generate_command(CLI::App& app) {
    auto opt = std::make_shared<GenerateCliOptions>();
    auto* cmd = app.add_subcommand("generate", "Generate text with a GGUF model (local prefill + decode)");
    cmd->add_option("--model", opt->model, "GGUF model (default: the reference model, see `sparkv model`)");
    cmd->add_option("--prompt,-p", opt->prompt, "Prompt text");
    cmd->add_option("--prompt-file,-f", opt->prompt_file, "Read the prompt from a file")->check(CLI::ExistingFile);
    cmd->add_option("-n,--n-predict", opt->n_predict, "Tokens to generate")->capture_default_str();
    cmd->add_option("--threads,-t", opt->threads, "Threads (default: all cores)");
    cmd->add_option("--ctx", opt->ctx, "KV cache positions (default: prompt + n)");
    cmd->add_option("--temp", opt->temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
    cmd->add_option("--top-p", opt->top_p, "Nucleus sampling threshold")->capture_default_str();
    cmd->add_option("--top-k", opt->top_k, "Keep the k most likely tokens; 0 = all")->capture_default_str();
    cmd->add_option("--seed", opt->seed, "Sampling seed")->capture_default_str();
    cmd->add_flag("--chat", opt->chat, "Wrap the prompt in the model's chat template as a user turn");
    cmd->add_flag("--no-stop", opt->no_stop, "Keep generating past end-of-generation tokens");
    cmd->add_flag("--json", opt->json, "Print a JSON result (tokens, text, prefill_tok_s, decode_tok_s)");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
