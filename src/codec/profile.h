// A model's codec profile: what calibration measured and chose for the calibrated levels (c4, c5,
// c6, c8). Written by `sparkv codec-calibrate`, read by ingest and codec-bench.
//
// It holds, per calibrated level, the K and V bit width of every layer (chosen by dynamic
// programming over measured sensitivities under a byte budget, see cloud/codec_calibrate.h), and
// how many of the context's first tokens are kept exact (attention sinks). Its hash covers exactly
// what changes the encoding (version, model fingerprint, layer count, sink tokens, tables) and is
// written into every unit encoded with it, so a unit is never decoded against another profile.
// The calibration measurements ride along in the file for the record but are not hashed.
//
// File: JSON, {"format": "sparkv-codec-profile", "version": 2, "model_fingerprint": "hex", ...};
// a level's optional "head_bits" lists, per layer, "k0,k1,../v0,v1,.." (one width per KV head);
// its optional "salient_per_mille" and "salient_bits", and the file's "saliency_queries", say
// which tokens keep more bits (version 3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/codec.h"

namespace sparkv::codec {

struct CodecProfile {
    // Version 2 adds per-head widths (head_bits), version 3 salient tokens; older files load.
    static constexpr uint32_t kVersion = 3;

    struct LevelTable {
        Level level = Level::c5;
        std::vector<BitWidths> bits;  // one per layer: the widest of its heads (the unit header's)
        double predicted_kl = 0;      // calibration's prediction (sum of per-layer estimates)
        double ratio_vs_fp16 = 0;     // measured on the calibration text
        // [layer][KV head]: each head's own widths; empty when all heads of a layer share bits.
        std::vector<std::vector<BitWidths>> head_bits;
        // Salient tokens (version 3): per layer, this many per mille of the context's tokens,
        // those its last `saliency_queries` queries attend to most, are stored at salient_bits
        // (format version 3 units). 0: none.
        uint32_t salient_per_mille = 0;
        uint8_t salient_bits = 8;
    };

    uint32_t version = kVersion;
    uint64_t model_fingerprint = 0;
    uint32_t n_layers = 0;
    uint32_t sink_tokens = 0;        // first tokens of the context (chunk 0) stored as fp16
    uint32_t saliency_queries = 64;  // how many of the context's last tokens rank saliency
    std::vector<LevelTable> levels;
    // The level this model should stream by default: the smallest one whose fidelity was
    // checked on text disjoint from calibration (`codec-calibrate --default-level`, after
    // `codec-bench`). Not hashed: it changes no unit's encoding.
    std::optional<Level> default_level;
    std::string calibration_json = "{}";  // measurements behind the tables; not hashed

    uint64_t hash() const;
    const LevelTable* find(Level level) const;
    // The widths of `level` at `layer`; throws Error when the profile lacks the level or layer.
    BitWidths bits_for(Level level, uint32_t layer) const;
    // The per-head widths of `layer`, or nullptr when the level has none.
    const std::vector<BitWidths>* head_bits_for(Level level, uint32_t layer) const;
    // Whether any level keeps salient tokens (ingest then ranks them before encoding).
    bool uses_saliency() const;
    // Rows of an n_tokens unit spread evenly at `level`'s salient share (none without one): for
    // timing and size runs, where which rows are salient does not matter, only how many.
    std::vector<uint32_t> evenly_spread_salient_rows(Level level, uint32_t n_tokens) const;
};

// Returns *profile, or throws an Error telling the user how to make one.
const CodecProfile& require_profile(const CodecProfile* profile, Level level);

std::string profile_to_json(const CodecProfile& profile);
// Parses and validates (format, version, ranges, one table per level, layer counts). `where`
// names the source in errors.
CodecProfile profile_from_json(std::string_view text, std::string_view where);
CodecProfile load_profile(const std::string& path);
void save_profile(const CodecProfile& profile, const std::string& path);

// Where a model's profile lives by default: <cache>/codec-profiles/<fingerprint>.json.
std::string default_profile_path(uint64_t model_fingerprint);

// The model's profile: the one in the cache (calibrated here), else the one shipped with SparKV
// for it (share/codec-profiles/<fingerprint>.json), else none.
std::optional<CodecProfile> find_model_profile(uint64_t model_fingerprint);
std::string find_model_profile_path(uint64_t model_fingerprint);  // its path, or empty

// The lossy level to stream by default: the profile's default level when it names one, else
// kDefaultLossyLevel (q5h), which needs no profile.
Level default_lossy_level(const CodecProfile* profile);
Level default_lossy_level(uint64_t model_fingerprint);  // with find_model_profile

}  // namespace sparkv::codec
