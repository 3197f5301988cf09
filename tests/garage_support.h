// A real Garage cluster (an S3-compatible distributed object store) started by a test on loopback
// ports, with a generated configuration in a temporary directory: the layout is assigned and
// applied, a key is imported and a bucket created through Garage's own CLI, and every node is
// stopped when the object goes away. Tests that need it skip when the garage binary is absent,
// and fail instead under SPARKV_REQUIRE_GARAGE=1 (as in CI, which builds it first).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/s3_client.h"
#include "test_support.h"

namespace sparkv::testing {

// $SPARKV_GARAGE, else <cache>/garage/bin/garage (scripts/install_garage.sh), else "".
std::string garage_binary();

class GarageCluster {
  public:
    // nodes: 1 (replication factor 1) or 3 (replication factor 3, one zone per node).
    explicit GarageCluster(int nodes = 1, std::string bucket = "sparkv");
    ~GarageCluster();
    GarageCluster(const GarageCluster&) = delete;
    GarageCluster& operator=(const GarageCluster&) = delete;

    // S3 settings for the bucket through node i's API endpoint.
    S3Config s3_config(int node = 0) const;
    // Makes the bucket readable without credentials on every node's website endpoint.
    void allow_website();
    int web_port(int node = 0) const { return nodes_[static_cast<size_t>(node)].web_port; }
    int s3_port(int node = 0) const { return nodes_[static_cast<size_t>(node)].s3_port; }
    // The Host header that selects the bucket on a website endpoint.
    std::string web_host() const { return bucket_ + ".web.garage.localhost"; }
    const std::string& bucket() const { return bucket_; }
    // Stops node i at once (SIGKILL), as a crash would.
    void kill_node(int node);
    // Runs the garage CLI against node 0; returns its output, throws on failure.
    std::string cli(const std::string& arguments) const;
    // The environment variables a `sparkv` child process needs to reach the bucket.
    std::vector<std::string> environment(int node = 0) const;

  private:
    struct Node {
        std::filesystem::path config;
        int rpc_port = 0, s3_port = 0, web_port = 0, admin_port = 0;
        pid_t pid = -1;
        std::string id;
    };
    void set_up(int nodes);
    void stop_all();
    void start_node(Node& node);
    void wait_until_serving() const;
    std::string cli_on(const Node& node, const std::string& arguments) const;

    TempDir dir_;
    std::string binary_;
    std::string bucket_;
    std::vector<Node> nodes_;
};

// The cluster, or nullptr after recording a skip (binary absent) or a failure (binary absent
// under SPARKV_REQUIRE_GARAGE=1, or Garage did not start).
std::unique_ptr<GarageCluster> start_garage_or_skip(int nodes = 1);

#define SPARKV_REQUIRE_GARAGE(var, nodes)                               \
    auto var = ::sparkv::testing::start_garage_or_skip(nodes);          \
    if (!var) {                                                         \
        if (::testing::Test::HasFailure()) return;                      \
        GTEST_SKIP() << "garage not built (scripts/install_garage.sh)"; \
    }

// Access and secret key the test clusters use (Garage's formats: "GK" + 24 hex, 64 hex).
inline constexpr const char* kGarageKeyId = "GK5a3c0e7d9b1f2a4c6e8d0b2f";
inline constexpr const char* kGarageSecret =
    "9f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

}  // namespace sparkv::testing
