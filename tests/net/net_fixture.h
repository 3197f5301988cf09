// A small store on disk and a server on an ephemeral 127.0.0.1 port, for the network tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/server.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/fs_backend.h"
#include "test_support.h"

namespace sparkv::testing {

// One context of n_chunks x n_layers units at each level, random bytes of about unit_bytes.
class TestStore {
  public:
    TestStore(int32_t n_chunks, int32_t n_layers, std::vector<std::string> levels,
              size_t unit_bytes, uint32_t seed = 1)
        : backend(std::make_shared<FilesystemBackend>(dir.path() / "store")), store(backend) {
        const int64_t n_tokens = int64_t{n_chunks} * 64 - 10;  // last chunk shorter
        std::vector<int32_t> tokens(static_cast<size_t>(n_tokens));
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 7 + seed);
        const ModelInfo model{"test-fingerprint", "test-model", n_layers, 3, 64};
        ContextWriter writer(store, make_manifest(context_id(model.fingerprint, tokens, 64), model,
                                                  n_tokens, 64, levels));
        writer.put_tokens(tokens);
        std::mt19937 rng(seed);
        for (int32_t t = 0; t < n_chunks; ++t)
            for (int32_t l = 0; l < n_layers; ++l)
                for (size_t k = 0; k < levels.size(); ++k) {
                    std::vector<uint8_t> bytes(unit_bytes / (k + 1) + rng() % 97);
                    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
                    writer.put_unit(t, l, levels[k], bytes);
                }
        manifest = writer.commit();
    }

    std::vector<uint8_t> unit(const std::string& level, int32_t t, int32_t l) const {
        return store.read_unit(manifest, level, t, l);
    }
    std::filesystem::path unit_file(const std::string& level, int32_t t, int32_t l) const {
        return backend->root() / unit_key(manifest, level, t, l);
    }

    TempDir dir;
    std::shared_ptr<FilesystemBackend> backend;
    ContextStore store;
    Manifest manifest;
};

// Polls pred until it holds or `seconds` pass; returns whether it held.
inline bool wait_for(const std::function<bool()>& pred, double seconds = 10) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

inline std::unique_ptr<UnitServer> start_server(const TestStore& store, LinkConfig link = {},
                                                int threads = 40) {
    ServerConfig config;
    config.port = 0;
    config.threads = threads;
    config.keep_alive_s = 2;
    config.link = std::move(link);
    auto server = std::make_unique<UnitServer>(store.backend, config);
    server->start();
    return server;
}

// Sends request bytes as they are (no client-side normalisation) and returns the whole reply.
inline std::string raw_http(int port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
        char buffer[4096];
        for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;)
            reply.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd);
    return reply;
}

inline int raw_get_status(int port, const std::string& target) {
    const std::string reply =
        raw_http(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if (reply.size() < 12) return -1;
    return std::stoi(reply.substr(9, 3));
}

}  // namespace sparkv::testing
