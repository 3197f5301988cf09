#include "net/front_stream.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "net/address_limits.h"

namespace sparkv {

FrontStream::FrontStream(int fd, std::string& buffered, std::string ip, int port,
                         std::chrono::milliseconds io_timeout)
    : fd_(fd),
      buffered_(buffered),
      ip_(std::move(ip)),
      port_(port),
      timeout_ms_(static_cast<int>(io_timeout.count())) {}

FrontStream::~FrontStream() {
    buffered_.erase(0, consumed_);
}

bool FrontStream::wait(short events) const {
    pollfd p{fd_, events, 0};
    for (;;) {
        const int n = ::poll(&p, 1, timeout_ms_);
        if (n < 0 && errno == EINTR) continue;
        return n > 0 && (p.revents & (events | POLLHUP | POLLERR));
    }
}

bool FrontStream::is_readable() const {
    return consumed_ < buffered_.size() || wait(POLLIN);
}

bool FrontStream::is_writable() const {
    return wait(POLLOUT);
}

ssize_t FrontStream::read(char* ptr, size_t size) {
    if (consumed_ < buffered_.size()) {
        const size_t n = std::min(size, buffered_.size() - consumed_);
        std::memcpy(ptr, buffered_.data() + consumed_, n);
        consumed_ += n;
        return static_cast<ssize_t>(n);
    }
    for (;;) {
        const ssize_t n = ::recv(fd_, ptr, size, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || !wait(POLLIN)) return -1;
    }
}

ssize_t FrontStream::write(const char* ptr, size_t size) {
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait(POLLOUT)) continue;
        return -1;
    }
    return static_cast<ssize_t>(done);
}

void FrontStream::get_remote_ip_and_port(std::string& ip, int& port) const {
    ip = ip_;
    port = port_;
}

void FrontStream::get_local_ip_and_port(std::string& ip, int& port) const {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ip.clear();
        port = 0;
        return;
    }
    ip = address_text(address, port);
}

std::string canned_response(int status, std::string_view message, bool retry_after) {
    const char* reason = "Error";
    switch (status) {
        case 408:
            reason = "Request Timeout";
            break;
        case 429:
            reason = "Too Many Requests";
            break;
        case 431:
            reason = "Request Header Fields Too Large";
            break;
        case 503:
            reason = "Service Unavailable";
            break;
    }
    const std::string body =
        nlohmann::json{{"error", std::string(message)}, {"status", status}}.dump();
    return fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}"
        "Connection: close\r\n\r\n{}",
        status, reason, body.size(), retry_after ? "Retry-After: 1\r\n" : "", body);
}

}  // namespace sparkv
