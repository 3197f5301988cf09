#include "store/manifest_signature.h"

#include "common/error.h"
#include "store/crypto.h"

namespace sparkv {

namespace {

constexpr const char* kMember = "signature";

// The signed bytes: the domain, then the compact JSON of the manifest without its signature.
std::string signed_message(const nlohmann::json& manifest) {
    if (!manifest.is_object()) fail("manifest: top level is not a JSON object");
    std::string message(kManifestSignatureDomain);
    if (manifest.contains(kMember)) {
        nlohmann::json unsigned_manifest = manifest;
        unsigned_manifest.erase(kMember);
        message += unsigned_manifest.dump();
    } else {
        message += manifest.dump();
    }
    return message;
}

std::span<const uint8_t> as_bytes(const std::string& text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

}  // namespace

void sign_manifest_json(nlohmann::json& manifest, const SigningKey& key) {
    const Ed25519Signature value = key.sign(as_bytes(signed_message(manifest)));
    manifest[kMember] = {{"algorithm", "ed25519"},
                         {"key_id", key.public_key().id()},
                         {"public_key", key.public_key().hex()},
                         {"value", to_hex(value)}};
}

std::optional<ManifestSignature> read_manifest_signature(const nlohmann::json& manifest) {
    if (!manifest.is_object()) fail("manifest: top level is not a JSON object");
    const auto it = manifest.find(kMember);
    if (it == manifest.end()) return std::nullopt;
    const nlohmann::json& s = *it;
    auto text = [&](const char* name) -> std::string {
        if (!s.is_object() || !s.contains(name) || !s[name].is_string())
            fail("manifest: signature.{} is missing or not a string", name);
        return s[name].get<std::string>();
    };
    if (text("algorithm") != "ed25519")
        fail("manifest: signature algorithm \"{}\" is not supported (ed25519 is)",
             text("algorithm").substr(0, 40));
    ManifestSignature signature;
    if (!parse_hex(text("public_key"), signature.key.bytes))
        fail("manifest: signature.public_key is not 64 lowercase hex digits");
    if (!parse_hex(text("value"), signature.value))
        fail("manifest: signature.value is not 128 lowercase hex digits");
    return signature;
}

bool manifest_signature_valid(const nlohmann::json& manifest, const ManifestSignature& signature) {
    return verify_signature(signature.key, as_bytes(signed_message(manifest)), signature.value);
}

}  // namespace sparkv
