// SparKV's public API: plain structs and a few calls over the engine, the cloud side and the
// device's streaming client. Everything else under src/ is internal and may change.
//
//   sparkv::GenerationRequest req;
//   req.prompt = "The capital of France is";
//   auto out = sparkv::generate_text(req);          // local prefill + decode
//
//   sparkv::IngestRequest ing;
//   ing.store_dir = "/srv/kv"; ing.document_text = text;
//   auto id = sparkv::ingest_document(ing).context_id;  // cloud: encode every KV unit once
//
// Errors are thrown as sparkv::Error (a std::runtime_error) with a message a user can act on.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sparkv/error.h"

namespace sparkv {

// Where `sparkv model --fetch` puts the reference model (SmolLM2-135M-Instruct, Q4_1).
std::string reference_model_path();

// What a --model argument names: "" -> the reference model; a known short name ("smollm2-135m",
// "qwen2.5-0.5b") -> its file in the cache; anything else -> a file path. Throws Error telling
// the user how to fetch a missing known model, or naming the known names for a missing file.
std::string resolve_model_path(std::string_view name_or_path);

struct GenerationRequest {
    std::string model_path;  // a file or known model name (resolve_model_path); empty: reference
    std::string prompt;
    bool chat = false;  // wrap the prompt in the model's chat template as a user turn
    int n_predict = 32;
    int threads = 0;        // 0: all cores
    float temperature = 0;  // 0: greedy
    float top_p = 1;
    int top_k = 0;
    uint64_t seed = 0;
    bool stop_at_end_of_generation = true;
    // Block-sparse prefill attention: softmax mass each query block keeps (1 = dense) and the
    // block size (16, 32 or 64). Decode is always dense. 0.95 is the measured default
    // (kernels::kDefaultSparseTau, README "Sparse prefill attention").
    float sparse_tau = 0.95f;
    int sparse_block = 64;
    // Prompt + answer longer than the model's training context is an error unless this is set
    // (the same rule as ingest's; quality past the trained length is not guaranteed).
    bool allow_long_context = false;
};

struct GenerationResult {
    std::vector<int32_t> tokens;  // generated token ids
    std::string text;
    int64_t prompt_tokens = 0;
    double prefill_tok_s = 0;
    double decode_tok_s = 0;
    int threads = 0;
};

// Loads the model, prefills the prompt and generates; on_piece sees each token's text as it comes.
GenerationResult generate_text(const GenerationRequest& request,
                               const std::function<void(std::string_view piece)>& on_piece = {});

struct IngestRequest {
    std::string model_path;  // a file or known model name (resolve_model_path); empty: reference
    // A directory or s3://BUCKET/PREFIX (src/store/store_location.h: S3 settings come from
    // AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or ~/.aws).
    std::string store_dir;
    std::string document_text;
    std::string format;  // "chat" or "raw"; empty: chat when the model has a template
    // 0 and empty: ingest's defaults (one home, IngestOptions in src/cloud/ingest.h; the chunk size
    // is 1024 tokens, the levels fp16, int8, q5h, q3h).
    int32_t chunk_tokens = 0;
    std::vector<std::string> levels;
    int64_t max_tokens = 0;  // keep only the first N tokens (0: all)
    int threads = 0;
    // Block-sparse prefill attention (as GenerationRequest); recorded in the manifest.
    float sparse_tau = 0.95f;
    int sparse_block = 64;
    bool allow_long_context = false;  // a context longer than the model's training context
    std::string sign_key_path;  // PREFIX.key from `sparkv keygen`: sign the manifest (optional)
    std::function<void(int32_t chunks_done, int32_t chunks_total, double seconds)> on_progress;
};

struct IngestSummary {
    std::string context_id;
    std::string attempt;  // the ingest attempt the context's manifest names
    int64_t tokens = 0;
    int32_t chunks = 0;
    int32_t layers = 0;
    std::string format;
    std::vector<std::pair<std::string, uint64_t>> bytes_per_level;
    bool already_present = false;  // the store already held the context; nothing was computed
    bool resigned = false;         // ... and its manifest was re-signed with the sign key
    std::string signed_by;         // id of the key that signed the manifest; empty if unsigned
    double prefill_seconds = 0;
    double encode_seconds = 0;
    double saliency_seconds = 0;  // ranking salient tokens (codec levels that keep them)
    double seconds = 0;
};

// Cloud side: prefills the document once, encodes every KV unit at each level and commits it to
// the store; re-ingesting the same context is a no-op.
IngestSummary ingest_document(const IngestRequest& request);

}  // namespace sparkv
