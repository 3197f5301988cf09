// The one parser of a store argument (`--store` of every command, IngestRequest::store_dir):
//
//   /srv/kv  ./kv  kv  file:///srv/kv   a directory (FilesystemBackend)
//   s3://BUCKET  s3://BUCKET/PREFIX     objects under PREFIX/ in an S3 bucket (S3Backend)
//
// Any other scheme ("gs://b", "http://x", "s3:b", "S3://b") is an error, never a directory
// named after it; a directory whose name has a colon is written ./a:b.
//
// S3 settings come from the usual environment variables, else from the AWS config files
// (profile AWS_PROFILE, default "default"):
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN   aws_access_key_id ... in
//                                                                 AWS_SHARED_CREDENTIALS_FILE
//                                                                 (~/.aws/credentials)
//   AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL_S3 (or   region, endpoint_url in
//   AWS_ENDPOINT_URL)                                             AWS_CONFIG_FILE (~/.aws/config)
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/s3_client.h"
#include "store/storage_backend.h"

namespace sparkv {

struct StoreLocation {
    enum class Kind { filesystem, s3 };
    Kind kind = Kind::filesystem;
    std::string path;    // filesystem
    std::string bucket;  // s3
    std::string prefix;  // s3: "" or a store key ("team/kv")
};

// Throws Error for an unknown scheme or a malformed bucket or prefix.
StoreLocation parse_store_location(std::string_view argument);

// The S3 settings for a bucket from the environment and the AWS config files.
S3Config s3_config_from_environment(std::string bucket);

enum class StoreAccess {
    create,    // a missing directory is created (ingest)
    existing,  // a missing directory is an error (serve, gc)
};

// Opens the backend a store argument names. Throws Error with a message a user can act on.
std::shared_ptr<StorageBackend> open_store(std::string_view argument, StoreAccess access);

}  // namespace sparkv
