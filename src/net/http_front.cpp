#include "net/http_front.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "net/address_limits.h"
#include "net/front_stream.h"

namespace sparkv {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kListenTag = 0, kWakeTag = 1, kFirstConnection = 2;
// A refused connection is given this long to read its answer before it is closed; at most
// kMaxDraining such connections are kept (beyond that they are closed at once).
constexpr auto kDrainTime = std::chrono::seconds(1);
constexpr size_t kMaxDraining = 1024;
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

thread_local FrontConnection* t_current = nullptr;

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

}  // namespace

void FrontLimits::validate() const {
    if (workers < 1) fail("server: need at least one worker thread");
    if (max_connections < 1 || max_connections_per_address < 1)
        fail("server: connection limits must be at least 1");
    if (!(requests_per_second > 0) || !(request_burst >= 1))
        fail("server: the request rate must be positive and the burst at least 1");
    if (max_header_bytes < 256) fail("server: max header size must be at least 256 bytes");
    if (!(header_timeout_s > 0) || !(idle_timeout_s > 0) || !(io_timeout_s > 0))
        fail("server: timeouts must be positive");
}

struct HttpFrontEnd::Impl {
    struct Conn {
        enum class State { reading, working, draining };
        uint64_t tag = 0;
        int fd = -1;
        AddressKey key;
        bool counted = false;  // holds a place in the connection limits
        State state = State::reading;
        std::string buffer;  // received and not yet consumed by httplib
        size_t scanned = 0;  // bytes of buffer searched for the end of the header block
        Clock::time_point idle_since, request_since, drain_until;
        FrontConnection info;
    };

    Impl(FrontLimits limits_in, LinkConfig link_in, Handler handler_in)
        : limits(limits_in), link(std::move(link_in)), handler(std::move(handler_in)) {}
    ~Impl() {
        close_fd(listen_fd);
        close_fd(epoll_fd);
        close_fd(wake_fd);
    }

    // Event loop (loop thread only).
    void loop();
    void accept_all(Clock::time_point now);
    void on_readable(Conn& c, Clock::time_point now);
    void after_input(Conn& c, Clock::time_point now);
    void dispatch(Conn& c, Clock::time_point now);
    void refuse(Conn& c, int status, std::string_view message, bool retry_after);
    void take_returned(Clock::time_point now);
    void sweep(Clock::time_point now);
    void close_conn(uint64_t tag);
    void arm(Conn& c, int op);
    void shutdown_all();

    // Workers.
    void worker();

    FrontLimits limits;
    LinkConfig link;
    Handler handler;
    int listen_fd = -1, epoll_fd = -1, wake_fd = -1;

    std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
    std::unordered_map<AddressKey, AddressState, AddressKeyHash> addresses;
    uint64_t next_tag = kFirstConnection;
    size_t open_counted = 0, draining = 0;
    bool accept_paused = false;
    Clock::time_point accept_resume, last_sweep;

    std::mutex queue_mutex;
    std::condition_variable queue_changed;
    std::deque<Conn*> queue;
    std::vector<std::pair<Conn*, bool>> returned;  // (connection, keep open)
    bool workers_stop = false;

    std::atomic<bool> stop_requested{false};
    std::atomic<uint64_t> connections{0}, open{0}, refused_busy{0}, refused_address{0},
        rate_limited{0}, header_timeouts{0}, header_too_large{0}, idle_closed{0};
};

void HttpFrontEnd::Impl::arm(Conn& c, int op) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = c.tag;
    ::epoll_ctl(epoll_fd, op, c.fd, &ev);
}

void HttpFrontEnd::Impl::close_conn(uint64_t tag) {
    auto it = conns.find(tag);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (c.counted) {
        --open_counted;
        --open;
        auto a = addresses.find(c.key);
        if (a != addresses.end() && a->second.connections > 0) --a->second.connections;
    }
    if (c.state == Conn::State::draining) --draining;
    close_fd(c.fd);  // also removes it from the epoll set
    conns.erase(it);
}

