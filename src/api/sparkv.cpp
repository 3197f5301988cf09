// The public facade: thin wiring from include/sparkv/sparkv.h to the internal components.
#include "sparkv/sparkv.h"

#include <fmt/format.h>

#include <optional>

#include "cloud/ingest.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/prompt.h"
#include "store/signing.h"
#include "store/store_location.h"

namespace sparkv {

GenerationResult generate_text(const GenerationRequest& request,
                               const std::function<void(std::string_view piece)>& on_piece) {
    if (request.n_predict < 1) fail("n_predict must be at least 1");
    const auto model = Model::load(resolve_model_path(request.model_path));
    const auto& tok = model->tokenizer();
    const std::string text =
        request.chat ? apply_chat_template(model->file(), {{"user", request.prompt}}, true)
                     : request.prompt;
    const auto prompt = tok.encode(text, /*add_special=*/true, /*parse_special=*/request.chat);
    if (prompt.empty()) fail("the prompt encodes to no tokens");
    check_context_length(model->config(), static_cast<int64_t>(prompt.size()) + request.n_predict,
                         request.allow_long_context,
                         fmt::format("generate: prompt ({} tokens) + answer ({})", prompt.size(),
                                     request.n_predict));

    SparseAttentionOptions sparse;
    sparse.tau = request.sparse_tau;
    sparse.block = request.sparse_block;
    Engine engine(*model, {.n_ctx = static_cast<int64_t>(prompt.size()) + request.n_predict,
                           .n_threads = request.threads,
                           .sparse = sparse});
    GenerateOptions go;
    go.n_predict = request.n_predict;
    go.sampling = {request.temperature, request.top_p, request.top_k, request.seed};
    go.stop_at_end_of_generation = request.stop_at_end_of_generation;
    if (on_piece) go.on_token = [&](int32_t t) { on_piece(tok.token_to_piece(t)); };
    const auto r = generate(engine, prompt, go);

    GenerationResult out;
    out.tokens = r.tokens;
    out.text = tok.decode(r.tokens);
    out.prompt_tokens = r.prompt_tokens;
    out.prefill_tok_s = static_cast<double>(r.prompt_tokens) / r.prefill_seconds;
    out.decode_tok_s =
        r.decode_steps > 0 ? static_cast<double>(r.decode_steps) / r.decode_seconds : 0.0;
    out.threads = engine.pool().size();
    return out;
}

IngestSummary ingest_document(const IngestRequest& request) {
    if (request.store_dir.empty())
        fail("ingest: no store given (a directory or s3://BUCKET/PREFIX)");
    ContextStore store(open_store(request.store_dir, StoreAccess::create));  // before the model
    // The key is read before any work, so a bad key fails at once.
    std::optional<SigningKey> key;
    if (!request.sign_key_path.empty()) key.emplace(SigningKey::load(request.sign_key_path));
    const auto model = Model::load(resolve_model_path(request.model_path));
    const PromptFormat format = request.format.empty() ? default_prompt_format(*model)
                                                       : prompt_format_from_name(request.format);
    auto tokens = context_tokens(*model, request.document_text, format);
    if (request.max_tokens > 0 && static_cast<int64_t>(tokens.size()) > request.max_tokens)
        tokens.resize(static_cast<size_t>(request.max_tokens));

    IngestOptions io;
    io.signing_key = key ? &*key : nullptr;
    if (request.chunk_tokens != 0) io.chunk_tokens = request.chunk_tokens;
    if (!request.levels.empty()) io.levels = request.levels;
    io.threads = request.threads;
    io.allow_long_context = request.allow_long_context;
    io.prompt_format = std::string(prompt_format_name(format));
    io.sparse.tau = request.sparse_tau;
    io.sparse.block = request.sparse_block;
    if (request.on_progress)
        io.on_progress = [&](const IngestProgress& p) {
            request.on_progress(p.chunks_done, p.chunks_total, p.seconds);
        };
    const IngestResult r = ingest_context(*model, store, tokens, io);

    IngestSummary out;
    out.context_id = r.context_id;
    out.attempt = r.attempt;
    out.tokens = r.tokens;
    out.chunks = r.chunks;
    out.layers = r.layers;
    out.format = std::string(prompt_format_name(format));
    out.bytes_per_level = r.bytes_per_level;
    out.already_present = r.already_present;
    out.resigned = r.resigned;
    out.signed_by = r.signed_by;
    out.prefill_seconds = r.prefill_seconds;
    out.encode_seconds = r.encode_seconds;
    out.saliency_seconds = r.saliency_seconds;
    out.seconds = r.seconds;
    return out;
}

}  // namespace sparkv
