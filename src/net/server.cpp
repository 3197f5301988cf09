#include "net/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "net/server_connections.h"
#include "store/content_id.h"
#include "store/context_store.h"

namespace sparkv {

namespace {

constexpr size_t kBodyBufferBytes = 64 * 1024;

// httplib 0.11 listens with a backlog of 5, which drops connection attempts when dozens of
// clients connect at once. Server exposes the listening socket to subclasses, so re-listen
// with a deeper queue (Linux allows changing the backlog of a listening socket).
class HttpServer : public httplib::Server {
  public:
    void deepen_listen_queue() { ::listen(svr_sock_, SOMAXCONN); }
};

// What a request path names in the store layout.
struct ObjectPath {
    enum class Kind { manifest, tokens, unit } kind;
    std::string context_id;
    std::string attempt;  // empty for the manifest
    std::string level;
    int32_t t = 0;
    int32_t l = 0;
};

bool parse_index(std::string_view text, int32_t& out) {
    if (text.empty() || text.size() > 9) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

std::optional<ObjectPath> parse_object_path(std::string_view key) {
    std::vector<std::string_view> parts;
    for (size_t start = 0;;) {
        const size_t end = key.find('/', start);
        parts.push_back(key.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    if (parts.size() < 3 || parts[0] != "contexts") return std::nullopt;
    ObjectPath path;
    path.context_id = std::string(parts[1]);
    if (parts.size() == 3 && parts[2] == "manifest.json") {
        path.kind = ObjectPath::Kind::manifest;
        return path;
    }
    // contexts/<id>/attempts/<attempt>/...: the objects of one ingest attempt.
    if (parts.size() < 5 || parts[2] != "attempts" || !is_attempt_name(parts[3]))
        return std::nullopt;
    path.attempt = std::string(parts[3]);
    if (parts.size() == 5 && parts[4] == "tokens.i32") {
        path.kind = ObjectPath::Kind::tokens;
        return path;
    }
    // units/<level>/t<t>_l<l>.kvu
    if (parts.size() != 7 || parts[4] != "units" || !is_level_name(parts[5])) return std::nullopt;
    std::string_view name = parts[6];
    if (name.size() < 8 || name.front() != 't' || !name.ends_with(".kvu")) return std::nullopt;
    name = name.substr(1, name.size() - 5);
    const size_t sep = name.find("_l");
    if (sep == std::string_view::npos || !parse_index(name.substr(0, sep), path.t) ||
        !parse_index(name.substr(sep + 2), path.l))
        return std::nullopt;
    path.kind = ObjectPath::Kind::unit;
    path.level = std::string(parts[5]);
    return path;
}

void set_json(httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
}

void set_error(httplib::Response& res, int status, const std::string& message) {
    set_json(res, status, {{"error", message}, {"status", status}});
}

// httplib 0.11 slices bodies by req.ranges without clamping them to the content length, so the
// object handler validates ranges itself and clears them before httplib sees the response. The
// Request is a non-const object inside httplib; only the handler's view of it is const.
httplib::Ranges take_ranges(const httplib::Request& req) {
    return std::exchange(const_cast<httplib::Request&>(req).ranges, {});
}

}  // namespace

struct UnitServer::Impl {
    Impl(std::shared_ptr<StorageBackend> backend_in, ServerConfig config_in)
        : backend(std::move(backend_in)),
          store(backend),
          config(std::move(config_in)),
          connections(config.link) {}

    void setup_routes();
    void bind();
    void handle_object(const httplib::Request& req, httplib::Response& res);
    void handle_list(httplib::Response& res);
    void serve_body(const httplib::Request& req, httplib::Response& res,
                    std::unique_ptr<ObjectReader> reader, const char* content_type);
    void delay_first_byte() {
        if (config.link.rtt_ms > 0)
            stop.sleep_for(
                std::chrono::nanoseconds(static_cast<int64_t>(config.link.rtt_ms * 1e6)));
    }

    // Whether the context has a manifest. A positive answer is remembered for a few seconds, so a
    // server in front of an object store does not ask it once per unit request.
    bool is_committed(const std::string& context_id) {
        const auto now = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(committed_mutex);
            const auto it = committed.find(context_id);
            if (it != committed.end() && now - it->second < kCommittedTtl) return true;
        }
        if (!store.has_manifest(context_id)) return false;
        std::lock_guard lock(committed_mutex);
        if (committed.size() > 4096) committed.clear();  // bounded: ids come from requests
        committed[context_id] = now;
        return true;
    }

    static constexpr std::chrono::seconds kCommittedTtl{5};
    std::mutex committed_mutex;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> committed;

    std::shared_ptr<StorageBackend> backend;
    ContextStore store;
    ServerConfig config;
    ConnectionRegistry connections;
    StopSignal stop;
    HttpServer http;
    std::thread listener;
    int port = -1;
    bool bound = false;

    std::atomic<uint64_t> requests{0}, objects_served{0}, body_bytes{0}, not_found{0}, rejected{0},
        aborted{0};
};

void UnitServer::Impl::setup_routes() {
    http.new_task_queue = [this] {
        return new ConnectionTaskQueue(static_cast<size_t>(config.threads), connections);
    };
    http.set_keep_alive_max_count(1'000'000);  // a client streams hundreds of units per connection
    http.set_keep_alive_timeout(config.keep_alive_s);
    http.set_tcp_nodelay(
        true);  // paced bodies are written in small pieces; never let Nagle hold them
    http.set_read_timeout(10);
    http.set_write_timeout(10);

    http.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
        ++requests;
        take_ranges(req);
        delay_first_byte();
        set_json(res, 200, {{"status", "ok"}});
    });
    http.Get("/contexts/?", [this](const httplib::Request& req, httplib::Response& res) {
        ++requests;
        take_ranges(req);
        delay_first_byte();
        handle_list(res);
    });
    http.Get("/.*", [this](const httplib::Request& req, httplib::Response& res) {
        ++requests;
        handle_object(req, res);
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request&, httplib::Response& res) {
            if (res.status == 404) ++not_found;
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            set_error(res, res.status, fmt::format("HTTP {}", res.status));
            return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
            std::string message = "internal error";
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                message = e.what();
            } catch (...) {
            }
            set_error(res, 500, message);
        });
    if (config.access_log) {
        http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
            std::fprintf(stderr, "%s:%d %s %s -> %d\n", req.remote_addr.c_str(), req.remote_port,
                         req.method.c_str(), req.path.c_str(), res.status);
        });
    }
}

