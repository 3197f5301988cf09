#include "store/store_location.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/error.h"
#include "store/fs_backend.h"
#include "store/s3_backend.h"

namespace sparkv {

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
}

std::string trim(std::string_view text) {
    const size_t first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const size_t last = text.find_last_not_of(" \t\r");
    return std::string(text.substr(first, last - first + 1));
}

// The "key = value" lines of one [section] of an AWS-style INI file (empty if the file or the
// section is absent).
std::map<std::string, std::string> read_ini_section(const std::string& path,
                                                    const std::string& section) {
    std::map<std::string, std::string> values;
    std::ifstream file(path);
    if (!file) return values;
    bool inside = false;
    for (std::string line; std::getline(file, line);) {
        const std::string text = trim(line);
        if (text.empty() || text.front() == '#' || text.front() == ';') continue;
        if (text.front() == '[') {
            inside = text.back() == ']' && trim(text.substr(1, text.size() - 2)) == section;
            continue;
        }
        const size_t eq = text.find('=');
        if (inside && eq != std::string::npos && !std::isspace(static_cast<unsigned char>(line[0])))
            values[trim(text.substr(0, eq))] = trim(text.substr(eq + 1));
    }
    return values;
}

std::string home_file(const char* relative) {
    const std::string home = env("HOME");
    return home.empty() ? std::string() : home + "/" + relative;
}

std::string first_of(std::initializer_list<std::string> candidates) {
    for (const auto& c : candidates)
        if (!c.empty()) return c;
    return {};
}

}  // namespace

StoreLocation parse_store_location(std::string_view argument) {
    if (argument.empty()) fail("no store given (a directory or s3://BUCKET/PREFIX)");
    // A scheme is letters, digits, '+', '-', '.' after a first letter, ended by ':'.
    size_t scheme_end = 0;
    if (std::isalpha(static_cast<unsigned char>(argument[0]))) {
        scheme_end = 1;
        while (scheme_end < argument.size() &&
               (std::isalnum(static_cast<unsigned char>(argument[scheme_end])) ||
                argument[scheme_end] == '+' || argument[scheme_end] == '-' ||
                argument[scheme_end] == '.'))
            ++scheme_end;
        if (scheme_end >= argument.size() || argument[scheme_end] != ':') scheme_end = 0;
    }
    StoreLocation location;
    if (scheme_end == 0) {
        location.path = std::string(argument);
        return location;
    }
    const std::string_view scheme = argument.substr(0, scheme_end);
    const std::string_view rest = argument.substr(scheme_end + 1);
    if (scheme == "file") {
        if (!rest.starts_with("///"))
            fail("store \"{}\": a file URL is file:///ABSOLUTE/PATH", argument);
        location.path = std::string(rest.substr(2));
        return location;
    }
    if (scheme != "s3") {
        const bool url = rest.starts_with("//");
        fail(
            "store \"{}\": unknown scheme \"{}:\" (a store is a directory or s3://BUCKET/PREFIX{})",
            argument, scheme,
            url ? ""
                : fmt::format("; write ./{} for a directory whose name has a colon", argument));
    }
    if (!rest.starts_with("//"))
        fail("store \"{}\": an S3 store is written s3://BUCKET or s3://BUCKET/PREFIX", argument);
    std::string_view path = rest.substr(2);
    const size_t slash = path.find('/');
    location.kind = StoreLocation::Kind::s3;
    location.bucket = std::string(path.substr(0, slash));
    if (location.bucket.empty()) fail("store \"{}\": no bucket name after s3://", argument);
    if (slash != std::string_view::npos) {
        std::string_view prefix = path.substr(slash + 1);
        while (prefix.ends_with('/')) prefix.remove_suffix(1);
        if (!prefix.empty() && !is_valid_key(prefix))
            fail(
                "store \"{}\": prefix \"{}\" must be segments of [A-Za-z0-9_.-] joined by '/', "
                "none empty or starting with '.'",
                argument, prefix);
        location.prefix = std::string(prefix);
    }
    return location;
}

S3Config s3_config_from_environment(std::string bucket) {
    const std::string profile = first_of({env("AWS_PROFILE"), "default"});
    const auto credentials = read_ini_section(
        first_of({env("AWS_SHARED_CREDENTIALS_FILE"), home_file(".aws/credentials")}), profile);
    const std::string config_file = first_of({env("AWS_CONFIG_FILE"), home_file(".aws/config")});
    auto settings =
        read_ini_section(config_file, profile == "default" ? profile : "profile " + profile);
    const auto value = [](const std::map<std::string, std::string>& m, const char* key) {
        const auto it = m.find(key);
        return it == m.end() ? std::string() : it->second;
    };
    S3Config config;
    config.bucket = std::move(bucket);
    config.access_key_id =
        first_of({env("AWS_ACCESS_KEY_ID"), value(credentials, "aws_access_key_id"),
                  value(settings, "aws_access_key_id")});
    config.secret_access_key =
        first_of({env("AWS_SECRET_ACCESS_KEY"), value(credentials, "aws_secret_access_key"),
                  value(settings, "aws_secret_access_key")});
    config.session_token =
        first_of({env("AWS_SESSION_TOKEN"), value(credentials, "aws_session_token"),
                  value(settings, "aws_session_token")});
    config.region = first_of(
        {env("AWS_REGION"), env("AWS_DEFAULT_REGION"), value(settings, "region"), "us-east-1"});
    config.endpoint = first_of(
        {env("AWS_ENDPOINT_URL_S3"), env("AWS_ENDPOINT_URL"), value(settings, "endpoint_url")});
    return config;
}

std::shared_ptr<StorageBackend> open_store(std::string_view argument, StoreAccess access) {
    const StoreLocation location = parse_store_location(argument);
    if (location.kind == StoreLocation::Kind::s3)
        return std::make_shared<S3Backend>(s3_config_from_environment(location.bucket),
                                           location.prefix);
    if (access == StoreAccess::existing && !std::filesystem::is_directory(location.path))
        fail("store {}: no such directory", location.path);
    return std::make_shared<FilesystemBackend>(location.path);
}

}  // namespace sparkv
