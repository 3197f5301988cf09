#include "store/content_id.h"

#include <xxhash.h>

#include <array>
#include <memory>

#include "common/error.h"

namespace sparkv {

namespace {

// Bumped if the hashed byte layout ever changes, so old and new ids cannot collide by accident.
constexpr std::string_view kIdDomain = "sparkv-context-v1";

void update_le(XXH3_state_t* state, uint64_t value, int n_bytes) {
    std::array<uint8_t, 8> bytes{};
    for (int i = 0; i < n_bytes; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    XXH3_128bits_update(state, bytes.data(), static_cast<size_t>(n_bytes));
}

}  // namespace

std::string context_id(std::string_view model_fingerprint, std::span<const int32_t> tokens,
                       int32_t chunk_size) {
    if (chunk_size <= 0) fail("context id: chunk size must be positive, got {}", chunk_size);
    std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                   &XXH3_freeState);
    if (!state) fail("context id: out of memory");
    XXH3_128bits_reset(state.get());
    // Every variable-length field is length-prefixed, so no two inputs share a byte stream.
    XXH3_128bits_update(state.get(), kIdDomain.data(), kIdDomain.size());
    update_le(state.get(), model_fingerprint.size(), 8);
    XXH3_128bits_update(state.get(), model_fingerprint.data(), model_fingerprint.size());
    update_le(state.get(), static_cast<uint32_t>(chunk_size), 4);
    update_le(state.get(), tokens.size(), 8);
    for (int32_t token : tokens) update_le(state.get(), static_cast<uint32_t>(token), 4);

    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state.get()));
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string id;
    id.reserve(32);
    for (unsigned char byte : canonical.digest) {
        id.push_back(kDigits[byte >> 4]);
        id.push_back(kDigits[byte & 15]);
    }
    return id;
}

bool is_context_id(std::string_view text) {
    if (text.size() != 32) return false;
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