void HttpFrontEnd::Impl::refuse(Conn& c, int status, std::string_view message, bool retry_after) {
    const std::string reply = canned_response(status, message, retry_after);
    (void)::send(c.fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (draining >= kMaxDraining) return close_conn(c.tag);
    // Half-close and read what the client still sends, so closing does not reset the
    // connection before the client read the answer.
    ::shutdown(c.fd, SHUT_WR);
    if (c.counted) {
        c.counted = false;
        --open_counted;
        --open;
        auto a = addresses.find(c.key);
        if (a != addresses.end() && a->second.connections > 0) --a->second.connections;
    }
    c.state = Conn::State::draining;
    c.buffer.clear();
    c.buffer.shrink_to_fit();
    c.drain_until = Clock::now() + kDrainTime;
    ++draining;
    arm(c, EPOLL_CTL_MOD);
}

void HttpFrontEnd::Impl::accept_all(Clock::time_point now) {
    for (;;) {
        sockaddr_storage address{};
        socklen_t length = sizeof(address);
        const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&address), &length,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: stop accepting for a moment rather than spin.
                ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
                accept_paused = true;
                accept_resume = now + kAcceptPause;
            }
            return;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        const uint64_t tag = next_tag++;
        Conn& c = *conns.emplace(tag, std::make_unique<Conn>()).first->second;
        c.tag = tag;
        c.fd = fd;
        c.key = address_key(address);
        c.info.ip = address_text(address, c.info.port);
        c.idle_since = now;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.u64 = c.tag;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);

        auto [it, inserted] = addresses.try_emplace(
            c.key,
            AddressState{0, TokenBucket(limits.requests_per_second, limits.request_burst, now)});
        AddressState& a = it->second;
        if (open_counted >= limits.max_connections) {
            ++refused_busy;
            refuse(c, 503, "the server is at its connection limit; retry shortly", true);
        } else if (a.connections >= limits.max_connections_per_address) {
            ++refused_address;
            refuse(c, 429, "too many connections from this address", true);
        } else if (!a.requests.take(now)) {
            ++rate_limited;
            refuse(c, 429, "too many requests from this address", true);
        } else {
            c.counted = true;
            ++a.connections;
            ++open_counted;
            ++open;
            ++connections;
            c.info.id = connections.load();
            if (link.paced()) c.info.pacer = std::make_shared<LinkPacer>(link, now);
        }
    }
}

