#include "net/endpoint.h"

#include <charconv>

#include "common/error.h"

namespace sparkv {

std::string Endpoint::url() const {
    return host.find(':') != std::string::npos ? fmt::format("http://[{}]:{}", host, port)
                                               : fmt::format("http://{}:{}", host, port);
}

Endpoint parse_endpoint(std::string_view text, bool allow_port_zero) {
    const auto bad = [&](const char* why) {
        fail("server address '{}' {}: use HOST:PORT, http://HOST:PORT or [IPv6]:PORT", text, why);
    };
    std::string_view rest = text;
    if (rest.starts_with("http://"))
        rest.remove_prefix(7);
    else if (rest.find("://") != std::string_view::npos)
        bad("has an unsupported scheme");
    if (rest.ends_with('/')) rest.remove_suffix(1);
    if (rest.find('/') != std::string_view::npos) bad("has a path");
    Endpoint e;
    std::string_view port_text;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            bad("has an unterminated IPv6 literal or no port");
        e.host = std::string(rest.substr(1, close - 1));
        port_text = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) bad("has no port");
        e.host = std::string(rest.substr(0, colon));
        if (e.host.find(':') != std::string::npos) bad("is an IPv6 address without brackets");
        port_text = rest.substr(colon + 1);
    }
    if (e.host.empty()) bad("has no host");
    int port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port_text.empty())
        bad("has a port that is not a number");
    if (port < (allow_port_zero ? 0 : 1) || port > 65535) bad("has a port outside 1..65535");
    e.port = port;
    return e;
}

}  // namespace sparkv
