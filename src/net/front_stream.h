// The httplib::Stream a worker hands to httplib for one request: it first replays the bytes the
// event loop already read (the request header, perhaps more), then reads and writes the
// non-blocking socket, failing any read or write that makes no progress for `io_timeout`.
#pragma once

#include <httplib.h>

#include <chrono>
#include <string>

namespace sparkv {

class FrontStream final : public httplib::Stream {
  public:
    // `buffered`: bytes received before the worker took over; what httplib does not consume is
    // left in it when the stream goes away (a pipelined next request).
    FrontStream(int fd, std::string& buffered, std::string ip, int port,
                std::chrono::milliseconds io_timeout);
    ~FrontStream() override;

    bool is_readable() const override;
    bool is_writable() const override;
    ssize_t read(char* ptr, size_t size) override;
    ssize_t write(const char* ptr, size_t size) override;
    void get_remote_ip_and_port(std::string& ip, int& port) const override;
    void get_local_ip_and_port(std::string& ip, int& port) const override;
    socket_t socket() const override { return fd_; }

  private:
    bool wait(short events) const;

    int fd_;
    std::string& buffered_;
    size_t consumed_ = 0;
    std::string ip_;
    int port_;
    int timeout_ms_;
};

// A complete short response with a JSON error body, for refusals the event loop writes itself.
std::string canned_response(int status, std::string_view message, bool retry_after);

}  // namespace sparkv
