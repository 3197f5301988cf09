// Objects in an S3-compatible bucket under a key prefix: key "a/b/c" is the S3 object
// "<prefix>/a/b/c" of the bucket. An S3 PUT is atomic (readers see the old object, the new one or
// none, never a prefix), which is all the store's commit rule needs; see store/context_store.h
// for why no conditional write is needed. Objects of at least S3Config::multipart_threshold bytes
// are uploaded in parts, and an upload that fails is aborted (or, if the worker died, removed by
// remove_incomplete_writes()).
#pragma once

#include <functional>
#include <memory>

#include "store/s3_client.h"
#include "store/s3_xml.h"
#include "store/storage_backend.h"

namespace sparkv {

class S3Backend final : public StorageBackend {
  public:
    // prefix: "" or segments like a store key ("team/kv"); objects live under "<prefix>/".
    S3Backend(S3Config config, std::string prefix);

    bool contains(std::string_view key) const override;
    std::optional<uint64_t> size(std::string_view key) const override;
    void put(std::string_view key, std::span<const uint8_t> bytes) override;
    std::vector<uint8_t> get(std::string_view key) const override;
    // Reads the first window of the object with one ranged GET (a unit fits in it); later reads
    // ask for the same version (If-Match on its ETag), so a replaced object fails the read
    // instead of mixing two versions.
    std::unique_ptr<ObjectReader> open(std::string_view key) const override;
    std::vector<std::string> list(std::string_view prefix) const override;
    std::vector<std::string> list_children(std::string_view prefix) const override;
    std::vector<ObjectInfo> list_info(std::string_view prefix) const override;
    void remove(std::string_view key) override;
    // Aborts multipart uploads under the prefix that were started at least min_age ago.
    size_t remove_incomplete_writes(std::chrono::seconds min_age) override;
    std::string describe() const override;

    const S3Client& client() const { return client_; }
    const std::string& prefix() const { return prefix_; }

    // Bytes fetched by open()'s first request; later windows are as large.
    static constexpr uint64_t kReadWindow = uint64_t{4} << 20;

  private:
    std::string object_key(std::string_view key) const;
    // Store key of an S3 object key under the prefix, or "" for one outside it or invalid.
    std::string store_key(std::string_view object) const;
    void put_multipart(const std::string& object, std::span<const uint8_t> bytes,
                       const std::vector<std::pair<std::string, std::string>>& headers);
    // ListObjectsV2 pages; calls on_page with each page's parsed XML root.
    void list_pages(const std::string& object_prefix, bool delimited,
                    const std::function<void(const XmlElement&)>& on_page) const;
    std::optional<uint64_t> size_of_object(const std::string& object) const;

    S3Client client_;
    std::string prefix_;
};

// "2026-12-02T11:17:12.120Z" (ISO 8601 UTC, as S3 listings give times); nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> parse_s3_time(std::string_view text);

}  // namespace sparkv
