// Cloud-side ingest: prefill a context once with the engine, export every KV unit (chunk t,
// layer l), encode it at each quality level, and write the context to the store. The manifest is
// committed last, so an interrupted ingest leaves nothing visible and is simply redone.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/model.h"
#include "store/context_store.h"

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
    std::function<void(const IngestProgress&)> on_progress;
};

struct IngestResult {
    std::string context_id;
    std::string attempt;  // the attempt the manifest names (store/context_store.h)
    int64_t tokens = 0;
    int32_t chunks = 0;
    int32_t layers = 0;
    std::vector<std::pair<std::string, uint64_t>> bytes_per_level;
    bool already_present = false;  // the store already held this context: nothing was done
    double prefill_seconds = 0;
    double encode_seconds = 0;
    double seconds = 0;
};

IngestResult ingest_context(const Model& model, ContextStore& store,
                            std::span<const int32_t> tokens, const IngestOptions& options);

}  // namespace sparkv
