#include "store/trust.h"

#include <fmt/ranges.h>

#include <cstdio>
#include <mutex>

#include "store/content_id.h"
#include "store/manifest_signature.h"

namespace sparkv {

TrustPolicy::TrustPolicy(std::vector<PublicKey> keys) : keys_(std::move(keys)) {}

TrustPolicy TrustPolicy::from_files(const std::vector<std::string>& paths) {
    std::vector<PublicKey> keys;
    for (const auto& path : paths) keys.push_back(load_public_key(path));
    return TrustPolicy(std::move(keys));
}

std::string TrustPolicy::describe() const {
    if (keys_.empty()) return "no trust key: contexts are not verified (checksums only)";
    std::vector<std::string> ids;
    for (const auto& key : keys_) ids.push_back(key.id());
    return fmt::format("trusting {} key{} ({})", keys_.size(), keys_.size() == 1 ? "" : "s",
                       fmt::join(ids, ", "));
}

Manifest TrustPolicy::check_manifest(std::string_view text, std::string_view context_id,
                                     std::string_view model_fingerprint) const {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        fail("manifest of {}: not valid JSON ({})", context_id, e.what());
    }
    if (enforcing()) {
        std::optional<ManifestSignature> signature;
        try {
            signature = read_manifest_signature(j);
        } catch (const Error& e) {
            throw UntrustedContext(fmt::format("context {} refused: {}", context_id, e.what()));
        }
        if (!signature)
            throw UntrustedContext(fmt::format(
                "context {} refused: its manifest is not signed ({})", context_id, describe()));
        bool trusted = false;
        for (const auto& key : keys_) trusted = trusted || key == signature->key;
        if (!trusted)
            throw UntrustedContext(
                fmt::format("context {} refused: signed by key {}, which is not trusted ({})",
                            context_id, signature->key.id(), describe()));
        if (!manifest_signature_valid(j, *signature))
            throw UntrustedContext(fmt::format(
                "context {} refused: the manifest does not match its signature by key {} "
                "(altered after signing)",
                context_id, signature->key.id()));
    }
    Manifest m;
    try {
        m = Manifest::from_json(j);
    } catch (const nlohmann::json::exception& e) {
        fail("manifest of {}: unexpected JSON content ({})", context_id, e.what());
    }
    if (m.context_id != context_id)
        fail("the manifest served for {} describes context {}", context_id, m.context_id);
    if (!model_fingerprint.empty() && m.model.fingerprint != model_fingerprint)
        throw UntrustedContext(
            fmt::format("context {} refused: its KV was computed with model {} ({}), not with "
                        "this model ({})",
                        context_id, m.model.fingerprint, m.model.name, model_fingerprint));
    return m;
}

bool TrustPolicy::object_matches(const UnitObject& expected, std::span<const uint8_t> bytes) const {
    if (bytes.size() != expected.bytes || object_checksum(bytes) != expected.xxh64) return false;
    return !enforcing() || sha256(bytes) == expected.sha256;
}

TrustPolicy TrustPolicy::for_token_ids_only() {
    TrustPolicy policy;
    policy.silent_ = true;
    return policy;
}

void TrustPolicy::note_if_unverified() const {
    if (enforcing() || silent_) return;
    static std::once_flag once;
    std::call_once(once, [] {
        std::fprintf(stderr,
                     "sparkv: no --trust-key given: fetched contexts are not verified "
                     "(checksums only, which do not stop a malicious server)\n");
    });
}

}  // namespace sparkv
