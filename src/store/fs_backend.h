// Objects as plain files under a root directory: key "a/b/c" is the file <root>/a/b/c, so a static
// HTTP server pointed at the root serves the same URLs as `sparkv serve`.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>

#include "store/storage_backend.h"

namespace sparkv {

class FilesystemBackend final : public StorageBackend {
  public:
    // Creates the root directory if needed.
    explicit FilesystemBackend(std::filesystem::path root);

    bool contains(std::string_view key) const override;
    std::optional<uint64_t> size(std::string_view key) const override;
    // Writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs
    // the directory: a crash leaves either the old state or the new object, plus at most a
    // temporary file that readers never see.
    void put(std::string_view key, std::span<const uint8_t> bytes) override;
    std::vector<uint8_t> get(std::string_view key) const override;
    std::unique_ptr<ObjectReader> open(std::string_view key) const override;
    std::vector<std::string> list(std::string_view prefix) const override;
    std::vector<std::string> list_children(std::string_view prefix) const override;
    std::vector<ObjectInfo> list_info(std::string_view prefix) const override;
    void remove(std::string_view key) override;
    size_t remove_incomplete_writes(std::chrono::seconds min_age) override {
        return remove_stale_temp_files(min_age);
    }
    std::string describe() const override;

    const std::filesystem::path& root() const { return root_; }

    // Deletes temporary files left by interrupted writes that are at least min_age old (a younger
    // one may belong to a writer still running). Returns how many were removed.
    size_t remove_stale_temp_files(std::chrono::seconds min_age);

    // True for the names put() gives its temporary files.
    static bool is_temp_name(std::string_view file_name);

  private:
    // The file of a valid key, refusing keys whose resolved path leaves the root (symlinks).
    std::filesystem::path resolve(std::string_view key) const;

    std::filesystem::path root_;  // canonical
    std::atomic<uint64_t> temp_counter_{0};
};

}  // namespace sparkv