void HttpFrontEnd::Impl::on_readable(Conn& c, Clock::time_point now) {
    char chunk[4096];
    if (c.state == Conn::State::draining) {
        for (;;) {
            const ssize_t n = ::recv(c.fd, chunk, sizeof(chunk), 0);
            if (n > 0) continue;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return arm(c, EPOLL_CTL_MOD);
            return close_conn(c.tag);  // EOF or error
        }
    }
    for (;;) {
        // Never buffer more than one header block's worth: the rest waits in the socket.
        const size_t room =
            limits.max_header_bytes + 4 - std::min(c.buffer.size(), limits.max_header_bytes + 4);
        if (room == 0) break;
        const ssize_t n = ::recv(c.fd, chunk, std::min(room, sizeof(chunk)), 0);
        if (n > 0) {
            if (c.buffer.empty()) c.request_since = now;
            c.buffer.append(chunk, static_cast<size_t>(n));
            if (c.buffer.find("\r\n\r\n", c.scanned >= 3 ? c.scanned - 3 : 0) != std::string::npos)
                break;
            c.scanned = c.buffer.size();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return close_conn(c.tag);  // the client closed or the connection broke
    }
    after_input(c, now);
}

// Decides what a reading connection's buffer calls for: a worker, a refusal, or more input.
void HttpFrontEnd::Impl::after_input(Conn& c, Clock::time_point now) {
    const size_t end = c.buffer.find("\r\n\r\n", c.scanned >= 3 ? c.scanned - 3 : 0);
    if (end != std::string::npos && end + 4 <= limits.max_header_bytes) return dispatch(c, now);
    if (end != std::string::npos || c.buffer.size() > limits.max_header_bytes) {
        ++header_too_large;
        return refuse(c, 431,
                      fmt::format("request header larger than {} bytes", limits.max_header_bytes),
                      false);
    }
    c.scanned = c.buffer.size();
    if (c.buffer.empty()) c.idle_since = now;
    arm(c, EPOLL_CTL_MOD);
}

void HttpFrontEnd::Impl::dispatch(Conn& c, Clock::time_point now) {
    auto a = addresses.find(c.key);
    if (a != addresses.end() && !a->second.requests.take(now)) {
        ++rate_limited;
        return refuse(c, 429, "too many requests from this address", true);
    }
    c.state = Conn::State::working;
    c.scanned = 0;
    {
        std::lock_guard lock(queue_mutex);
        queue.push_back(&c);
    }
    queue_changed.notify_one();
}

void HttpFrontEnd::Impl::take_returned(Clock::time_point now) {
    uint64_t counter;
    while (::read(wake_fd, &counter, sizeof(counter)) > 0) {
    }
    std::vector<std::pair<Conn*, bool>> done;
    {
        std::lock_guard lock(queue_mutex);
        done.swap(returned);
    }
    for (auto [c, keep] : done) {
        if (!keep || stop_requested) {
            close_conn(c->tag);
            continue;
        }
        c->state = Conn::State::reading;
        c->request_since = now;  // a pipelined partial request starts its clock now
        c->idle_since = now;
        after_input(*c, now);
    }
}

void HttpFrontEnd::Impl::sweep(Clock::time_point now) {
    last_sweep = now;
    std::vector<std::pair<uint64_t, int>> expired;  // (tag, 0 idle / 408 / -1 drained)
    for (auto& [tag, conn] : conns) {
        Conn& c = *conn;
        if (c.state == Conn::State::draining) {
            if (now >= c.drain_until) expired.emplace_back(tag, -1);
        } else if (c.state == Conn::State::reading) {
            if (c.buffer.empty() && seconds_between(c.idle_since, now) > limits.idle_timeout_s)
                expired.emplace_back(tag, 0);
            else if (!c.buffer.empty() &&
                     seconds_between(c.request_since, now) > limits.header_timeout_s)
                expired.emplace_back(tag, 408);
        }
    }
    for (auto [tag, what] : expired) {
        if (what == 408) {
            ++header_timeouts;
            refuse(*conns.at(tag), 408,
                   fmt::format("request header not complete within {} s", limits.header_timeout_s),
                   false);
        } else {
            if (what == 0) ++idle_closed;
            close_conn(tag);
        }
    }
    for (auto it = addresses.begin(); it != addresses.end();) {
        if (it->second.connections == 0 && it->second.requests.full(now))
            it = addresses.erase(it);
        else
            ++it;
    }
    if (accept_paused && now >= accept_resume) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kListenTag;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
        accept_paused = false;
    }
}

void HttpFrontEnd::Impl::worker() {
    for (;;) {
        Conn* c = nullptr;
        {
            std::unique_lock lock(queue_mutex);
            queue_changed.wait(lock, [&] { return !queue.empty() || workers_stop; });
            if (queue.empty()) return;
            c = queue.front();
            queue.pop_front();
        }
        bool keep = false;
        if (!stop_requested) {
            FrontStream stream(
                c->fd, c->buffer, c->info.ip, c->info.port,
                std::chrono::milliseconds(static_cast<int64_t>(limits.io_timeout_s * 1000)));
            t_current = &c->info;
            try {
                keep = handler(stream, c->info) && !c->info.close_after_response;
            } catch (...) {
                keep = false;  // the handler's own errors are answered inside it
            }
            t_current = nullptr;
        }
        {
            std::lock_guard lock(queue_mutex);
            returned.emplace_back(c, keep);
        }
        const uint64_t one = 1;
        (void)::write(wake_fd, &one, sizeof(one));
    }
}

