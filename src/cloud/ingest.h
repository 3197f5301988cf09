// Cloud-side ingest: prefill a context once with the engine, export every KV unit (chunk t,
// layer l), encode it at each quality level, and write the context to the store. The manifest is
// committed last, so an interrupted ingest leaves nothing visible and is simply redone.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/profile.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "store/context_store.h"
#include "store/signing.h"

namespace sparkv {

struct IngestProgress {
    int32_t chunks_done = 0;
    int32_t chunks_total = 0;
    double seconds = 0;
};

struct IngestOptions {
    int32_t chunk_tokens = 1024;  // DESIGN.md section 3's default C
    // Levels to encode, lossless first; the device picks among them per unit.
    std::vector<std::string> levels = {"fp16", "int8", "q5h", "q3h"};
    int threads = 0;
    std::string prompt_format;  // recorded in the manifest for the device ("chat" / "raw")
    // Attention of the prefill (dense by default). The manifest records these settings and every
    // unit's active blocks; a sparse context gets its own id (sparse_kv_identity), so dense and
    // sparse KV of the same tokens never share one.
    SparseAttentionOptions sparse;
    // Signs the manifest (store/manifest_signature.h). A context already in the store that is
    // unsigned or signed by another key is verified object by object and re-signed.
    const SigningKey* signing_key = nullptr;
    std::function<void(const IngestProgress&)> on_progress;
    // Ingest a context longer than the model's training context (check_context_length).
    bool allow_long_context = false;
    // The codec profile for the calibrated levels (c4..c8). Unset: the model's own profile
    // (codec::find_model_profile: the cache's, else the one shipped for it) when there is one.
    std::optional<codec::CodecProfile> profile;
};

struct IngestResult {
    std::string context_id;
    std::string attempt;  // the attempt the manifest names (store/context_store.h)
    int64_t tokens = 0;
    int32_t chunks = 0;
    int32_t layers = 0;
    std::vector<std::pair<std::string, uint64_t>> bytes_per_level;
    bool already_present = false;  // the store already held this context: nothing was computed
    bool resigned = false;         // ... and its manifest was (re-)signed with signing_key
    std::string signed_by;         // key id of the manifest's signature, empty if unsigned
    double prefill_seconds = 0;
    double encode_seconds = 0;
    double saliency_seconds = 0;  // ranking salient tokens (levels that keep them), else 0
    double seconds = 0;
};

// What identifies the KV of a model computed with these attention settings (kv_identity of
// store/manifest.h).
std::string sparse_kv_identity(std::string_view fingerprint, const SparseAttentionOptions& sparse);

// The manifest form of the settings, and back (for a device that reproduces the KV).
SparseSettings to_manifest(const SparseAttentionOptions& sparse);
SparseAttentionOptions from_manifest(const SparseSettings& settings);

IngestResult ingest_context(const Model& model, ContextStore& store,
                            std::span<const int32_t> tokens, const IngestOptions& options);

}  // namespace sparkv
