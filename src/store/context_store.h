// The store's layout on top of a StorageBackend:
//
//   contexts/<id>/manifest.json                  written last; names the attempt <a> it commits
//   contexts/<id>/attempts/<a>/tokens.i32        the context's token ids (little-endian int32)
//   contexts/<id>/attempts/<a>/units/<level>/t<t>_l<l>.kvu   one immutable encoded unit object
//
// Units are opaque bytes here (the codec gives them their own header and checksum); the store
// records their size and xxhash64 in the manifest so a reader can verify what it received.
//
// The commit rule holds on an object store without conditional writes, for any number of
// workers: each ingest attempt writes its objects under a fresh attempt name that no other worker
// uses, and the manifest, written last (after checking that every object it names is there),
// names that attempt. Two workers ingesting the same context race only on the manifest, and
// whichever manifest wins names a complete set written by one worker, never a mix (their KV may
// differ in the last bits: thread counts and instruction sets change rounding). Attempts that no
// manifest names (a crashed worker, the loser of a race) are invisible to readers and are removed
// by collect_garbage() (store/garbage.h) once nothing in them changed for a while.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "store/manifest.h"
#include "store/storage_backend.h"

namespace sparkv {

std::string manifest_key(std::string_view context_id);
// contexts/<id>/attempts/<attempt>: everything an attempt writes is under it.
std::string attempt_prefix(std::string_view context_id, std::string_view attempt);
std::string unit_key(std::string_view context_id, std::string_view attempt, std::string_view level,
                     int32_t t, int32_t l);
std::string tokens_key(std::string_view context_id, std::string_view attempt);
// The keys of the objects a manifest names (its context and attempt).
std::string unit_key(const Manifest& manifest, std::string_view level, int32_t t, int32_t l);
std::string tokens_key(const Manifest& manifest);

// A fresh attempt name: the UTC time (so listings sort by age) and 64 random bits, e.g.
// "20261202T101500Z-3fa9c0d1e2b3a4f5". Two workers never draw the same one.
std::string new_attempt_name();

// What a cache in front of the store (CDN, browser) may do with the object at key: units and
// token ids never change under their names; a manifest may be re-committed.
std::string_view cache_control_for_key(std::string_view key);

// One ingest attempt of a context, as a listing sees it.
struct AttemptInfo {
    std::string name;
    size_t objects = 0;
    uint64_t bytes = 0;
    std::chrono::system_clock::time_point newest;  // the latest write of any of its objects
};

// The token ids stored as the tokens object of `manifest`'s context, checked against everything
// the manifest says of them: size, checksum, and that they hash to the context id (so the tokens
// a device computes from are the ones the id names). Throws Error naming what disagrees.
std::vector<int32_t> parse_tokens(const Manifest& manifest, std::span<const uint8_t> bytes);

class ContextStore {
  public:
    explicit ContextStore(std::shared_ptr<StorageBackend> backend);

    StorageBackend& backend() const { return *backend_; }

    // Context ids that have a manifest (only complete ingests have one).
    std::vector<std::string> list_contexts() const;
    bool has_manifest(std::string_view context_id) const;
    Manifest read_manifest(std::string_view context_id) const;

    enum class Check { sizes, checksums };
    // True when the manifest is present and valid and every object it names exists with the
    // recorded size (and, with Check::checksums, the recorded xxhash64). A complete context needs
    // no re-ingest.
    bool is_complete(std::string_view context_id, Check check = Check::sizes) const;

    // The attempts stored for a context, committed or not, sorted by name.
    std::vector<AttemptInfo> list_attempts(std::string_view context_id) const;

    std::vector<uint8_t> read_unit(const Manifest& manifest, std::string_view level, int32_t t,
                                   int32_t l) const;
    // The context's token ids, verified with parse_tokens().
    std::vector<int32_t> read_tokens(const Manifest& manifest) const;

    // Removes the manifest first, so the context stops being visible before its objects go.
    void remove_context(std::string_view context_id);

  private:
    std::shared_ptr<StorageBackend> backend_;
};

// Writes one context as one attempt. Objects may be put from several threads; commit() writes the
// manifest after checking that every (unit, level) object was put and is in the store with its
// size, so an interrupted ingest leaves no manifest and is simply redone.
class ContextWriter {
  public:
    // skeleton: from make_manifest(); its object sizes are filled in as objects are put. Its
    // attempt, when empty, is set to new_attempt_name().
    ContextWriter(ContextStore& store, Manifest skeleton);

    const Manifest& manifest() const { return manifest_; }

    // Writes the object of unit (t, l) at level and records its size and checksum.
    void put_unit(int32_t t, int32_t l, std::string_view level, std::span<const uint8_t> bytes);
    // Writes the token ids object (they must be the manifest's n_tokens ids).
    void put_tokens(std::span<const int32_t> tokens);
    void set_prompt_format(std::string format);
    // Checks that every object the manifest names is in the store with its recorded size, then
    // writes the manifest; throws Error naming the first missing object if any.
    const Manifest& commit();

  private:
    void verify_objects() const;

    ContextStore& store_;
    Manifest manifest_;
    std::mutex mutex_;
    bool committed_ = false;
};

}  // namespace sparkv
