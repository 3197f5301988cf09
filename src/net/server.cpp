#include "net/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "net/byte_ranges.h"
#include "net/http_front.h"
#include "net/response_body.h"
#include "store/content_id.h"
#include "store/context_store.h"

namespace sparkv {

namespace {

constexpr size_t kBodyBufferBytes = 64 * 1024;

// httplib's routing and request parsing, driven by the front end one request at a time: the
// front end owns the sockets, so httplib never listens or accepts.
class HttpEngine : public httplib::Server {
  public:
    using httplib::Server::process_request;
    // httplib stops writing a body as soon as its listening socket is invalid ("shutting
    // down"); this one never listens, so it holds a descriptor number that is never a real file
    // while serving (no httplib code path closes or uses it here) and is invalidated on stop.
    void set_serving(bool serving) {
        svr_sock_ = serving ? std::numeric_limits<int>::max() : INVALID_SOCKET;
    }
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

FrontLimits front_limits(const ServerConfig& config) {
    FrontLimits f;
    f.workers = config.threads;
    f.max_connections = config.limits.max_connections;
    f.max_connections_per_address = config.limits.max_connections_per_address;
    f.requests_per_second = config.limits.requests_per_second;
    f.request_burst = config.limits.request_burst;
    f.max_header_bytes = config.limits.max_header_bytes;
    f.header_timeout_s = config.limits.header_timeout_s;
    f.idle_timeout_s = config.keep_alive_s;
    f.io_timeout_s = config.limits.io_timeout_s;
    return f;
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
          front(front_limits(config), config.link,
                [this](httplib::Stream& stream, FrontConnection& connection) {
                    return serve(stream, connection);
                }) {}

    void setup_routes();
    bool serve(httplib::Stream& stream, FrontConnection& connection);
    // The tenant of the request, or null after answering 401. Without an access config every
    // request is allowed and `open_access` is returned.
    const Tenant* authenticate(const httplib::Request& req, httplib::Response& res);
    void handle_object(const httplib::Request& req, httplib::Response& res);
    void handle_list(const Tenant& tenant, httplib::Response& res);
    // Links that clients named (X-Sparkv-Link), by "address/name". Weak: a link lives as long as
    // one of its connections does.
    std::mutex named_links_mutex;
    std::unordered_map<std::string, std::weak_ptr<LinkPacer>> named_links;
    // The pacer shared by the connections of `ip` that name `name`; `own` (the asking
    // connection's pacer) founds the link when it is new. Bounded: names come from clients.
    std::shared_ptr<LinkPacer> named_link(const std::string& ip, const std::string& name,
                                          std::shared_ptr<LinkPacer> own) {
        const bool valid =
            !name.empty() && name.size() <= 64 &&
            std::all_of(name.begin(), name.end(), [](char ch) {
                return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
            });
        if (!valid) return own;
        std::lock_guard lock(named_links_mutex);
        if (named_links.size() >= kMaxNamedLinks)
            std::erase_if(named_links, [](const auto& entry) { return entry.second.expired(); });
        const std::string key = ip + "/" + name;
        if (auto it = named_links.find(key); it != named_links.end())
            if (auto shared = it->second.lock()) return shared;
        if (named_links.size() >= kMaxNamedLinks) return own;
        named_links[key] = own;
        return own;
    }

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
    static constexpr size_t kMaxNamedLinks = 4096;
    std::mutex committed_mutex;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> committed;

    std::shared_ptr<StorageBackend> backend;
    ContextStore store;
    ServerConfig config;
    StopSignal stop;
    HttpEngine http;
    HttpFrontEnd front;
    Tenant open_access{"(open)", {}, std::string()};
    std::thread listener;
    int port = -1;
    bool bound = false;

    std::atomic<uint64_t> requests{0}, objects_served{0}, body_bytes{0}, not_found{0}, rejected{0},
        aborted{0}, unauthorized{0}, forbidden{0};
};

bool UnitServer::Impl::serve(httplib::Stream& stream, FrontConnection& connection) {
    bool client_closes = false;
    const bool ok = http.process_request(stream, stop.stop_requested(), client_closes, nullptr);
    return ok && !client_closes && !connection.close_after_response;
}

const Tenant* UnitServer::Impl::authenticate(const httplib::Request& req, httplib::Response& res) {
    if (!config.access) return &open_access;
    const std::string header = req.get_header_value("Authorization");
    if (const Tenant* tenant = config.access->authenticate(header)) return tenant;
    ++unauthorized;
    res.set_header("WWW-Authenticate", header.empty()
                                           ? "Bearer realm=\"sparkv\""
                                           : "Bearer realm=\"sparkv\", error=\"invalid_token\"");
    set_error(res, 401,
              header.empty() ? "this server needs a bearer token (Authorization: Bearer <token>)"
                             : "the bearer token is not valid here");
    return nullptr;
}

void UnitServer::Impl::setup_routes() {
    http.set_keep_alive_max_count(1'000'000);  // a client streams hundreds of units per connection
    http.set_keep_alive_timeout(config.keep_alive_s);
    http.set_payload_max_length(64 * 1024);  // nothing here takes a body

    // Before routing (and before httplib would read a body): only GET and HEAD, short targets.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (req.target.size() > config.limits.max_uri_bytes) {
            ++rejected;
            res.set_header("Connection", "close");
            if (auto* c = HttpFrontEnd::current()) c->close_after_response = true;
            set_error(
                res, 414,
                fmt::format("request target longer than {} bytes", config.limits.max_uri_bytes));
            return httplib::Server::HandlerResponse::Handled;
        }
        if (req.method != "GET" && req.method != "HEAD") {
            ++rejected;
            res.set_header("Allow", "GET, HEAD");
            res.set_header("Connection", "close");  // a body may follow that nobody reads
            if (auto* c = HttpFrontEnd::current()) c->close_after_response = true;
            set_error(
                res, 405,
                fmt::format("method {} is not allowed (GET, HEAD)", req.method.substr(0, 16)));
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });

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
        if (const Tenant* tenant = authenticate(req, res)) handle_list(*tenant, res);
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
        // The path and status only: never headers, which carry bearer tokens.
        http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
            std::fprintf(stderr, "%s:%d %s %s -> %d\n", req.remote_addr.c_str(), req.remote_port,
                         req.method.c_str(), req.path.c_str(), res.status);
        });
    }
}

