// engine_bench: SparKV's side of bench/engine_vs_llamacpp.mjs. One process = one run:
//
//   engine_bench [--model FILE] [--tokens FILE | --text FILE] [--threads 2] [--chunk 1024]
//                [--chunks 8] [--decode 64] [--decode-depths 1024,8192] [--json]
//
// 1. Warm-up: a 32-token prefill (touches every weight page of the mapping), then the cache is
//    cleared.
// 2. Chunked prefill: the prompt (token ids from --tokens, a JSON array, so that both engines see
//    the same ids; else --text tokenized by SparKV) is prefilled sequentially in chunks of --chunk
//    tokens; every chunk is timed, so chunk i gives prefill speed at context depth i * chunk.
// 3. Decode: for each depth in --decode-depths (descending), the cache is truncated to that many
//    positions and --decode greedy tokens are generated from there; tokens/s excludes nothing
//    (forward pass, LM head and argmax, as in generation).
// 4. Peak RSS (VmHWM of this process: model mapping pages, KV cache, activations).
// Prints a JSON object (or a short table without --json).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/paths.h"
#include "common/timer.h"
#include "engine/engine.h"
#include "engine/kernels/kernels.h"
#include "engine/model.h"
#include "engine/sampling.h"

namespace {

using namespace sparkv;

struct Options {
    std::string model;
    std::string tokens_file;
    std::string text_file;
    int threads = 2;
    int64_t chunk = 1024;
    int chunks = 8;
    int decode = 64;
    std::vector<int64_t> decode_depths = {1024, 8192};
    bool json = false;
};

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read {}", path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::vector<int32_t> load_tokens(const Options& opt, const Model& model) {
    if (!opt.tokens_file.empty()) {
        try {
            return nlohmann::json::parse(read_text(opt.tokens_file)).get<std::vector<int32_t>>();
        } catch (const nlohmann::json::exception& e) {
            fail("{}: expected a JSON array of token ids ({})", opt.tokens_file, e.what());
        }
    }
    const std::string path = opt.text_file.empty() ? demo_text_path() : opt.text_file;
    return model.tokenizer().encode(read_text(path), /*add_special=*/false,
                                    /*parse_special=*/false);
}

// Peak resident set size of this process in bytes (Linux VmHWM).
int64_t peak_rss_bytes() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
    }
    return -1;
}

nlohmann::json run(const Options& opt) {
    const std::string model_path = resolve_model_path(opt.model);
    const auto model = Model::load(model_path);
    const auto tokens = load_tokens(opt, *model);
    const int64_t n_prefill = opt.chunk * opt.chunks;
    if (static_cast<int64_t>(tokens.size()) < n_prefill)
        fail("{} prompt tokens, need {} ({} chunks of {})", tokens.size(), n_prefill, opt.chunks,
             opt.chunk);
    for (int64_t depth : opt.decode_depths)
        if (depth < 1 || depth > n_prefill)
            fail("decode depth {} is outside 1..{} (the prefilled length)", depth, n_prefill);

    EngineOptions eo;
    eo.n_threads = opt.threads;
    eo.n_ctx = n_prefill + opt.decode;
    Engine engine(*model, eo);
    const std::span<const int32_t> all(tokens);

    engine.prefill(all.first(std::min<size_t>(32, all.size())), 0);  // warm-up
    engine.cache().clear();

    nlohmann::json prefill = nlohmann::json::array();
    for (int i = 0; i < opt.chunks; ++i) {
        const int64_t pos = i * opt.chunk;
        const double t0 = now_seconds();
        engine.prefill(all.subspan(static_cast<size_t>(pos), static_cast<size_t>(opt.chunk)), pos);
        const double seconds = now_seconds() - t0;
        prefill.push_back({{"depth", pos},
                           {"tokens", opt.chunk},
                           {"seconds", seconds},
                           {"tok_s", static_cast<double>(opt.chunk) / seconds}});
    }

    std::vector<int64_t> depths = opt.decode_depths;
    std::sort(depths.rbegin(), depths.rend());  // truncation only shortens the cache
    nlohmann::json decode = nlohmann::json::array();
    for (int64_t depth : depths) {
        engine.cache().truncate(depth);
        // The logits at depth - 1 are recomputed from the cached prefix with one token, untimed.
        std::vector<float> logits =
            engine.prefill(all.subspan(static_cast<size_t>(depth - 1), 1), depth - 1);
        const double t0 = now_seconds();
        int64_t pos = depth;
        for (int i = 0; i < opt.decode; ++i) {
            const int32_t next[1] = {argmax(logits)};
            logits = engine.prefill(next, pos++);
        }
        const double seconds = now_seconds() - t0;
        decode.push_back({{"depth", depth},
                          {"tokens", opt.decode},
                          {"seconds", seconds},
                          {"tok_s", opt.decode / seconds}});
    }

    return {{"engine", "sparkv"},
            {"model", model_path},
            {"threads", engine.pool().size()},
            {"isa", kernels::active_isa()},
            {"prompt_tokens", n_prefill},
            {"prefill", prefill},
            {"decode", decode},
            {"peak_rss_bytes", peak_rss_bytes()}};
}

void print_table(const nlohmann::json& r) {
    std::printf("sparkv engine_bench: %s, %d threads, isa %s\n",
                r["model"].get<std::string>().c_str(), r["threads"].get<int>(),
                r["isa"].get<std::string>().c_str());
    for (const auto& p : r["prefill"])
        std::printf("  prefill %5lld tokens at depth %5lld: %8.1f tok/s\n",
                    p["tokens"].get<long long>(), p["depth"].get<long long>(),
                    p["tok_s"].get<double>());
    for (const auto& d : r["decode"])
        std::printf("  decode  %5lld tokens at depth %5lld: %8.1f tok/s\n",
                    d["tokens"].get<long long>(), d["depth"].get<long long>(),
                    d["tok_s"].get<double>());
    std::printf("  peak RSS %.1f MiB\n", r["peak_rss_bytes"].get<double>() / (1024.0 * 1024.0));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Time SparKV's chunked prefill at several depths and its decode (one run)"};
    Options opt;
    app.add_option("--model", opt.model,
                   "GGUF file or known model name (default: the reference model)");
    app.add_option("--tokens", opt.tokens_file, "JSON array of prompt token ids")
        ->check(CLI::ExistingFile);
    app.add_option("--text", opt.text_file, "Prompt text to tokenize (default: the demo text)")
        ->check(CLI::ExistingFile);
    app.add_option("--threads,-t", opt.threads, "Threads")->capture_default_str();
    app.add_option("--chunk", opt.chunk, "Tokens per prefill chunk")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--chunks", opt.chunks, "Chunks to prefill")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--decode", opt.decode, "Tokens to decode at each depth")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--decode-depths", opt.decode_depths, "Context depths to decode at")
        ->delimiter(',')
        ->capture_default_str();
    app.add_flag("--json", opt.json, "Print JSON");
    CLI11_PARSE(app, argc, argv);
    try {
        const auto result = run(opt);
        if (opt.json)
            std::printf("%s\n", result.dump(2).c_str());
        else
            print_table(result);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engine_bench: %s\n", e.what());
        return 1;
    }
}