void UnitServer::Impl::handle_list(httplib::Response& res) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& id : store.list_contexts()) {
        try {
            const Manifest m = store.read_manifest(id);
            nlohmann::json bytes = nlohmann::json::object();
            for (const auto& level : m.levels) bytes[level] = m.total_bytes(level);
            list.push_back({{"id", id},
                            {"model", m.model.name},
                            {"fingerprint", m.model.fingerprint},
                            {"n_tokens", m.n_tokens},
                            {"chunk_size", m.chunk_size},
                            {"n_chunks", m.n_chunks()},
                            {"n_layers", m.n_layers()},
                            {"levels", m.levels},
                            {"bytes", bytes}});
        } catch (const Error& e) {
            list.push_back({{"id", id}, {"error", e.what()}});
        }
    }
    set_json(res, 200, {{"contexts", list}});
}

void UnitServer::Impl::handle_object(const httplib::Request& req, httplib::Response& res) {
    const httplib::Ranges ranges = take_ranges(req);
    delay_first_byte();
    const std::string key = req.path.size() > 1 ? req.path.substr(1) : std::string();
    if (!is_valid_key(key)) {
        ++rejected;
        return set_error(res, 400,
                         "path is not a store object path (relative segments of "
                         "[A-Za-z0-9_.-], none empty or starting with '.')");
    }
    const auto path = parse_object_path(key);
    if (!path) return set_error(res, 404, fmt::format("no such object: /{}", key));
    if (!is_committed(path->context_id))
        return set_error(res, 404, fmt::format("unknown context {}", path->context_id));

    std::unique_ptr<ObjectReader> reader;
    try {
        reader = backend->open(key);
    } catch (const Error& e) {
        ++rejected;  // e.g. a symlink that leads out of the store
        return set_error(res, 403, e.what());
    }
    if (!reader) {
        if (path->kind == ObjectPath::Kind::manifest)
            return set_error(res, 404, fmt::format("unknown context {}", path->context_id));
        if (path->kind == ObjectPath::Kind::tokens)
            return set_error(res, 404,
                             fmt::format("context {} has no token ids", path->context_id));
        return set_error(res, 404,
                         fmt::format("unit ({}, {}) at level {} not found in context {}", path->t,
                                     path->l, path->level, path->context_id));
    }

    const uint64_t size = reader->size();
    uint64_t first = 0, length = size;
    if (ranges.size() > 1) {
        ++rejected;
        return set_error(res, 416, "multiple byte ranges are not supported; ask for one");
    }
    if (ranges.size() == 1) {
        const auto [a, b] = ranges[0];
        bool satisfiable;
        if (a < 0) {  // suffix: the last b bytes
            satisfiable = b > 0 && size > 0;
            first = size > static_cast<uint64_t>(std::max<ssize_t>(b, 0)) ? size - b : 0;
        } else {
            satisfiable = static_cast<uint64_t>(a) < size && (b < 0 || b >= a);
            first = static_cast<uint64_t>(a);
        }
        if (!satisfiable) {
            ++rejected;
            res.set_header("Content-Range", fmt::format("bytes */{}", size));
            return set_error(res, 416, fmt::format("range not satisfiable for {} bytes", size));
        }
        const uint64_t last = (a >= 0 && b >= 0) ? std::min<uint64_t>(b, size - 1) : size - 1;
        length = last - first + 1;
        res.status = 206;
        res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", first, last, size));
    }
    res.set_header("Accept-Ranges", "bytes");
    res.set_header("Cache-Control", std::string(cache_control_for_key(key)));

    ServedConnection* connection = connections.current();
    LinkPacer* pacer = connection ? connection->pacer.get() : nullptr;
    if (pacer)
        res.set_header("X-Sparkv-Link-Time",
                       fmt::format("{:.6f}", pacer->link_time(LinkPacer::Clock::now())));
    const char* type =
        path->kind == ObjectPath::Kind::manifest ? "application/json" : "application/octet-stream";
    if (length == 0) return res.set_content("", type);

    // State shared by the provider calls of this one body.
    struct Body {
        std::unique_ptr<ObjectReader> reader;
        uint64_t first;
        LinkPacer* pacer;
        bool started = false;
        std::vector<uint8_t> buffer;
    };
    auto body = std::make_shared<Body>(Body{std::move(reader), first, pacer, false, {}});
    const bool head = req.method == "HEAD";
    res.set_content_provider(
        length, type,
        [this, body](size_t offset, size_t remaining, httplib::DataSink& sink) {
            if (!body->started) {
                body->started = true;
                body->buffer.resize(kBodyBufferBytes);
                if (body->pacer) body->pacer->begin_body();
            }
            size_t n = std::min(remaining, body->buffer.size());
            if (body->pacer) n = body->pacer->wait_for_credit(n, stop);
            if (n == 0 || stop.stop_requested()) return false;
            const size_t got =
                body->reader->read_at(body->first + offset, std::span(body->buffer.data(), n));
            if (got != n) return false;  // the file shrank under us: end the response early
            if (!sink.write(reinterpret_cast<const char*>(body->buffer.data()), n)) return false;
            body_bytes += n;
            return true;
        },
        [this, head](bool success) {
            if (success)
                ++objects_served;
            else if (!head)
                ++aborted;
        });
}

