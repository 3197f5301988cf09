// Signed requests to an S3-compatible object store over libcurl. libcurl signs every request
// itself (CURLOPT_AWS_SIGV4); this file only supplies what curl 7.88 leaves to its caller: the
// payload's SHA-256 in x-amz-content-sha256 and the query string already in SigV4's canonical form
// (curl signs the query exactly as given). Transient failures (connection errors, stalls, 500,
// 502, 503, 504, 429) are retried with exponential backoff and full jitter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sparkv {

struct S3Config {
    // scheme://host[:port] of the S3 API, e.g. "http://127.0.0.1:3900" (Garage, MinIO). Empty:
    // AWS itself, https://<bucket>.s3.<region>.amazonaws.com (virtual-hosted style); with an
    // endpoint, requests use path style (<endpoint>/<bucket>/<key>), which every S3-compatible
    // store accepts.
    std::string endpoint;
    std::string region = "us-east-1";
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // temporary credentials only
    std::string bucket;

    double connect_timeout_s = 5;
    // A transfer that moves less than 1 byte/s for this long fails (and is retried): a stalled
    // connection, without cutting off a large object that is merely slow.
    double stall_timeout_s = 20;
    // Attempts per request (1: no retry). Backoff before attempt n+1: a random time in
    // [0, min(backoff_max_s, backoff_initial_s * 2^n)) ("full jitter", so that many workers that
    // failed together do not retry together).
    int max_attempts = 6;
    double backoff_initial_s = 0.1;
    double backoff_max_s = 5;
    // Objects of at least this size are uploaded in parts of part_size bytes (S3's minimum part
    // is 5 MiB; 16 MiB parts keep a 1 GiB object at 64 requests).
    uint64_t multipart_threshold = uint64_t{64} << 20;
    uint64_t part_size = uint64_t{16} << 20;

    // Throws Error naming the first missing or malformed setting.
    void validate() const;
};

struct S3Request {
    std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
    std::string key;             // object key in the bucket; empty for bucket-level requests
    // Query parameters, e.g. {"list-type", "2"}, {"uploads", ""}: encoded and sorted here.
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::span<const uint8_t> body;
};

struct S3Response {
    long status = 0;
    std::vector<uint8_t> body;
    std::string etag;           // with its quotes, as the store sent it
    std::string content_range;  // "bytes 0-99/1234" for a 206
    std::optional<uint64_t> content_length;
    int attempts = 0;  // how many tries it took

    std::string_view text() const {
        return {reinterpret_cast<const char*>(body.data()), body.size()};
    }
    // "<status> <Code>: <Message>" from an S3 error body, else the status and the body's start.
    std::string error_text() const;
};

class S3Client {
  public:
    explicit S3Client(S3Config config);
    ~S3Client();
    S3Client(const S3Client&) = delete;
    S3Client& operator=(const S3Client&) = delete;

    // Sends the request, retrying transient failures. Returns the final response whatever its
    // status; throws Error only when no response arrived after the last attempt.
    S3Response send(const S3Request& request) const;

    const S3Config& config() const { return config_; }
    // The URL of an object (or of the bucket, for an empty key), without a query.
    std::string url(std::string_view key) const;

  private:
    struct HandlePool;
    S3Config config_;
    std::unique_ptr<HandlePool> handles_;
};

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, everything else is
// %XX with upper-case hex; '/' is kept only when keep_slash (object paths).
std::string s3_uri_encode(std::string_view text, bool keep_slash);
// The canonical query string: parameters encoded, sorted by name then value, "name=value"
// joined by '&' (an empty value keeps its '=').
std::string s3_canonical_query(std::vector<std::pair<std::string, std::string>> query);
// Lower-case hex SHA-256 of bytes.
std::string sha256_hex(std::span<const uint8_t> bytes);
// Whether a response status is worth another attempt.
bool s3_status_is_transient(long status);

}  // namespace sparkv
