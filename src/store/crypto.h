// Cryptographic building blocks of the store, all from libsodium (never hand-written): SHA-256
// digests for content ids and unit hashes, Ed25519 for signed manifests, constant-time compare.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sparkv {

using Sha256Digest = std::array<uint8_t, 32>;

// Initialises libsodium once (thread-safe, idempotent); every function here calls it.
void crypto_init();

Sha256Digest sha256(std::span<const uint8_t> bytes);
Sha256Digest sha256(std::string_view text);

// Incremental SHA-256, for data that arrives in pieces.
class Sha256 {
  public:
    Sha256();
    void update(std::span<const uint8_t> bytes);
    void update(std::string_view text);
    Sha256Digest finish();

  private:
    alignas(64) std::array<uint8_t, 128> state_;  // crypto_hash_sha256_state, opaque here
};

// Lowercase hex, and back (nullopt unless exactly 2 * N lowercase hex digits).
std::string to_hex(std::span<const uint8_t> bytes);
std::optional<Sha256Digest> parse_sha256_hex(std::string_view text);
bool parse_hex(std::string_view text, std::span<uint8_t> out);

// Equal sizes and equal bytes, in time that depends only on the size (sodium_memcmp).
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace sparkv
