// The server's connection handling, in front of httplib's request parsing. httplib 0.11 holds a
// thread for every open connection, so a thousand idle or slowloris clients would take every
// worker (or a thousand threads). Here one event-loop thread (epoll) owns every socket while it is
// idle or still sending its request header, and hands a connection to a worker thread only once a
// complete header block ("\r\n\r\n") is buffered; the worker lets httplib parse and answer that
// one request, then gives the connection back. The loop enforces the limits:
//
//   * total open connections (beyond: 503 and close), connections per client address (429);
//   * a request rate per client address, as a token bucket that new connections draw from too
//     (beyond: 429 and close, so a flood pays a reconnect for every burst);
//   * the size of a request header (431) and the time it may take to arrive (408: slowloris);
//   * how long a connection may sit idle between requests (closed);
//   * a read or write that makes no progress for io_timeout_s fails (slow readers).
//
// Refusals are short fixed JSON responses written by the loop itself; the front end never parses
// HTTP beyond finding the end of the header block.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/link_pacer.h"

namespace sparkv {

// The front end's settings; UnitServer fills them from ServerConfig (net/server.h), where the
// defaults are chosen and explained.
struct FrontLimits {
    int workers = 64;
    size_t max_connections = 4096;
    size_t max_connections_per_address = 64;
    double requests_per_second = 1000;
    double request_burst = 2000;
    size_t max_header_bytes = 8192;
    double header_timeout_s = 10;
    double idle_timeout_s = 5;
    double io_timeout_s = 10;

    void validate() const;  // throws Error
};

struct FrontStats {
    uint64_t connections = 0;  // accepted and served
    uint64_t open_connections = 0;
    uint64_t refused_busy = 0;      // 503: the server holds max_connections
    uint64_t refused_address = 0;   // 429: the address holds max_connections_per_address
    uint64_t rate_limited = 0;      // 429: the address exceeded its request rate
    uint64_t header_timeouts = 0;   // 408: header not complete within header_timeout_s
    uint64_t header_too_large = 0;  // 431
    uint64_t idle_closed = 0;       // closed after idle_timeout_s without a request
};

// A client connection as a request handler sees it.
struct FrontConnection {
    uint64_t id = 0;
    std::string ip;
    int port = 0;
    std::shared_ptr<LinkPacer> pacer;   // the connection's emulated link; null when unpaced
    bool close_after_response = false;  // a handler sets it to end the connection
};

class HttpFrontEnd {
  public:
    // Runs on a worker with one complete request header buffered in `stream`: parses it, writes
    // the response, and returns whether the connection may stay open.
    using Handler = std::function<bool(httplib::Stream& stream, FrontConnection& connection)>;

    HttpFrontEnd(FrontLimits limits, LinkConfig link, Handler handler);
    ~HttpFrontEnd();
    HttpFrontEnd(const HttpFrontEnd&) = delete;
    HttpFrontEnd& operator=(const HttpFrontEnd&) = delete;

    // Listens on host:port (0: any free port) and returns the port; throws Error.
    int bind(const std::string& host, int port);
    // Runs the event loop and the workers until stop(); then closes every connection.
    void run();
    // Asks run() to finish: no new connections, in-flight requests are cut. Any thread.
    void stop();

    FrontStats stats() const;
    // The connection whose request the calling worker thread is answering, or null.
    static FrontConnection* current();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sparkv