void UnitServer::Impl::handle_list(const Tenant& tenant, httplib::Response& res) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& id : store.list_contexts()) {
        if (!tenant.may_read(id)) continue;
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
    const httplib::Ranges requested = take_ranges(req);
    delay_first_byte();
    const Tenant* tenant = authenticate(req, res);
    if (!tenant) return;
    const std::string key = req.path.size() > 1 ? req.path.substr(1) : std::string();
    if (!is_valid_key(key)) {
        ++rejected;
        return set_error(res, 400,
                         "path is not a store object path (relative segments of "
                         "[A-Za-z0-9_.-], none empty or starting with '.')");
    }
    const auto path = parse_object_path(key);
    if (!path) return set_error(res, 404, fmt::format("no such object: /{}", key));
    // Access is decided on the id alone, before looking at the store, so that a tenant learns
    // nothing about contexts it may not read (not even whether they exist).
    if (!tenant->may_read(path->context_id)) {
        ++forbidden;
        return set_error(
            res, 403,
            fmt::format("tenant {} may not read context {}", tenant->name, path->context_id));
    }
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
    const RangeAnswer answer = resolve_ranges(requested, size);
    if (answer.kind == RangeAnswer::Kind::unsatisfiable) {
        ++rejected;
        res.set_header("Content-Range", fmt::format("bytes */{}", size));
        return set_error(res, 416, fmt::format("range not satisfiable for {} bytes", size));
    }
    const char* type =
        path->kind == ObjectPath::Kind::manifest ? "application/json" : "application/octet-stream";
    std::string content_type = type;
    ResponseBody body = ResponseBody::range(0, size);
    if (answer.kind == RangeAnswer::Kind::partial) {
        res.status = 206;
        if (answer.ranges.size() == 1) {
            const ByteRange& r = answer.ranges[0];
            body = ResponseBody::range(r.first, r.length());
            res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", r.first, r.last, size));
        } else {
            const std::string boundary = random_boundary();
            body = ResponseBody::multipart(answer.ranges, size, type, boundary);
            content_type = "multipart/byteranges; boundary=" + boundary;
        }
    }
    res.set_header("Accept-Ranges", "bytes");
    res.set_header("Cache-Control", std::string(cache_control_for_key(key)));

    FrontConnection* connection = HttpFrontEnd::current();
    if (connection && connection->pacer && req.has_header("X-Sparkv-Link"))
        connection->pacer =
            named_link(connection->ip, req.get_header_value("X-Sparkv-Link"), connection->pacer);
    std::shared_ptr<LinkPacer> pacer = connection ? connection->pacer : nullptr;
    if (pacer)
        res.set_header("X-Sparkv-Link-Time",
                       fmt::format("{:.6f}", pacer->link_time(LinkPacer::Clock::now())));
    if (body.size() == 0) return res.set_content("", content_type);

    // State shared by the provider calls of this one body.
    struct Body {
        std::unique_ptr<ObjectReader> reader;
        ResponseBody layout;
        std::shared_ptr<LinkPacer> pacer;
        bool started = false;
        std::vector<uint8_t> buffer;
    };
    auto state = std::make_shared<Body>(Body{std::move(reader), std::move(body), pacer, false, {}});
    const bool head = req.method == "HEAD";
    res.set_content_provider(
        state->layout.size(), content_type,
        [this, state](size_t offset, size_t remaining, httplib::DataSink& sink) {
            if (!state->started) {
                state->started = true;
                state->buffer.resize(kBodyBufferBytes);
                if (state->pacer) state->pacer->begin_body();
            }
            size_t n = std::min(remaining, state->buffer.size());
            if (state->pacer) n = state->pacer->wait_for_credit(n, stop);
            if (n == 0 || stop.stop_requested()) return false;
            const size_t got =
                state->layout.read(*state->reader, offset, std::span(state->buffer.data(), n));
            if (got != n) return false;  // the file shrank under us: end the response early
            if (!sink.write(reinterpret_cast<const char*>(state->buffer.data()), n)) return false;
            body_bytes += n;
            return true;
        },
        [this, head, state](bool success) {
            if (state->started && state->pacer) state->pacer->end_body();
            if (success)
                ++objects_served;
            else if (!head)
                ++aborted;
        });
}

