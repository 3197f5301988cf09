// Content addresses for contexts and checksums for unit objects. A context id depends only on what
// determines its KV cache (model, tokens, chunking), so ingesting the same context twice lands on
// the same id and the second ingest can be skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sparkv {

// XXH3-128 of (model fingerprint, token ids, chunk size), as 32 lowercase hex digits.
std::string context_id(std::string_view model_fingerprint, std::span<const int32_t> tokens,
                       int32_t chunk_size);

// True for a string shaped like a context id (32 lowercase hex digits).
bool is_context_id(std::string_view text);

// The checksum the manifest records for every unit object.
uint64_t object_checksum(std::span<const uint8_t> bytes);

// 16 lowercase hex digits, and back (nullopt on anything else).
std::string hex64(uint64_t value);
std::optional<uint64_t> parse_hex64(std::string_view text);

}  // namespace sparkv
