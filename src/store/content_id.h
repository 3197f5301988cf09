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

// SHA-256 of (model fingerprint, token ids, chunk size), as 64 lowercase hex digits. It is
// cryptographic so that nobody can craft a second token sequence (or model) with the same id:
// a device that checks fetched token ids against the id it asked for computes from exactly the
// tokens the id names.
std::string context_id(std::string_view model_fingerprint, std::span<const int32_t> tokens,
                       int32_t chunk_size);

// True for a string shaped like a context id (64 lowercase hex digits).
bool is_context_id(std::string_view text);

constexpr size_t kContextIdDigits = 64;

// The fast checksum the manifest records for every object (against accidents; the SHA-256 it
// records beside it is what protects against an attacker).
uint64_t object_checksum(std::span<const uint8_t> bytes);

// 16 lowercase hex digits, and back (nullopt on anything else).
std::string hex64(uint64_t value);
std::optional<uint64_t> parse_hex64(std::string_view text);

}  // namespace sparkv