UnitServer::UnitServer(std::shared_ptr<StorageBackend> backend, ServerConfig config) {
    config.link.validate();
    if (config.threads < 1) fail("server: need at least one thread");
    if (config.keep_alive_s < 1) fail("server: keep-alive timeout must be >= 1 s");
    if (config.limits.max_uri_bytes < 64) fail("server: max URI length must be at least 64");
    impl_ = std::make_unique<Impl>(std::move(backend), std::move(config));
    impl_->setup_routes();
    impl_->http.set_serving(true);
}

UnitServer::~UnitServer() {
    stop();
}

int UnitServer::start() {
    Impl& s = *impl_;
    if (s.bound) fail("server: already started");
    s.port = s.front.bind(s.config.host, s.config.port);
    s.bound = true;
    s.listener = std::thread([&s] { s.front.run(); });
    return s.port;
}

void UnitServer::run() {
    Impl& s = *impl_;
    if (s.listener.joinable()) fail("server: already serving on a background thread");
    if (!s.bound) {
        s.port = s.front.bind(s.config.host, s.config.port);
        s.bound = true;
    }
    s.front.run();
}

void UnitServer::stop() {
    Impl& s = *impl_;
    s.stop.request_stop();  // paced bodies and RTT delays end at once
    s.http.set_serving(false);
    s.front.stop();
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
    const FrontStats f = s.front.stats();
    ServerStats st;
    st.requests = s.requests;
    st.objects_served = s.objects_served;
    st.body_bytes_sent = s.body_bytes;
    st.not_found = s.not_found;
    st.rejected = s.rejected;
    st.aborted_bodies = s.aborted;
    st.connections = f.connections;
    st.open_connections = f.open_connections;
    st.unauthorized = s.unauthorized;
    st.forbidden = s.forbidden;
    st.refused_busy = f.refused_busy;
    st.refused_address = f.refused_address;
    st.rate_limited = f.rate_limited;
    st.header_timeouts = f.header_timeouts;
    st.header_too_large = f.header_too_large;
    st.idle_closed = f.idle_closed;
    return st;
}

}  // namespace sparkv
