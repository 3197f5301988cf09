// Per-client-address accounting for the HTTP front end: how many connections an address holds
// and a token bucket for its requests. An IPv4 address is one client; IPv6 clients are grouped by
// their /64 prefix, the smallest block a host is usually given (so one host cannot evade the
// limits by cycling through its own addresses).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace sparkv {

struct AddressKey {
    std::array<uint8_t, 16> bytes{};  // IPv4 as ::ffff:a.b.c.d, IPv6 truncated to its /64
    bool operator==(const AddressKey&) const = default;
};

struct AddressKeyHash {
    size_t operator()(const AddressKey& key) const {
        uint64_t a = 0, b = 0;
        for (int i = 0; i < 8; ++i) {
            a = a << 8 | key.bytes[i];
            b = b << 8 | key.bytes[8 + i];
        }
        return std::hash<uint64_t>{}(a * 0x9e3779b97f4a7c15ULL ^ b);
    }
};

// The key and printable address ("1.2.3.4", "2001:db8::1") and port of a peer.
AddressKey address_key(const sockaddr_storage& address);
std::string address_text(const sockaddr_storage& address, int& port);

// A token bucket: `rate` tokens a second up to `burst`, one per request (or new connection).
class TokenBucket {
  public:
    using Clock = std::chrono::steady_clock;
    TokenBucket(double rate, double burst, Clock::time_point now)
        : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
    bool take(Clock::time_point now) {
        refill(now);
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }
    bool full(Clock::time_point now) {
        refill(now);
        return tokens_ >= burst_;
    }

  private:
    void refill(Clock::time_point now) {
        const double elapsed = std::chrono::duration<double>(now - last_).count();
        if (elapsed > 0) tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
        last_ = now;
    }
    double rate_, burst_, tokens_;
    Clock::time_point last_;
};

struct AddressState {
    size_t connections = 0;
    TokenBucket requests;
};

}  // namespace sparkv
