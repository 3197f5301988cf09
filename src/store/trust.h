// What a device trusts, and the checks that enforce it. With no trusted key a device works as it
// always did (checksums against accidents only) and says so once per process. With one or more
// keys (`--trust-key FILE`, repeatable) it refuses a context whose manifest is unsigned, signed
// by another key, or altered after signing, and any unit or token ids whose SHA-256 differs from
// the signed manifest: such data never reaches the KV cache; the caller computes it instead.
//
// UnitClient applies this policy (ClientConfig::trust); the runtime can call it directly for data
// it obtained another way.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "store/manifest.h"
#include "store/signing.h"

namespace sparkv {

// Thrown when a context is refused under a trust policy (as opposed to unreachable or malformed):
// the caller should compute the context locally.
class UntrustedContext : public Error {
  public:
    using Error::Error;
};

class TrustPolicy {
  public:
    TrustPolicy() = default;  // trusts nothing in particular: contexts are not verified
    explicit TrustPolicy(std::vector<PublicKey> keys);
    // Loads --trust-key files (each a PREFIX.pub from `sparkv keygen`); throws Error.
    static TrustPolicy from_files(const std::vector<std::string>& paths);
    // After a refusal: verifies nothing and says nothing, for fetching the token ids of a refused
    // context, which are usable because they must hash (with this model's identity) to the very
    // id that was asked for (store/context_store.h parse_tokens).
    static TrustPolicy for_token_ids_only();

    bool enforcing() const { return !keys_.empty(); }
    const std::vector<PublicKey>& keys() const { return keys_; }
    // "trusting 2 keys (1a2b..., 3c4d...)", or that contexts are not verified.
    std::string describe() const;

    // Parses and validates a manifest served for `context_id`. When enforcing, also checks its
    // signature against the trusted keys (UntrustedContext if unsigned, foreign or altered).
    // `model_fingerprint`, when not empty, must be the manifest's (UntrustedContext otherwise:
    // KV computed with other weights is never usable). Throws Error for malformed manifests.
    Manifest check_manifest(std::string_view text, std::string_view context_id,
                            std::string_view model_fingerprint = {}) const;

    // True if the bytes are the object the manifest describes: size and xxhash64 always, and
    // SHA-256 when enforcing.
    bool object_matches(const UnitObject& expected, std::span<const uint8_t> bytes) const;

    // Prints, once per process, that contexts are not verified (when not enforcing).
    void note_if_unverified() const;

  private:
    std::vector<PublicKey> keys_;
    bool silent_ = false;
};

}  // namespace sparkv
