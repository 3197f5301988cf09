// Signed manifests. The signature lives inside manifest.json as one extra member, so a manifest
// and its signature are always written (and replaced) together by one atomic put:
//
//   "signature": {"algorithm": "ed25519", "key_id": "<16 hex>", "public_key": "<64 hex>",
//                 "value": "<128 hex>"}
//
// It is Ed25519 over kManifestSignatureDomain followed by the manifest's canonical text: the
// JSON object without its "signature" member, serialised compactly by nlohmann::json (object
// keys sorted, numbers in their shortest round-trip form). The verifier canonicalises the JSON
// it received, so members it does not know (added by newer builds) are covered too. The manifest
// records the size, xxhash64 and SHA-256 of every unit object and of the token ids, and the
// context id, so the signature covers the whole context.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "store/signing.h"

namespace sparkv {

inline constexpr std::string_view kManifestSignatureDomain = "sparkv-manifest-signature-v1\n";

struct ManifestSignature {
    PublicKey key;
    Ed25519Signature value{};
};

// Adds (or replaces) the "signature" member of a manifest JSON object.
void sign_manifest_json(nlohmann::json& manifest, const SigningKey& key);

// The "signature" member, or nullopt for an unsigned manifest. Throws Error if it is malformed.
std::optional<ManifestSignature> read_manifest_signature(const nlohmann::json& manifest);

// True if `signature` is a valid signature of `manifest` (whose own "signature" is ignored).
bool manifest_signature_valid(const nlohmann::json& manifest, const ManifestSignature& signature);

}  // namespace sparkv
