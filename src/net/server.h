// The cloud side's HTTP/1.1 server: health, context listing, manifests and unit objects (with
// byte ranges), at URL paths equal to the store's relative file paths, so a static server or CDN
// pointed at the store directory serves the same URLs. It can pace every connection through an
// emulated link (trace or fixed rate, plus a base RTT). Paced responses carry
// "X-Sparkv-Link-Time: <seconds>", the connection's link time when the body became ready, so a
// client can line its arrival times up with the trace (see testkit/link_probe.h). A client that
// streams on several connections names its link with "X-Sparkv-Link: <name>" (1-64 characters of
// [A-Za-z0-9_-]) on every request: all paced connections from one address that name the same
// link share one pacer, as one device's connections share its radio, so more connections hide
// round trips but never add capacity. Without the header each connection is its own link.
//
// It faces the open internet: connections are handled by an event loop with per-address limits
// and timeouts in front of httplib's request parsing (net/http_front.h), and with an access
// config every request but /health needs a bearer token of a tenant allowed to read the context
// (net/access_control.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/access_control.h"
#include "net/link_trace.h"
#include "store/storage_backend.h"

namespace sparkv {

// What one client may cost the server. The defaults hold with 1,000 idle connections, 100
// slowloris clients and a request flood at once (bench/attack_client.cpp; README "Server under
// attack") while keeping honest streams within 20% of their speed alone.
struct ServerLimits {
    size_t max_connections = 4096;            // open connections in all; beyond: 503
    size_t max_connections_per_address = 64;  // beyond: 429 (IPv6: per /64)
    // Requests (and new connections) per second per address, as a token bucket. One device
    // streams at most a few hundred units a second; the burst covers a whole context at once.
    double requests_per_second = 1000;
    double request_burst = 2000;
    size_t max_header_bytes = 8192;  // request line + headers; beyond: 431
    size_t max_uri_bytes = 2048;     // beyond: 414 (this server's paths are < 200 bytes)
    double header_timeout_s = 10;    // a request's header must arrive within this; else 408
    double io_timeout_s = 10;        // a read or write without progress fails (slow readers)
};

struct ServerConfig {
    std::string host = "127.0.0.1";
    int port = 0;  // 0: any free port
    // Worker threads: requests answered at once (a paced body holds its worker while it is sent).
    // Idle connections and connections still sending their request hold no thread.
    int threads = 64;
    // An idle keep-alive connection is closed after this long; clients reconnect transparently.
    int keep_alive_s = 5;
    LinkConfig link;
    ServerLimits limits;
    // Per-tenant access (--auth FILE). Null: every context is readable by anyone.
    std::shared_ptr<const AccessControl> access;
    bool access_log = false;  // one line per request on stderr (never its headers or tokens)
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
    uint64_t unauthorized = 0;  // 401: no or unknown bearer token
    uint64_t forbidden = 0;     // 403: the tenant may not read the context
    // Refused by the front end (net/http_front.h): 503 at the connection cap, 429 per address
    // (connections, rate), 408 slow header, 431 large header; idle connections closed.
    uint64_t refused_busy = 0;
    uint64_t refused_address = 0;
    uint64_t rate_limited = 0;
    uint64_t header_timeouts = 0;
    uint64_t header_too_large = 0;
    uint64_t idle_closed = 0;
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