void HttpFrontEnd::Impl::loop() {
    std::vector<std::thread> workers;
    for (int i = 0; i < limits.workers; ++i) workers.emplace_back([this] { worker(); });
    last_sweep = Clock::now();
    std::vector<epoll_event> events(256);
    while (!stop_requested) {
        const int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()),
                                   static_cast<int>(kSweepInterval.count()));
        const auto now = Clock::now();
        for (int i = 0; i < n; ++i) {
            const uint64_t tag = events[static_cast<size_t>(i)].data.u64;
            if (tag == kListenTag) {
                accept_all(now);
            } else if (tag == kWakeTag) {
                take_returned(now);
            } else if (auto it = conns.find(tag); it != conns.end()) {
                if (it->second->state != Conn::State::working) on_readable(*it->second, now);
            }
        }
        if (now - last_sweep >= kSweepInterval) sweep(now);
    }
    // Stopping: cut the connections workers hold so their reads and writes fail at once.
    {
        std::lock_guard lock(queue_mutex);
        for (auto& [tag, conn] : conns)
            if (conn->state == Conn::State::working) ::shutdown(conn->fd, SHUT_RDWR);
        workers_stop = true;
    }
    queue_changed.notify_all();
    for (auto& t : workers) t.join();
    shutdown_all();
}

void HttpFrontEnd::Impl::shutdown_all() {
    std::vector<uint64_t> tags;
    for (auto& [tag, conn] : conns) tags.push_back(tag);
    for (uint64_t tag : tags) close_conn(tag);
    returned.clear();
    close_fd(listen_fd);
}

HttpFrontEnd::HttpFrontEnd(FrontLimits limits, LinkConfig link, Handler handler)
    : impl_(std::make_unique<Impl>(limits, std::move(link), std::move(handler))) {
    impl_->limits.validate();
}

HttpFrontEnd::~HttpFrontEnd() = default;

int HttpFrontEnd::bind(const std::string& host, int port) {
    Impl& s = *impl_;
    if (s.listen_fd >= 0) fail("server: already bound");
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found) != 0)
        fail("server: cannot listen on {}:{} (not an address of this host?)", host, port);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
    int fd = -1;
    std::string error = "no address";
    for (addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol);
        if (fd < 0) continue;
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
            error = std::strerror(errno);
            close_fd(fd);
        }
    }
    if (fd < 0) fail("server: cannot listen on {}:{}: {}", host, port, error);
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    int bound_port = 0;
    address_text(bound, bound_port);

    s.listen_fd = fd;
    s.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s.epoll_fd < 0 || s.wake_fd < 0)
        fail("server: cannot create epoll: {}", std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    ::epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.listen_fd, &ev);
    ev.data.u64 = kWakeTag;
    ::epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.wake_fd, &ev);
    return bound_port;
}

void HttpFrontEnd::run() {
    if (impl_->listen_fd < 0) fail("server: run() before bind()");
    impl_->loop();
}

void HttpFrontEnd::stop() {
    impl_->stop_requested = true;
    if (impl_->wake_fd >= 0) {
        const uint64_t one = 1;
        (void)::write(impl_->wake_fd, &one, sizeof(one));
    }
}

FrontStats HttpFrontEnd::stats() const {
    const Impl& s = *impl_;
    return {s.connections,      s.open,         s.refused_busy,
            s.refused_address,  s.rate_limited, s.header_timeouts,
            s.header_too_large, s.idle_closed};
}

FrontConnection* HttpFrontEnd::current() {
    return t_current;
}

}  // namespace sparkv
