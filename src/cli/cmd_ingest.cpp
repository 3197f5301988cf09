// `sparkv ingest`: the cloud side's one-time work for a context (prefill, export, encode, store).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "sparkv/sparkv.h"

namespace sparkv::cli {

namespace {

struct IngestCliOptions {
    std::string model;
    std::string store;
    std::string doc;
    int32_t chunk_tokens = 1024;
    std::string levels = "fp16,int8,q5h,q3h";
    std::string format;
    int64_t max_tokens = 0;
    int threads = 0;
    bool json = false;
};

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read document {}", path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

int run(const IngestCliOptions& opt) {
    IngestRequest req;
    req.model_path = opt.model;
    req.store_dir = opt.store;
    req.document_text = read_text(opt.doc);
    req.format = opt.format;
    req.chunk_tokens = opt.chunk_tokens;
    req.levels = split_list(opt.levels);
    req.max_tokens = opt.max_tokens;
    req.threads = opt.threads;
    ProgressBar bar("ingest");
    req.on_progress = [&](int32_t done, int32_t total, double seconds) {
        bar.update(done, total, seconds);
    };
    const IngestSummary r = ingest_document(req);
    bar.finish();

    if (opt.json) {
        nlohmann::json j;
        j["context_id"] = r.context_id;
        j["tokens"] = r.tokens;
        j["chunks"] = r.chunks;
        j["layers"] = r.layers;
        j["format"] = r.format;
        j["already_present"] = r.already_present;
        nlohmann::json bytes = nlohmann::json::object();
        for (const auto& [level, n] : r.bytes_per_level) bytes[level] = n;
        j["bytes"] = bytes;
        j["seconds"] = r.seconds;
        j["prefill_seconds"] = r.prefill_seconds;
        j["encode_seconds"] = r.encode_seconds;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("%s\n", r.context_id.c_str());
    std::fprintf(stderr, "sparkv: %s: %lld tokens, %d chunks x %d layers%s\n", r.context_id.c_str(),
                 static_cast<long long>(r.tokens), r.chunks, r.layers,
                 r.already_present ? " (already in the store, nothing to do)" : "");
    for (const auto& [level, n] : r.bytes_per_level)
        std::fprintf(stderr, "  %-5s %10.2f MB  %7.1f bytes/token\n", level.c_str(),
                     static_cast<double>(n) / 1e6,
                     static_cast<double>(n) / static_cast<double>(r.tokens));
    if (!r.already_present)
        std::fprintf(stderr, "  prefill %.1fs, encode %.1fs, total %.1fs\n", r.prefill_seconds,
                     r.encode_seconds, r.seconds);
    return 0;
}

}  // namespace

CommandRunner add_ingest_command(CLI::App& app) {
    auto opt = std::make_shared<IngestCliOptions>();
    auto* cmd =
        app.add_subcommand("ingest", "Prefill a document once, encode its KV units and store them");
    cmd->add_option("--model", opt->model,
                    "GGUF file or known model name (default: the reference model)");
    cmd->add_option("--store", opt->store, "Store directory (created if missing)")->required();
    cmd->add_option("--doc", opt->doc, "Document (UTF-8 text) to ingest")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--chunk-tokens", opt->chunk_tokens, "Tokens per chunk (C)")
        ->capture_default_str();
    cmd->add_option("--levels", opt->levels,
                    "Codec levels to store, comma-separated (fp16,int8,q6h,q5h,q4h,q3h)")
        ->capture_default_str();
    cmd->add_option(
        "--format", opt->format,
        "Prompt format: chat (model template) or raw; default chat if the model has a template");
    cmd->add_option("--max-tokens", opt->max_tokens,
                    "Keep only the first N tokens of the document");
    cmd->add_option("--threads,-t", opt->threads, "Threads (default: all cores)");
    cmd->add_flag("--json", opt->json,
                  "Print a JSON result (context_id, tokens, chunks, layers, bytes per level)");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
