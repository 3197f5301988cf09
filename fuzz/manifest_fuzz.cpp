// libFuzzer target for what a device parses from a server it may not trust: manifest JSON (with
// and without a signature member, under a trust policy and without), and the token ids object
// checked against a parsed manifest. Any crash, hang, sanitizer report or exception other than
// sparkv::Error is a bug.
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "store/context_store.h"
#include "store/manifest_signature.h"
#include "store/trust.h"

namespace {

// A fixed key, so inputs that carry its public key reach the signature check itself.
const sparkv::TrustPolicy& trust() {
    static const sparkv::TrustPolicy policy({sparkv::PublicKey::from_hex(
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")});
    return policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    sparkv::Manifest manifest;
    bool parsed = false;
    try {
        manifest = sparkv::Manifest::parse(text);
        parsed = true;
    } catch (const sparkv::Error&) {
    }
    const std::string id = parsed ? manifest.context_id : std::string(64, '0');
    try {
        sparkv::TrustPolicy().check_manifest(text, id, "fingerprint");
    } catch (const sparkv::Error&) {
    }
    try {
        trust().check_manifest(text, id);
    } catch (const sparkv::Error&) {
    }
    if (parsed) {
        // The same bytes as a token ids object of the manifest they describe.
        try {
            sparkv::parse_tokens(manifest, std::span(data, size));
        } catch (const sparkv::Error&) {
        }
        (void)manifest.dump();
    }
    return 0;
}
