// Ed25519 keys for signed contexts (libsodium). `sparkv keygen --out PREFIX` writes a key pair:
//
//   PREFIX.key   the secret key, mode 0600:  "sparkv-ed25519-secret-key <128 hex digits>\n"
//   PREFIX.pub   the public key:             "sparkv-ed25519-public-key <64 hex digits>\n"
//
// The cloud signs with the .key (ingest --sign-key); devices trust .pub files (--trust-key).
// A key is named by its id: the first 8 bytes of the SHA-256 of the public key, in hex.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sparkv {

using Ed25519Signature = std::array<uint8_t, 64>;

struct PublicKey {
    std::array<uint8_t, 32> bytes{};

    std::string id() const;   // 16 hex digits
    std::string hex() const;  // 64 hex digits
    bool operator==(const PublicKey&) const = default;

    // Throws Error unless text is 64 lowercase hex digits.
    static PublicKey from_hex(std::string_view text);
};

// Reads a .pub file; throws Error naming the file and what is wrong with it.
PublicKey load_public_key(const std::string& path);

bool verify_signature(const PublicKey& key, std::span<const uint8_t> message,
                      const Ed25519Signature& signature);

class SigningKey {
  public:
    // A fresh random key pair.
    static SigningKey generate();
    // Reads a .key file; refuses one that others may read (like ssh) and one that is malformed.
    static SigningKey load(const std::string& path);

    ~SigningKey();  // wipes the secret
    SigningKey(const SigningKey&) = delete;
    SigningKey& operator=(const SigningKey&) = delete;
    SigningKey(SigningKey&& other) noexcept;
    SigningKey& operator=(SigningKey&& other) noexcept;

    const PublicKey& public_key() const { return public_; }
    Ed25519Signature sign(std::span<const uint8_t> message) const;

    // Writes PREFIX.key (0600, created exclusively: an existing file is an Error) and PREFIX.pub.
    void write_files(const std::string& prefix) const;

  private:
    SigningKey() = default;
    std::array<uint8_t, 64> secret_{};  // libsodium's seed + public key form
    PublicKey public_;
};

}  // namespace sparkv
