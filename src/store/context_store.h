// The store's layout on top of a StorageBackend:
//
//   contexts/<id>/manifest.json                 written last, once every object is in place
//   contexts/<id>/tokens.i32                    the context's token ids (little-endian int32)
//   contexts/<id>/units/<level>/t<t>_l<l>.kvu   one immutable encoded unit object
//
// Units are opaque bytes here (the codec gives them their own header and checksum); the store
// records their size and xxhash64 in the manifest so a reader can verify what it received.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "store/manifest.h"
#include "store/manifest_signature.h"
#include "store/storage_backend.h"

namespace sparkv {

std::string manifest_key(std::string_view context_id);
std::string unit_key(std::string_view context_id, std::string_view level, int32_t t, int32_t l);
std::string tokens_key(std::string_view context_id);

// The token ids stored as the tokens object of `manifest`'s context, checked against everything
// the manifest says of them: size, xxhash64, SHA-256, and that they hash to the context id (so the
// tokens a device computes from are the ones the id names). Throws Error naming what disagrees.
std::vector<int32_t> parse_tokens(const Manifest& manifest, std::span<const uint8_t> bytes);

class ContextStore {
  public:
    explicit ContextStore(std::shared_ptr<StorageBackend> backend);

    StorageBackend& backend() const { return *backend_; }

    // Context ids that have a manifest (only complete ingests have one).
    std::vector<std::string> list_contexts() const;
    bool has_manifest(std::string_view context_id) const;
    Manifest read_manifest(std::string_view context_id) const;
    // The stored manifest's signature, or nullopt if it is unsigned (store/manifest_signature.h).
    // Throws Error if the manifest is absent or its signature is malformed or does not match.
    std::optional<ManifestSignature> read_manifest_signature(std::string_view context_id) const;

    enum class Check { sizes, checksums };
    // True when the manifest is present and valid and every object it names exists with the
    // recorded size (and, with Check::checksums, the recorded xxhash64 and SHA-256). A complete
    // context needs no re-ingest.
    bool is_complete(std::string_view context_id, Check check = Check::sizes) const;

    std::vector<uint8_t> read_unit(std::string_view context_id, std::string_view level, int32_t t,
                                   int32_t l) const;
    // The context's token ids, verified with parse_tokens().
    std::vector<int32_t> read_tokens(const Manifest& manifest) const;

    // Removes the manifest first, so the context stops being visible before its objects go.
    void remove_context(std::string_view context_id);

  private:
    std::shared_ptr<StorageBackend> backend_;
};

// Writes one context. Objects may be put from several threads; commit() writes the manifest
// after checking that every (unit, level) object was put, so an interrupted ingest leaves no
// manifest and is simply redone.
class ContextWriter {
  public:
    // skeleton: from make_manifest(); its object sizes are filled in as objects are put.
    ContextWriter(ContextStore& store, Manifest skeleton);

    const Manifest& manifest() const { return manifest_; }

    // Writes the object of unit (t, l) at level and records its size and checksum.
    void put_unit(int32_t t, int32_t l, std::string_view level, std::span<const uint8_t> bytes);
    // Writes the token ids object (they must be the manifest's n_tokens ids).
    void put_tokens(std::span<const int32_t> tokens);
    // Writes the manifest, signed with `key` if given (store/manifest_signature.h); throws Error
    // naming the first missing object if any.
    const Manifest& commit(const SigningKey* key = nullptr);

  private:
    ContextStore& store_;
    Manifest manifest_;
    std::mutex mutex_;
    bool committed_ = false;
};

}  // namespace sparkv
