// `sparkv ingest`: the cloud side's one-time work for a context (prefill, export, encode, store),
// for one document (--doc) or a batch (--docs-from), into a directory or an S3 bucket.
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cloud/ingest.h"
#include "cloud/ingest_batch.h"
#include "codec/profile.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/kernels/sparse_attention.h"
#include "engine/model.h"
#include "sparkv/sparkv.h"
#include "store/store_location.h"

namespace sparkv::cli {

namespace {

struct IngestCliOptions {
    std::string model;
    std::string store;
    std::string doc;
    std::string docs_from;
    int busy_window_s = 60;
    int wait_limit_s = 600;
    int32_t chunk_tokens = IngestOptions{}.chunk_tokens;  // ingest's defaults have one home
    std::string levels = fmt::format("{}", fmt::join(IngestOptions{}.levels, ","));
    bool levels_given = false;  // without --levels, the model's default level joins the list
    std::string format;
    int64_t max_tokens = 0;
    int threads = 0;
    float sparse_tau = kernels::kDefaultSparseTau;
    int sparse_block = 64;
    std::string sign_key;
    bool allow_long_context = false;
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

nlohmann::json bytes_json(const std::vector<std::pair<std::string, uint64_t>>& per_level) {
    nlohmann::json bytes = nlohmann::json::object();
    for (const auto& [level, n] : per_level) bytes[level] = n;
    return bytes;
}

// The levels to store: --levels as given, else the default list plus the model's default lossy
// level (its codec profile's, e.g. c5 for the reference model) when that is not in it already.
std::vector<std::string> levels_for(const IngestCliOptions& opt, uint64_t model_fingerprint) {
    std::vector<std::string> levels = split_list(opt.levels);
    if (opt.levels_given) return levels;
    const std::string preferred(codec::level_name(codec::default_lossy_level(model_fingerprint)));
    if (std::find(levels.begin(), levels.end(), preferred) == levels.end())
        levels.insert(levels.begin() + std::min<std::ptrdiff_t>(2, std::ssize(levels)), preferred);
    return levels;
}

int run_batch(const IngestCliOptions& opt) {
    const auto paths = list_documents(opt.docs_from);
    ContextStore store(open_store(opt.store, StoreAccess::create));  // bad settings fail first
    const auto model = Model::load(resolve_model_path(opt.model));
    BatchOptions options;
    options.ingest.chunk_tokens = opt.chunk_tokens;
    options.ingest.levels = levels_for(opt, model->fingerprint());
    options.ingest.threads = opt.threads;
    options.ingest.allow_long_context = opt.allow_long_context;
    options.ingest.sparse.tau = opt.sparse_tau;
    options.ingest.sparse.block = opt.sparse_block;
    kernels::validate(options.ingest.sparse);
    options.format =
        opt.format.empty() ? default_prompt_format(*model) : prompt_format_from_name(opt.format);
    options.max_tokens = opt.max_tokens;
    options.busy_window = std::chrono::seconds(opt.busy_window_s);
    options.wait_limit = std::chrono::seconds(opt.wait_limit_s);
    std::fprintf(stderr, "sparkv: ingesting %zu documents into %s\n", paths.size(),
                 store.backend().describe().c_str());
    ProgressBar bar("  chunks");
    options.ingest.on_progress = [&](const IngestProgress& p) {
        bar.update(p.chunks_done, p.chunks_total, p.seconds);
    };
    const auto on_event = [&](const BatchEvent& e) {
        const std::string& path = paths[e.index];
        if (e.kind == BatchEvent::Kind::deferred) {
            std::fprintf(stderr, "  %s: another worker is ingesting it; coming back to it\n",
                         path.c_str());
        } else if (e.kind == BatchEvent::Kind::started) {
            std::fprintf(stderr, "[%zu/%zu] %s\n", e.done + 1, e.total, path.c_str());
        } else {
            bar.finish();
            const BatchItem& item = *e.item;
            if (item.status == BatchItem::Status::failed)
                std::fprintf(stderr, "  %s: failed: %s\n", path.c_str(), item.error.c_str());
            else
                std::fprintf(stderr, "  %s: %s %s (%.1fs)\n", path.c_str(), item.context_id.c_str(),
                             item.status == BatchItem::Status::ingested ? "ingested"
                                                                        : "already in the store",
                             item.result.seconds);
        }
    };
    const BatchSummary summary = ingest_batch(*model, store, paths, options, on_event);

    if (opt.json) {
        nlohmann::json docs = nlohmann::json::array();
        for (const auto& item : summary.items) {
            nlohmann::json d = {{"path", item.path},
                                {"status", batch_status_name(item.status)},
                                {"context_id", item.context_id}};
            if (item.status == BatchItem::Status::failed) {
                d["error"] = item.error;
            } else {
                d["attempt"] = item.result.attempt;
                d["tokens"] = item.result.tokens;
                d["bytes"] = bytes_json(item.result.bytes_per_level);
                d["seconds"] = item.result.seconds;
            }
            docs.push_back(std::move(d));
        }
        const nlohmann::json j = {{"documents", docs},
                                  {"ingested", summary.ingested},
                                  {"already_present", summary.already_present},
                                  {"failed", summary.failed},
                                  {"seconds", summary.seconds}};
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        for (const auto& item : summary.items)
            std::printf("%s\t%s\t%s\n", item.context_id.empty() ? "-" : item.context_id.c_str(),
                        batch_status_name(item.status), item.path.c_str());
    }
    std::fprintf(stderr,
                 "sparkv: %zu documents in %.1fs: %zu ingested, %zu already in the store, %zu "
                 "failed\n",
                 summary.items.size(), summary.seconds, summary.ingested, summary.already_present,
                 summary.failed);
    return summary.failed == 0 ? 0 : 1;
}

int run(const IngestCliOptions& opt) {
    if (opt.doc.empty() == opt.docs_from.empty())
        fail("give one document with --doc FILE or a batch with --docs-from FILE|DIR");
    if (!opt.docs_from.empty()) return run_batch(opt);
    IngestRequest req;
    req.model_path = opt.model;
    req.store_dir = opt.store;
    req.document_text = read_text(opt.doc);
    req.format = opt.format;
    req.chunk_tokens = opt.chunk_tokens;
    req.levels = opt.levels_given
                     ? split_list(opt.levels)
                     : levels_for(opt, Model::load(resolve_model_path(opt.model))->fingerprint());
    req.max_tokens = opt.max_tokens;
    req.threads = opt.threads;
    req.allow_long_context = opt.allow_long_context;
    req.sparse_tau = opt.sparse_tau;
    req.sparse_block = opt.sparse_block;
    req.sign_key_path = opt.sign_key;
    ProgressBar bar("ingest");
    req.on_progress = [&](int32_t done, int32_t total, double seconds) {
        bar.update(done, total, seconds);
    };
    const IngestSummary r = ingest_document(req);
    bar.finish();

    if (opt.json) {
        nlohmann::json j;
        j["context_id"] = r.context_id;
        j["attempt"] = r.attempt;
        j["tokens"] = r.tokens;
        j["chunks"] = r.chunks;
        j["layers"] = r.layers;
        j["format"] = r.format;
        j["already_present"] = r.already_present;
        j["resigned"] = r.resigned;
        j["signed_by"] =
            r.signed_by.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.signed_by);
        j["bytes"] = bytes_json(r.bytes_per_level);
        j["seconds"] = r.seconds;
        j["prefill_seconds"] = r.prefill_seconds;
        j["encode_seconds"] = r.encode_seconds;
        j["saliency_seconds"] = r.saliency_seconds;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("%s\n", r.context_id.c_str());
    std::fprintf(stderr, "sparkv: %s: %lld tokens, %d chunks x %d layers%s\n", r.context_id.c_str(),
                 static_cast<long long>(r.tokens), r.chunks, r.layers,
                 r.already_present ? (r.resigned ? " (already in the store, re-signed)"
                                                 : " (already in the store, nothing to do)")
                                   : "");
    std::fprintf(stderr, "  manifest %s\n",
                 r.signed_by.empty() ? "unsigned (no --sign-key)"
                                     : ("signed by key " + r.signed_by).c_str());
    for (const auto& [level, n] : r.bytes_per_level)
        std::fprintf(stderr, "  %-5s %10.2f MB  %7.1f bytes/token\n", level.c_str(),
                     static_cast<double>(n) / 1e6,
                     static_cast<double>(n) / static_cast<double>(r.tokens));
    if (!r.already_present && r.saliency_seconds > 0)
        std::fprintf(stderr, "  prefill %.1fs, saliency %.1fs, encode %.1fs, total %.1fs\n",
                     r.prefill_seconds, r.saliency_seconds, r.encode_seconds, r.seconds);
    else if (!r.already_present)
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
    cmd->add_option("--store", opt->store,
                    "Store: a directory (created if missing) or s3://BUCKET/PREFIX (endpoint, "
                    "region and keys from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY or ~/.aws)")
        ->required();
    auto* doc = cmd->add_option("--doc", opt->doc, "Document (UTF-8 text) to ingest")
                    ->check(CLI::ExistingFile);
    cmd->add_option("--docs-from", opt->docs_from,
                    "Batch: a directory of documents, or a file listing one path per line")
        ->excludes(doc);
    cmd->add_option("--busy-window", opt->busy_window_s,
                    "Batch: put off a context another worker wrote to within this many seconds")
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
    cmd->add_option("--wait-limit", opt->wait_limit_s,
                    "Batch: after this many seconds put off, ingest it anyway")
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
    cmd->add_option("--chunk-tokens", opt->chunk_tokens, "Tokens per chunk (C)")
        ->capture_default_str();
    auto* levels_option =
        cmd->add_option("--levels", opt->levels,
                        "Codec levels to store, comma-separated (fp16,int8,q6h,q5h,q4h,q3h; "
                        "c4,c5,c6,c8 with the model's codec profile; by default also the model's "
                        "default level, e.g. c5 for the reference model)")
            ->capture_default_str();
    cmd->add_option(
        "--format", opt->format,
        "Prompt format: chat (model template) or raw; default chat if the model has a template");
    cmd->add_option("--max-tokens", opt->max_tokens,
                    "Keep only the first N tokens of the document");
    cmd->add_option("--threads,-t", opt->threads, "Threads (default: all cores)");
    cmd->add_option("--sparse-tau", opt->sparse_tau,
                    "Prefill with block-sparse attention keeping this softmax mass per query "
                    "block, in (0, 1]; 1 = dense. Recorded in the manifest with each unit's "
                    "active blocks; a sparse context gets its own id")
        ->capture_default_str();
    cmd->add_option("--sparse-block", opt->sparse_block,
                    "Block size of sparse attention (16, 32 or 64)")
        ->capture_default_str();
    cmd->add_flag("--allow-long-context", opt->allow_long_context,
                  "Ingest a context longer than the model's training context (an error otherwise)");
    cmd->add_option("--sign-key", opt->sign_key,
                    "Sign the context with this secret key (PREFIX.key from `sparkv keygen`)")
        ->check(CLI::ExistingFile);
    cmd->add_flag(
        "--json", opt->json,
        "Print a JSON result (context_id, tokens, chunks, layers, bytes per level, signed_by)");
    return [opt, levels_option] {
        opt->levels_given = levels_option->count() > 0;
        return run(*opt);
    };
}

}  // namespace sparkv::cli
