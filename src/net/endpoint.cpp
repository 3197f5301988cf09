#include "net/endpoint.h"

#include <charconv>

#include "common/error.h"

namespace sparkv {

std::string Endpoint::url() const {
    return host.find(':') != std::string::npos ? fmt::format("http://[{}]:{}{}", host, port, path)
                                               : fmt::format("http://{}:{}{}", host, port, path);
}

Endpoint parse_endpoint(std::string_view text, bool allow_port_zero) {
    const auto bad = [&](const char* why) {
        fail("server address '{}' {}: use HOST:PORT, http://HOST[:PORT][/PREFIX] or [IPv6]:PORT",
             text, why);
    };
    std::string_view rest = text;
    const bool scheme = rest.starts_with("http://");
    if (scheme)
        rest.remove_prefix(7);
    else if (rest.starts_with("https://"))
        bad("uses https, which the device client does not speak yet (put a TLS-terminating edge "
            "or `sparkv serve` in front)");
    else if (rest.find("://") != std::string_view::npos)
        bad("has an unsupported scheme");
    Endpoint e;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        if (!scheme) bad("has a path but no http:// scheme");
        std::string_view path = rest.substr(slash);
        rest = rest.substr(0, slash);
        while (path.ends_with('/')) path.remove_suffix(1);
        for (char c : path)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '.' ||
                  c == '-'))
                bad("has a path that is not segments of [A-Za-z0-9_.-]");
        if (path.find("//") != std::string_view::npos || path.find("/.") != std::string_view::npos)
            bad("has an empty or dot path segment");
        e.path = std::string(path);
    }
    std::string_view port_text;
    bool has_port = true;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) bad("has an unterminated IPv6 literal");
        e.host = std::string(rest.substr(1, close - 1));
        if (close + 1 == rest.size())
            has_port = false;
        else if (rest[close + 1] != ':')
            bad("has junk after the IPv6 literal");
        else
            port_text = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) {
            has_port = false;
            e.host = std::string(rest);
        } else {
            e.host = std::string(rest.substr(0, colon));
            if (e.host.find(':') != std::string::npos) bad("is an IPv6 address without brackets");
            port_text = rest.substr(colon + 1);
        }
    }
    if (e.host.empty()) bad("has no host");
    if (!has_port) {
        if (!scheme) bad("has no port");
        e.port = 80;
        return e;
    }
    int port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size())
        bad("has a port that is not a number");
    if (port < (allow_port_zero ? 0 : 1) || port > 65535) bad("has a port outside 1..65535");
    e.port = port;
    return e;
}

}  // namespace sparkv