UnitServer::UnitServer(std::shared_ptr<StorageBackend> backend, ServerConfig config)
    : impl_(std::make_unique<Impl>(std::move(backend), std::move(config))) {
    impl_->config.link.validate();
    if (impl_->config.threads < 1) fail("server: need at least one thread");
    if (impl_->config.keep_alive_s < 1) fail("server: keep-alive timeout must be >= 1 s");
    impl_->setup_routes();
}

UnitServer::~UnitServer() {
    stop();
}

void UnitServer::Impl::bind() {
    if (bound) fail("server: already started");
    port = config.port == 0 ? http.bind_to_any_port(config.host)
                            : (http.bind_to_port(config.host, config.port) ? config.port : -1);
    if (port < 0)
        fail("server: cannot listen on {}:{} (address in use, or not an address of this host?)",
             config.host, config.port);
    http.deepen_listen_queue();
    bound = true;
}

int UnitServer::start() {
    Impl& s = *impl_;
    s.bind();
    s.listener = std::thread([&s] { s.http.listen_after_bind(); });
    // httplib's stop() does nothing until the listener runs; a stop() right after start() would
    // otherwise be lost and the join in stop() would wait forever.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!s.http.is_running() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    return s.port;
}

void UnitServer::run() {
    if (!impl_->bound) impl_->bind();
    if (impl_->listener.joinable()) fail("server: already serving on a background thread");
    impl_->http.listen_after_bind();
}

void UnitServer::stop() {
    Impl& s = *impl_;
    s.http.stop();  // no new connections first, so clients of aborted bodies find it closed
    s.stop.request_stop();
    if (s.listener.joinable()) s.listener.join();
}

int UnitServer::port() const {
    return impl_->port;
}

std::string UnitServer::url() const {
    return fmt::format("http://{}:{}", impl_->config.host, impl_->port);
}

const ServerConfig& UnitServer::config() const {
    return impl_->config;
}

ServerStats UnitServer::stats() const {
    const Impl& s = *impl_;
    ServerStats st;
    st.requests = s.requests;
    st.objects_served = s.objects_served;
    st.body_bytes_sent = s.body_bytes;
    st.not_found = s.not_found;
    st.rejected = s.rejected;
    st.aborted_bodies = s.aborted;
    st.connections = s.connections.total_connections();
    st.open_connections = s.connections.open_connections();
    return st;
}

}  // namespace sparkv
