// What the device-side commands (fetch, ask) share about trust: --trust-key (repeatable), which
// makes the client refuse unsigned or foreign contexts and units whose SHA-256 differs, and the
// bearer token for a server with per-tenant access (--token-file, else $SPARKV_TOKEN; never a
// command-line value, which other users could read in the process list).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "net/unit_client.h"
#include "store/trust.h"

namespace sparkv::cli {

struct DeviceTrustOptions {
    std::vector<std::string> trust_keys;
    std::string token_file;
};

inline void add_device_trust_options(CLI::App* cmd, DeviceTrustOptions& opt) {
    cmd->add_option("--trust-key", opt.trust_keys,
                    "Only accept contexts signed by this public key (PREFIX.pub from `sparkv "
                    "keygen`); repeatable")
        ->check(CLI::ExistingFile);
    cmd->add_option("--token-file", opt.token_file,
                    "File holding the bearer token for a server with --auth (default: "
                    "$SPARKV_TOKEN)")
        ->check(CLI::ExistingFile);
}

inline std::string read_bearer_token(const DeviceTrustOptions& opt) {
    std::string token;
    if (!opt.token_file.empty()) {
        std::ifstream in(opt.token_file);
        if (!in) fail("--token-file {}: cannot open", opt.token_file);
        std::getline(in, token);
    } else if (const char* env = std::getenv("SPARKV_TOKEN")) {
        token = env;
    }
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    return token;
}

inline std::shared_ptr<const TrustPolicy> trust_policy(const DeviceTrustOptions& opt) {
    return std::make_shared<const TrustPolicy>(TrustPolicy::from_files(opt.trust_keys));
}

}  // namespace sparkv::cli
