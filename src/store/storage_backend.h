// Where immutable objects live. One small interface, as in LMCache's storage backends, with the
// filesystem as the first implementation; an object store or CDN origin could sit behind it
// unchanged because keys are plain relative paths ("contexts/<id>/manifest.json").
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv {

// Random access to one object without loading it whole (the server streams from it).
class ObjectReader {
  public:
    virtual ~ObjectReader() = default;
    virtual uint64_t size() const = 0;
    // Reads up to dst.size() bytes at offset; fewer only at the end of the object.
    virtual size_t read_at(uint64_t offset, std::span<uint8_t> dst) = 0;
};

// One complete object as a listing sees it.
struct ObjectInfo {
    std::string key;
    uint64_t size = 0;
    std::chrono::system_clock::time_point modified;  // when it was last written (store's clock)
};

class StorageBackend {
  public:
    virtual ~StorageBackend() = default;

    virtual bool contains(std::string_view key) const = 0;
    virtual std::optional<uint64_t> size(std::string_view key) const = 0;
    // Atomic and durable: readers see either no object or the whole object, never a prefix.
    virtual void put(std::string_view key, std::span<const uint8_t> bytes) = 0;
    // Throws Error if the object does not exist.
    virtual std::vector<uint8_t> get(std::string_view key) const = 0;
    // nullptr if the object does not exist.
    virtual std::unique_ptr<ObjectReader> open(std::string_view key) const = 0;
    // Complete objects whose key starts with prefix + "/" (recursively), sorted.
    virtual std::vector<std::string> list(std::string_view prefix) const = 0;
    // Names directly under prefix (objects and sub-prefixes alike), like a delimiter listing.
    virtual std::vector<std::string> list_children(std::string_view prefix) const = 0;
    // list() with each object's size and modification time.
    virtual std::vector<ObjectInfo> list_info(std::string_view prefix) const = 0;
    // Removing a missing object is not an error.
    virtual void remove(std::string_view key) = 0;
    // Deletes what interrupted writes left behind and readers never see (temporary files,
    // unfinished multipart uploads) once it is at least min_age old: a younger one may belong to
    // a writer still running. Returns how many were removed.
    virtual size_t remove_incomplete_writes(std::chrono::seconds min_age) { return 0; }
    // Where the objects are, for messages.
    virtual std::string describe() const = 0;
};

// Keys are relative paths of segments [A-Za-z0-9_.-] joined by '/'; no segment is empty, starts
// with '.' (reserved for temporary files) or is "..". Throws Error naming the key otherwise.
void validate_key(std::string_view key);
bool is_valid_key(std::string_view key);

}  // namespace sparkv
