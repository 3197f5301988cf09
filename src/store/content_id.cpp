#include "store/content_id.h"

#include <xxhash.h>

#include <array>

#include "common/error.h"
#include "store/crypto.h"

namespace sparkv {

namespace {

// Bumped whenever the hashed byte layout changes, so ids of different layouts never collide. v1
// was XXH3-128 of the same layout.
constexpr std::string_view kIdDomain = "sparkv-context-v2";

void update_le(Sha256& hash, uint64_t value, int n_bytes) {
    std::array<uint8_t, 8> bytes{};
    for (int i = 0; i < n_bytes; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    hash.update(std::span(bytes.data(), static_cast<size_t>(n_bytes)));
}

}  // namespace

std::string context_id(std::string_view model_fingerprint, std::span<const int32_t> tokens,
                       int32_t chunk_size) {
    if (chunk_size <= 0) fail("context id: chunk size must be positive, got {}", chunk_size);
    Sha256 hash;
    // Every variable-length field is length-prefixed, so no two inputs share a byte stream.
    hash.update(kIdDomain);
    update_le(hash, model_fingerprint.size(), 8);
    hash.update(model_fingerprint);
    update_le(hash, static_cast<uint32_t>(chunk_size), 4);
    update_le(hash, tokens.size(), 8);
    // Token ids as little-endian int32, hashed in blocks rather than one call per token.
    std::array<uint8_t, 4096> block;
    size_t used = 0;
    for (int32_t token : tokens) {
        const auto v = static_cast<uint32_t>(token);
        for (int i = 0; i < 4; ++i) block[used++] = static_cast<uint8_t>(v >> (8 * i));
        if (used == block.size()) {
            hash.update(block);
            used = 0;
        }
    }
    hash.update(std::span(block.data(), used));
    return to_hex(hash.finish());
}

bool is_context_id(std::string_view text) {
    if (text.size() != kContextIdDigits) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

uint64_t object_checksum(std::span<const uint8_t> bytes) {
    return XXH64(bytes.data(), bytes.size(), 0);
}

std::string hex64(uint64_t value) {
    return fmt::format("{:016x}", value);
}

std::optional<uint64_t> parse_hex64(std::string_view text) {
    if (text.size() != 16) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        int digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else
            return std::nullopt;
        value = (value << 4) | static_cast<uint64_t>(digit);
    }
    return value;
}

}  // namespace sparkv
