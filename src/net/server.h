// The cloud side's HTTP/1.1 server: health, context listing, manifests and unit objects (with
// byte ranges), at URL paths equal to the store's relative file paths, so a static server or CDN
// pointed at the store directory serves the same URLs. It can pace every connection through an
// emulated link (trace or fixed rate, plus a base RTT). Paced responses carry
// "X-Sparkv-Link-Time: <seconds>", the connection's link time when the body became ready, so a
// client can line its arrival times up with the trace (see net/link_probe.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/link_trace.h"
#include "store/storage_backend.h"

namespace sparkv {

struct ServerConfig {
    std::string host = "127.0.0.1";
    int port = 0;  // 0: any free port
    // Worker threads. httplib keeps a thread per open keep-alive connection, so this bounds the
    // clients served at once; later ones wait until a connection closes.
    int threads = 64;
    // An idle keep-alive connection is closed after this long (and shutdown waits for it at most
    // this long); clients reconnect transparently.
    int keep_alive_s = 5;
    LinkConfig link;
    bool access_log = false;  // one line per request on stderr
};

struct ServerStats {
    uint64_t requests = 0;
    uint64_t objects_served = 0;  // complete manifest and unit bodies
    uint64_t body_bytes_sent = 0;
    uint64_t not_found = 0;
    uint64_t rejected = 0;        // bad paths, paths leaving the store, bad ranges
    uint64_t aborted_bodies = 0;  // client went away or server stopped mid-body
    uint64_t connections = 0;
    uint64_t open_connections = 0;
};

class UnitServer {
  public:
    UnitServer(std::shared_ptr<StorageBackend> backend, ServerConfig config);
    ~UnitServer();
    UnitServer(const UnitServer&) = delete;
    UnitServer& operator=(const UnitServer&) = delete;

    // Binds and serves on a background thread; returns the port. Throws Error if it cannot bind.
    int start();
    // Binds (unless started) and serves on the calling thread until stop() is called.
    void run();
    // Stops accepting, aborts bodies in progress, and waits for the workers to finish.
    void stop();

    int port() const;
    std::string url() const;  // http://host:port
    ServerStats stats() const;
    const ServerConfig& config() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sparkv
