// The manifest of one stored context: what model and tokens it belongs to, how it is chunked, and
// for every unit (t, l) the size and checksum of its object at each quality level, plus the
// features the cost model reads. It is the only mutable-looking thing in a context and is written
// last, so its presence means every object it names is complete.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv {

struct ModelInfo {
    std::string fingerprint;  // identifies the exact weights the KV was computed with
    std::string name;
    int32_t n_layers = 0;
    int32_t n_kv_heads = 0;
    int32_t head_dim = 0;
};

struct ChunkInfo {
    int32_t index = 0;
    int64_t first_token = 0;
    int32_t n_tokens = 0;
};

// One encoded object: unit (t, l) at one quality level.
struct UnitObject {
    uint64_t bytes = 0;
    uint64_t xxh64 = 0;
};

struct UnitInfo {
    int32_t t = 0;  // chunk index
    int32_t l = 0;  // layer
    int64_t first_token = 0;
    int32_t n_tokens = 0;
    // Keys the chunk's last token attends to (causal): first_token + n_tokens. The compute cost of
    // the unit grows with it.
    int64_t attention_span = 0;
    std::vector<UnitObject> objects;  // parallel to Manifest::levels
};

struct Manifest {
    // Version 2 added the token ids object ("tokens"); version 3 put every object of the context
    // under the prefix of the ingest attempt that wrote it ("attempt"). Older stores must be
    // re-ingested.
    static constexpr int kFormatVersion = 3;

    std::string context_id;
    // The ingest attempt whose objects this manifest names: every object of the context lives
    // under contexts/<id>/attempts/<attempt>/ (store/context_store.h). Two workers that ingest the
    // same context write disjoint attempts, so whichever manifest is written last names a
    // complete set that no other worker touched.
    std::string attempt;
    ModelInfo model;
    int64_t n_tokens = 0;
    int32_t chunk_size = 0;
    std::vector<ChunkInfo> chunks;
    std::vector<std::string> levels;  // quality level names, e.g. "fp16", "int8", "q5h"
    std::vector<UnitInfo> units;      // t-major: units[t * n_layers + l]
    // The context's token ids (little-endian int32, object "tokens.i32"): with them a device
    // that holds only the context id can compute any unit itself.
    UnitObject tokens;
    // How the device must render its question after these tokens ("chat" or "raw"; empty when
    // the ingest did not say): the context is the first half of one prompt.
    std::string prompt_format;

    int32_t n_chunks() const { return static_cast<int32_t>(chunks.size()); }
    int32_t n_layers() const { return model.n_layers; }

    // Throw an Error naming the unit or level when it does not exist.
    const UnitInfo& unit(int32_t t, int32_t l) const;
    UnitInfo& unit(int32_t t, int32_t l);
    int level_index(std::string_view level) const;  // -1 when absent
    int require_level(std::string_view level) const;
    const UnitObject& object(int32_t t, int32_t l, std::string_view level) const;
    uint64_t total_bytes(std::string_view level) const;

    // Checks every invariant (shapes, chunk table, features, sizes, names); throws Error.
    void validate() const;

    nlohmann::json to_json() const;
    // Validates what it reads: a malformed or inconsistent manifest is an Error, never a crash.
    static Manifest from_json(const nlohmann::json& json);
    std::string dump() const;
    static Manifest parse(std::string_view text);
};

// A manifest with chunks and unit features filled in and all object sizes still zero: the
// starting point of an ingest, completed by recording every object written.
Manifest make_manifest(std::string context_id, ModelInfo model, int64_t n_tokens,
                       int32_t chunk_size, std::vector<std::string> levels);

// Level names become path components: 1-32 characters of [a-z0-9_-].
bool is_level_name(std::string_view name);

// Attempt names are path components too: 1-64 characters of [A-Za-z0-9-].
bool is_attempt_name(std::string_view name);

}  // namespace sparkv
