#include "net/address_limits.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace sparkv {

AddressKey address_key(const sockaddr_storage& address) {
    AddressKey key;
    if (address.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        key.bytes[10] = key.bytes[11] = 0xff;
        std::memcpy(key.bytes.data() + 12, &v4.sin_addr, 4);
    } else if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        std::memcpy(key.bytes.data(), &v6.sin6_addr, 16);
        const bool v4_mapped = std::all_of(key.bytes.begin(), key.bytes.begin() + 10,
                                           [](uint8_t b) { return b == 0; }) &&
                               key.bytes[10] == 0xff && key.bytes[11] == 0xff;
        if (!v4_mapped) std::fill(key.bytes.begin() + 8, key.bytes.end(), 0);  // the /64
    }
    return key;
}

std::string address_text(const sockaddr_storage& address, int& port) {
    char text[INET6_ADDRSTRLEN] = "?";
    port = 0;
    if (address.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
        port = ntohs(v4.sin_port);
    } else if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
        port = ntohs(v6.sin6_port);
    }
    return text;
}

}  // namespace sparkv
