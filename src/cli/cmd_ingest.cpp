// `sparkv ingest`: the cloud side's one-time work for a context (prefill, export, encode, store).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cloud/ingest.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/prompt.h"
#include "store/fs_backend.h"

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
    const std::string model_path = opt.model.empty() ? require_reference_model() : opt.model;
    const auto model = Model::load(model_path);
    const PromptFormat format =
        opt.format.empty() ? default_prompt_format(*model) : prompt_format_from_name(opt.format);
    auto tokens = context_tokens(*model, read_text(opt.doc), format);
    if (opt.max_tokens > 0 && static_cast<int64_t>(tokens.size()) > opt.max_tokens)
        tokens.resize(static_cast<size_t>(opt.max_tokens));

    ContextStore store(std::make_shared<FilesystemBackend>(opt.store));
    IngestOptions io;
    io.chunk_tokens = opt.chunk_tokens;
    io.levels = split_list(opt.levels);
    io.threads = opt.threads;
    ProgressBar bar("ingest");
    io.on_progress = [&](const IngestProgress& p) { bar.update(p.chunks_done, p.chunks_total, p.seconds); };
    const IngestResult r = ingest_context(*model, store, tokens, io);
    bar.finish();

    if (opt.json) {
        nlohmann::json j;
        j["context_id"] = r.context_id;
        j["tokens"] = r.tokens;
        j["chunks"] = r.chunks;
        j["layers"] = r.layers;
        j["format"] = prompt_format_name(format);
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
        std::fprintf(stderr, "  %-5s %10.2f MB  %7.1f bytes/token\n", level.c_str(), static_cast<double>(n) / 1e6,
                     static_cast<double>(n) / static_cast<double>(r.tokens));
    if (!r.already_present)
        std::fprintf(stderr, "  prefill %.1fs, encode %.1fs, total %.1fs\n", r.prefill_seconds,
                     r.encode_seconds, r.seconds);
    return 0;
}

}  // namespace

CommandRunner add_ingest_command(CLI::App& app) {
    auto opt = std::make_shared<IngestCliOptions>();
    auto* cmd = app.add_subcommand("ingest", "Prefill a document once, encode its KV units and store them");
    cmd->add_option("--model", opt->model, "GGUF model (default: the reference model)");
    cmd->add_option("--store", opt->store, "Store directory (created if missing)")->required();
    cmd->add_option("--doc", opt->doc, "Document (UTF-8 text) to ingest")->required()->check(CLI::ExistingFile);
    cmd->add_option("--chunk-tokens", opt->chunk_tokens, "Tokens per chunk (C)")->capture_default_str();
    cmd->add_option("--levels", opt->levels, "Codec levels to store, comma-separated (fp16,int8,q6h,q5h,q4h,q3h)")
        ->capture_default_str();
    cmd->add_option("--format", opt->format, "Prompt format: chat (model template) or raw; default chat if the model has a template");
    cmd->add_option("--max-tokens", opt->max_tokens, "Keep only the first N tokens of the document");
    cmd->add_option("--threads,-t", opt->threads, "Threads (default: all cores)");
    cmd->add_flag("--json", opt->json, "Print a JSON result (context_id, tokens, chunks, layers, bytes per level)");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
