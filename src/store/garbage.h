// Garbage collection of a store: removes what no manifest names and nobody can be writing any more.
//
// An object of a context is garbage when it is not under the attempt its manifest names (an
// attempt that lost a race, a crashed worker's partial attempt, objects of an older layout) and
// nothing of its group changed for min_age: neither the attempt's newest object nor the manifest
// (a manifest re-committed a minute ago may have just superseded an attempt that a device is
// still streaming). A worker still ingesting keeps writing objects, so its attempt stays young;
// ContextWriter::commit() checks that every object is still there before it writes a manifest.
// Contexts whose manifest cannot be read are left alone. Unfinished writes of the backend itself
// (temporary files, multipart uploads) older than min_age go too.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "store/context_store.h"

namespace sparkv {

struct GcOptions {
    // Long enough for any ingest to write its next object and any device to finish streaming a
    // superseded attempt; an hour is far above both (an ingest writes an object every few
    // seconds, a context streams in seconds to minutes).
    std::chrono::seconds min_age{3600};
    bool dry_run = false;  // report what would go, remove nothing
};

struct GcRemoval {
    std::string context_id;
    std::string group;  // an attempt name, or "(outside any attempt)"
    size_t objects = 0;
    uint64_t bytes = 0;
    bool committed_context = false;  // the context has a manifest (the group lost a race)
};

struct GcReport {
    size_t contexts = 0;           // context directories looked at
    size_t kept_attempts = 0;      // unreferenced but young: maybe still being written
    size_t unreadable = 0;         // contexts skipped because their manifest cannot be read
    size_t incomplete_writes = 0;  // temporary files or multipart uploads removed
    std::vector<GcRemoval> removed;

    size_t objects_removed() const;
    uint64_t bytes_removed() const;
};

GcReport collect_garbage(ContextStore& store, const GcOptions& options);

}  // namespace sparkv
