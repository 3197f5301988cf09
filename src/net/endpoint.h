// The one parser of server addresses: "HOST:PORT", "http://HOST[:PORT][/PREFIX]" (port 80 by
// default with the scheme; a PREFIX when an object store's website endpoint or a CDN serves the
// store under a path) and bracketed IPv6 literals "[::1]:PORT". Every command that talks to or
// listens on a server uses it.
#pragma once

#include <string>
#include <string_view>

namespace sparkv {

struct Endpoint {
    std::string host;  // without brackets
    int port = 0;
    std::string path;         // "" or "/PREFIX" (no trailing slash)
    std::string url() const;  // http://host:port/path (IPv6 in brackets)
};

// Throws Error with the accepted forms on anything else (missing or non-numeric port, port
// outside 1..65535, other schemes, empty host, a path without the http:// scheme). A listening
// address may ask for port 0 (any free port) with allow_port_zero.
Endpoint parse_endpoint(std::string_view text, bool allow_port_zero = false);

}  // namespace sparkv
