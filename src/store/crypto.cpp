#include "store/crypto.h"

#include <sodium.h>

#include "common/error.h"

namespace sparkv {

static_assert(sizeof(crypto_hash_sha256_state) <= 128, "Sha256::state_ is too small");
static_assert(crypto_hash_sha256_BYTES == 32);

void crypto_init() {
    // sodium_init is thread-safe and returns 1 once initialised; -1 only if it cannot work.
    static const int status = sodium_init();
    if (status < 0) fail("crypto: libsodium failed to initialise");
}

Sha256Digest sha256(std::span<const uint8_t> bytes) {
    crypto_init();
    Sha256Digest digest;
    crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
    return digest;
}

Sha256Digest sha256(std::string_view text) {
    return sha256(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Sha256::Sha256() : state_{} {
    crypto_init();
    crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()));
}

void Sha256::update(std::span<const uint8_t> bytes) {
    crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()),
                              bytes.data(), bytes.size());
}

void Sha256::update(std::string_view text) {
    update(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Sha256Digest Sha256::finish() {
    Sha256Digest digest;
    crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()),
                             digest.data());
    return digest;
}

std::string to_hex(std::span<const uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 15]);
    }
    return out;
}

bool parse_hex(std::string_view text, std::span<uint8_t> out) {
    if (text.size() != out.size() * 2) return false;
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (size_t i = 0; i < out.size(); ++i) {
        const int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return true;
}

std::optional<Sha256Digest> parse_sha256_hex(std::string_view text) {
    Sha256Digest digest;
    if (!parse_hex(text, digest)) return std::nullopt;
    return digest;
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    crypto_init();
    if (a.size() != b.size()) return false;
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sparkv
