#include "garage_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/paths.h"
#include "store/s3_client.h"

namespace sparkv::testing {

namespace {

namespace fs = std::filesystem;

// n distinct free loopback ports (bound together, then released for Garage to take).
std::vector<int> free_ports(int n) {
    std::vector<int> fds, ports;
    for (int i = 0; i < n; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            fail("cannot find a free port");
        fds.push_back(fd);
        ports.push_back(ntohs(addr.sin_port));
    }
    for (int fd : fds) ::close(fd);
    return ports;
}

std::string read_file(const fs::path& path) {
    std::ifstream f(path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string tail(const std::string& text, size_t n = 1500) {
    return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

std::string garage_binary() {
    if (const char* path = std::getenv("SPARKV_GARAGE"); path && *path) return path;
    const fs::path cached = fs::path(cache_dir()) / "garage" / "bin" / "garage";
    if (fs::exists(cached)) return cached.string();
    return {};
}

GarageCluster::GarageCluster(int nodes, std::string bucket)
    : binary_(garage_binary()), bucket_(std::move(bucket)) {
    try {
        set_up(nodes);
    } catch (...) {
        stop_all();  // the destructor does not run when the constructor throws
        throw;
    }
}

void GarageCluster::set_up(int nodes) {
    if (binary_.empty()) fail("garage binary not found");
    if (nodes != 1 && nodes != 3) fail("test clusters have 1 or 3 nodes");
    nodes_.resize(static_cast<size_t>(nodes));
    const std::string secret(64, 'a');  // RPC secret: any 32 bytes in hex
    for (size_t i = 0; i < nodes_.size(); ++i) {
        Node& n = nodes_[i];
        const auto ports = free_ports(4);
        n.rpc_port = ports[0];
        n.s3_port = ports[1];
        n.web_port = ports[2];
        n.admin_port = ports[3];
        const fs::path home = dir_.path() / fmt::format("node{}", i);
        fs::create_directories(home);
        n.config = home / "garage.toml";
        std::ofstream(n.config) << fmt::format(
            "metadata_dir = \"{0}/meta\"\n"
            "data_dir = \"{0}/data\"\n"
            "db_engine = \"sqlite\"\n"
            "replication_factor = {1}\n"
            "rpc_bind_addr = \"127.0.0.1:{2}\"\n"
            "rpc_public_addr = \"127.0.0.1:{2}\"\n"
            "rpc_secret = \"{3}\"\n"
            "[s3_api]\n"
            "s3_region = \"garage\"\n"
            "api_bind_addr = \"127.0.0.1:{4}\"\n"
            "root_domain = \".s3.garage.localhost\"\n"
            "[s3_web]\n"
            "bind_addr = \"127.0.0.1:{5}\"\n"
            "root_domain = \".web.garage.localhost\"\n"
            "index = \"index.html\"\n"
            "[admin]\n"
            "api_bind_addr = \"127.0.0.1:{6}\"\n",
            home.string(), nodes, n.rpc_port, secret, n.s3_port, n.web_port, n.admin_port);
        start_node(n);
    }
    // Node ids, then (for a cluster) connect the nodes, then one layout for all of them.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (Node& n : nodes_) {
        // `status` answers once the node's RPC listens (`node id` answers before: it only reads
        // the key file).
        for (;;) {
            try {
                cli_on(n, "status");
                break;
            } catch (const Error&) {
                if (std::chrono::steady_clock::now() > deadline) throw;
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
        const std::string id = cli_on(n, "node id -q");
        n.id = id.substr(0, id.find('@'));
    }
    for (size_t i = 1; i < nodes_.size(); ++i)
        cli(fmt::format("node connect {}@127.0.0.1:{}", nodes_[i].id, nodes_[i].rpc_port));
    for (size_t i = 0; i < nodes_.size(); ++i)
        cli(fmt::format("layout assign -z dc{} -c 1G {}", i + 1, nodes_[i].id));
    cli("layout apply --version 1");
    cli(fmt::format("key import {} {} -n sparkv-test --yes", kGarageKeyId, kGarageSecret));
    cli("bucket create " + bucket_);
    cli(fmt::format("bucket allow --read --write --owner {} --key sparkv-test", bucket_));
    wait_until_serving();
}

GarageCluster::~GarageCluster() {
    stop_all();
}

void GarageCluster::stop_all() {
    for (Node& n : nodes_) {
        if (n.pid <= 0) continue;
        ::kill(n.pid, SIGTERM);
        for (int i = 0; i < 500; ++i) {
            if (::waitpid(n.pid, nullptr, WNOHANG) == n.pid) {
                n.pid = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (n.pid > 0) {
            ::kill(n.pid, SIGKILL);
            ::waitpid(n.pid, nullptr, 0);
        }
    }
}

void GarageCluster::start_node(Node& node) {
    const fs::path log = node.config.parent_path() / "garage.log";
    const pid_t pid = ::fork();
    if (pid < 0) fail("fork failed");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test, even a killed one
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::setenv("RUST_LOG", "warn", 1);
        ::execl(binary_.c_str(), binary_.c_str(), "-c", node.config.c_str(), "server", nullptr);
        _exit(127);
    }
    node.pid = pid;
}

std::string GarageCluster::cli_on(const Node& node, const std::string& arguments) const {
    const std::string command =
        fmt::format("'{}' -c '{}' {} 2>&1", binary_, node.config.string(), arguments);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) fail("cannot run {}", command);
    std::string output;
    char buffer[4096];
    for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output.append(buffer, n);
    const int status = ::pclose(pipe);
    if (status != 0)
        fail("garage {} failed: {}\nserver log: {}", arguments, tail(output),
             tail(read_file(node.config.parent_path() / "garage.log")));
    return output;
}

std::string GarageCluster::cli(const std::string& arguments) const {
    return cli_on(nodes_[0], arguments);
}

void GarageCluster::wait_until_serving() const {
    // The layout reaches every node's S3 API a moment after it is applied.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (size_t i = 0; i < nodes_.size(); ++i) {
        S3Config config = s3_config(static_cast<int>(i));
        config.max_attempts = 1;
        S3Client client(config);
        for (;;) {
            S3Request list;
            list.query = {{"list-type", "2"}, {"max-keys", "1"}};
            try {
                if (client.send(list).status == 200) break;
            } catch (const Error&) {
            }
            if (std::chrono::steady_clock::now() > deadline)
                fail("garage node {} does not serve the bucket; log: {}", i,
                     tail(read_file(nodes_[i].config.parent_path() / "garage.log")));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
}

S3Config GarageCluster::s3_config(int node) const {
    S3Config config;
    config.endpoint = fmt::format("http://127.0.0.1:{}", nodes_[static_cast<size_t>(node)].s3_port);
    config.region = "garage";
    config.access_key_id = kGarageKeyId;
    config.secret_access_key = kGarageSecret;
    config.bucket = bucket_;
    return config;
}

void GarageCluster::allow_website() {
    cli("bucket website --allow " + bucket_);
}

void GarageCluster::kill_node(int node) {
    Node& n = nodes_[static_cast<size_t>(node)];
    if (n.pid <= 0) return;
    ::kill(n.pid, SIGKILL);
    ::waitpid(n.pid, nullptr, 0);
    n.pid = -1;
}

std::vector<std::string> GarageCluster::environment(int node) const {
    return {"AWS_ACCESS_KEY_ID=" + std::string(kGarageKeyId),
            "AWS_SECRET_ACCESS_KEY=" + std::string(kGarageSecret), "AWS_REGION=garage",
            fmt::format("AWS_ENDPOINT_URL=http://127.0.0.1:{}",
                        nodes_[static_cast<size_t>(node)].s3_port)};
}

std::unique_ptr<GarageCluster> start_garage_or_skip(int nodes) {
    if (garage_binary().empty()) {
        const char* require = std::getenv("SPARKV_REQUIRE_GARAGE");
        if (require && std::string(require) == "1")
            ADD_FAILURE() << "garage binary missing at " << cache_dir()
                          << "/garage/bin/garage (run scripts/install_garage.sh)";
        return nullptr;
    }
    try {
        return std::make_unique<GarageCluster>(nodes);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "cannot start garage: " << e.what();
        return nullptr;
    }
}

}  // namespace sparkv::testing
