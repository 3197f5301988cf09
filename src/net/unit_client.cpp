#include "net/unit_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "common/error.h"
#include "common/timer.h"
#include "net/endpoint.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/s3_xml.h"

namespace sparkv {

namespace {

std::string unit_name(const UnitRequest& u) {
    return fmt::format("unit ({}, {})", u.t, u.l);
}

// The "error" field of a JSON error body (`sparkv serve`), the Code and Message of an S3 XML
// error body (an object store, a CDN in front of one), else the body itself (shortened).
std::string error_message(const std::string& body) {
    try {
        const auto j = nlohmann::json::parse(body);
        if (j.is_object() && j.contains("error") && j["error"].is_string())
            return j["error"].get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
    if (const auto s3 = parse_s3_error(body)) return fmt::format("{}: {}", s3->code, s3->message);
    std::string text = body.substr(0, 200);
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    return text;
}

bool is_server_error(int status) {
    return status == 500 || status == 502 || status == 503 || status == 504;
}

httplib::Headers request_headers(const ClientConfig& config, const std::string& link_name) {
    httplib::Headers headers;
    if (!config.host_header.empty()) headers.emplace("Host", config.host_header);
    headers.emplace("X-Sparkv-Link", link_name);
    return headers;
}

// A name for this client's link, unique enough among one server's clients.
std::string random_link_name() {
    std::random_device device;
    const uint64_t high = device(), low = device();
    return fmt::format("{:016x}", (high << 32) ^ low);
}

int64_t unit_id(int32_t t, int32_t l) {
    return (static_cast<int64_t>(t) << 32) | static_cast<uint32_t>(l);
}

void split_seconds(double seconds, time_t& sec, time_t& usec) {
    sec = static_cast<time_t>(seconds);
    usec = static_cast<time_t>(std::llround((seconds - static_cast<double>(sec)) * 1e6));
}

}  // namespace

ClientConfig client_config_for_server(std::string_view server) {
    const Endpoint e = parse_endpoint(server);
    ClientConfig config;
    config.host = e.host;
    config.port = e.port;
    config.path_prefix = e.path;
    return config;
}

const char* failure_kind_name(FailureKind kind) {
    switch (kind) {
        case FailureKind::not_in_manifest:
            return "not_in_manifest";
        case FailureKind::http_status:
            return "http_status";
        case FailureKind::size_mismatch:
            return "size_mismatch";
        case FailureKind::checksum_mismatch:
            return "checksum_mismatch";
        case FailureKind::hash_mismatch:
            return "hash_mismatch";
        case FailureKind::timeout:
            return "timeout";
        case FailureKind::connection_lost:
            return "connection_lost";
        case FailureKind::unreachable:
            return "unreachable";
        case FailureKind::decode:
            return "decode";
        case FailureKind::cancelled:
            return "cancelled";
    }
    return "unknown";
}

UnitClient::UnitClient(ClientConfig config)
    : config_(std::move(config)),
      trust_(config_.trust ? config_.trust : std::make_shared<const TrustPolicy>()),
      link_name_(random_link_name()) {
    if (!(config_.read_timeout_s > 0) || !(config_.connect_timeout_s > 0))
        fail("client: timeouts must be positive");
    if (config_.max_queued_units == 0) fail("client: max_queued_units must be at least 1");
    if (config_.connections < 1 || config_.connections > 8)
        fail("client: connections must be in 1..8, got {}", config_.connections);
    if (!config_.path_prefix.empty() &&
        (config_.path_prefix.front() != '/' || config_.path_prefix.back() == '/'))
        fail("client: path prefix \"{}\" must start with '/' and not end with one",
             config_.path_prefix);
    if (config_.server_error_retries < 0 || !(config_.retry_backoff_s >= 0))
        fail("client: retries and backoff must not be negative");
    if (!config_.source_address.empty()) {
        in_addr parsed{};
        if (::inet_pton(AF_INET, config_.source_address.c_str(), &parsed) != 1)
            fail("client: source address \"{}\" is not an IPv4 address", config_.source_address);
    }
    for (int i = 0; i < config_.connections; ++i) {
        auto connection = std::make_unique<Connection>();
        connection->http = make_http(*connection);
        connections_.push_back(std::move(connection));
    }
}

std::unique_ptr<httplib::Client> UnitClient::make_http(Connection& connection) {
    auto http = std::make_unique<httplib::Client>(config_.host, config_.port);
    time_t sec, usec;
    split_seconds(config_.connect_timeout_s, sec, usec);
    http->set_connection_timeout(sec, usec);
    split_seconds(config_.read_timeout_s, sec, usec);
    http->set_read_timeout(sec, usec);
    http->set_write_timeout(sec, usec);
    http->set_keep_alive(true);
    http->set_tcp_nodelay(true);
    http->set_decompress(false);
    if (!config_.bearer_token.empty()) http->set_bearer_token_auth(config_.bearer_token.c_str());
    sockaddr_in source{};
    if (!config_.source_address.empty()) {
        source.sin_family = AF_INET;
        ::inet_pton(AF_INET, config_.source_address.c_str(), &source.sin_addr);
    }
    http->set_socket_options([this, &connection, source](int fd) {
        ++connections_opened_;
        connection.socket = fd;
        if (source.sin_family == AF_INET)  // before httplib connects: bind the local end
            ::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof(source));
    });
    return http;
}

UnitClient::~UnitClient() {
    cancel();
    wait();
}

std::string UnitClient::url_path(const std::string& key) const {
    return fmt::format("{}/{}", config_.path_prefix, key);
}

void UnitClient::acknowledge_now(const Connection& connection) {
    // A server that writes without TCP_NODELAY (Garage's web endpoint) holds a small segment
    // (the body after the headers, a body's last piece) until the data before it is
    // acknowledged, which Linux delays by up to 40 ms on a keep-alive connection: acknowledge at
    // once whenever data arrives (Garage: 44 -> 1 ms per small unit on loopback).
    const int socket = connection.socket.load();
    const int one = 1;
    if (socket >= 0) setsockopt(socket, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

bool UnitClient::back_off(int retry) {
    ++retries_;
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration<double>(config_.retry_backoff_s *
                                                     static_cast<double>(1 << (retry - 1)));
    while (std::chrono::steady_clock::now() < until) {
        if (cancelled_) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return !cancelled_;
}

std::string UnitClient::get_small_object(const std::string& key, std::string_view what) {
    if (started_) fail("client: cannot fetch {} while streaming", what);
    for (int retry = 0;; ++retry) {
        auto result =
            connections_[0]->http->Get(url_path(key), request_headers(config_, link_name_));
        if (!result)
            fail("cannot fetch {} from {}:{}: {}", what, config_.host, config_.port,
                 httplib::to_string(result.error()));
        if (is_server_error(result->status) && retry < config_.server_error_retries &&
            back_off(retry + 1))
            continue;
        if (result->status != 200)
            fail("server {}:{} answered {} for {}: {}", config_.host, config_.port, result->status,
                 what, error_message(result->body));
        bytes_received_ += result->body.size();
        return std::move(result->body);
    }
}

const Manifest& UnitClient::fetch_manifest(std::string_view context_id) {
    if (!is_context_id(context_id))
        fail("\"{}\" is not a context id (64 lowercase hex digits)", context_id);
    trust_->note_if_unverified();
    const std::string body =
        get_small_object(manifest_key(context_id), fmt::format("the manifest of {}", context_id));
    Manifest m;
    try {
        m = trust_->check_manifest(body, context_id, config_.model_fingerprint);
    } catch (const UntrustedContext& e) {
        throw UntrustedContext(
            fmt::format("{} (from {}:{})", e.what(), config_.host, config_.port));
    } catch (const Error& e) {
        fail("manifest of {} from {}:{}: {}", context_id, config_.host, config_.port, e.what());
    }
    manifest_ = std::move(m);
    have_manifest_ = true;
    return manifest_;
}

std::vector<int32_t> UnitClient::fetch_tokens() {
    if (!have_manifest_) fail("client: fetch the manifest before the token ids");
    const std::string body = get_small_object(
        tokens_key(manifest_), fmt::format("the token ids of {}", manifest_.context_id));
    return parse_tokens(manifest_,
                        std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
}

bool UnitClient::cancel_unit(int32_t t, int32_t l) {
    std::unique_lock lock(queue_mutex_);
    for (auto& connection : connections_) {
        if (connection->current_unit.load() == unit_id(t, l)) {
            connection->cancel_current = true;  // its fetch loop reports it when the transfer stops
            return true;
        }
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (it->unit.t != t || it->unit.l != l) continue;
        const UnitRequest unit = it->unit;
        queue_.erase(it);
        lock.unlock();
        queue_changed_.notify_all();
        report(unit, FailureKind::cancelled, fmt::format("{}: withdrawn", unit_name(unit)));
        return true;
    }
    return false;
}

void UnitClient::start(std::shared_ptr<FetchSchedule> schedule, ClientCallbacks callbacks) {
    if (!have_manifest_) fail("client: fetch the manifest before streaming units");
    if (started_) fail("client: already started");
    if (!schedule) fail("client: no schedule");
    schedule_ = std::move(schedule);
    callbacks_ = std::move(callbacks);
    started_ = true;
    fetchers_running_ = static_cast<int>(connections_.size());
    for (auto& connection : connections_)
        connection->thread = std::thread([this, c = connection.get()] { fetch_loop(*c); });
    delivery_thread_ = std::thread([this] { delivery_loop(); });
}

void UnitClient::cancel() {
    cancelled_ = true;
    if (schedule_) schedule_->wake();
    { std::lock_guard lock(queue_mutex_); }
    queue_changed_.notify_all();
    // httplib's stop() shuts down the socket of a request in flight. A request that is just being
    // set up can miss it, so repeat until each fetch thread has left its request (it checks the
    // flag after announcing the request, so it either sees the flag or we see the request).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (auto& connection : connections_) {
        while (connection->in_request && std::chrono::steady_clock::now() < deadline) {
            connection->http->stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
}

void UnitClient::wait() {
    for (auto& connection : connections_)
        if (connection->thread.joinable()) connection->thread.join();
    if (delivery_thread_.joinable()) delivery_thread_.join();
    started_ = false;
}

ClientStats UnitClient::stats() const {
    ClientStats st;
    st.units_received = units_received_;
    st.units_failed = units_failed_;
    st.bytes_received = bytes_received_;
    st.connections_opened = connections_opened_;
    st.retries = retries_;
    return st;
}

void UnitClient::report(const UnitRequest& unit, FailureKind kind, std::string reason) {
    if (kind != FailureKind::cancelled) ++units_failed_;
    if (callbacks_.on_failure) callbacks_.on_failure({unit, kind, std::move(reason)});
}

void UnitClient::fetch_loop(Connection& connection) {
    while (auto unit = schedule_->take([this] { return cancelled_.load(); })) {
        if (server_gone_) {
            report(*unit, FailureKind::unreachable,
                   fmt::format("{}: server {}:{} is unreachable", unit_name(*unit), config_.host,
                               config_.port));
            continue;
        }
        if (callbacks_.before_request && !callbacks_.before_request(*unit)) continue;
        fetch_unit(connection, *unit);
        std::lock_guard lock(queue_mutex_);
        connection.current_unit = -1;
        connection.cancel_current = false;
    }
    {
        std::lock_guard lock(queue_mutex_);
        --fetchers_running_;
    }
    queue_changed_.notify_all();
}

void UnitClient::link_headers_arrived(double now_s) {
    std::lock_guard lock(link_mutex_);
    if (bodies_active_++ == 0) {  // the link was idle: its busy time starts now
        mark_s_ = now_s;
        mark_bytes_ = link_bytes_;
    }
}

void UnitClient::link_body_ended(UnitTiming* completed, uint64_t body_bytes) {
    std::lock_guard lock(link_mutex_);
    if (bodies_active_ > 0) --bodies_active_;
    if (!completed) return;
    // What the link carried for every body since the last sample (or since it became busy):
    // with one connection exactly this unit's bytes over its transfer time.
    const uint64_t carried = link_bytes_ - mark_bytes_;
    if (2 * carried < body_bytes) {
        // Most of this body crossed before the last sample (bodies that ended together): too
        // little time to measure over; the next sample covers it.
        completed->link_start_s = -1;
        return;
    }
    completed->link_start_s = mark_s_;
    completed->link_bytes = carried;
    mark_s_ = std::max(completed->last_byte_s, completed->headers_s);
    mark_bytes_ = link_bytes_;
}

void UnitClient::fetch_unit(Connection& connection, const UnitRequest& unit) {
    const int level = manifest_.level_index(unit.level);
    if (level < 0 || unit.t < 0 || unit.t >= manifest_.n_chunks() || unit.l < 0 ||
        unit.l >= manifest_.n_layers())
        return report(unit, FailureKind::not_in_manifest,
                      fmt::format("{} at level {} is not in context {}", unit_name(unit),
                                  unit.level, manifest_.context_id));
    const UnitObject expected = manifest_.unit(unit.t, unit.l).objects[static_cast<size_t>(level)];

    ReceivedUnit received{unit, {}, {}, {}, 0};
    received.bytes.reserve(expected.bytes);
    UnitTiming& timing = received.timing;
    int status = 0;
    std::string error_body;
    bool overflow = false;
    const std::string path = url_path(unit_key(manifest_, unit.level, unit.t, unit.l));
    const httplib::Headers headers = request_headers(config_, link_name_);

    {
        std::lock_guard lock(queue_mutex_);
        connection.current_unit = unit_id(unit.t, unit.l);
        connection.cancel_current = false;
    }
    const auto stop_reading = [this, &connection] {
        return cancelled_.load() || connection.cancel_current.load();
    };
    httplib::Result result{nullptr, httplib::Error::Unknown};
    for (int retry = 0;; ++retry) {
        timing = UnitTiming{};
        timing.request_s = now_seconds();
        received.bytes.clear();
        error_body.clear();
        status = 0;
        bool on_link = false;  // counted in the link accounting (headers seen)
        connection.in_request = true;
        if (cancelled_) {
            connection.in_request = false;
            return;
        }
        result = connection.http->Get(
            path, headers,
            [&](const httplib::Response& response) {
                timing.headers_s = now_seconds();
                status = response.status;
                acknowledge_now(connection);
                link_headers_arrived(timing.headers_s);
                on_link = true;
                return !stop_reading();
            },
            [&](const char* data, size_t n) {
                acknowledge_now(connection);
                {
                    std::lock_guard lock(link_mutex_);
                    link_bytes_ += n;
                }
                const double now = now_seconds();
                if (timing.first_byte_s == 0) timing.first_byte_s = now;
                timing.last_byte_s = now;
                if (status != 200) {
                    error_body.append(
                        data,
                        std::min<size_t>(n, 4096 - std::min<size_t>(4096, error_body.size())));
                    return !stop_reading();
                }
                if (received.bytes.size() + n > expected.bytes) {
                    overflow = true;  // stop reading: the object is not the one the manifest names
                    return false;
                }
                received.bytes.insert(received.bytes.end(), data, data + n);
                return !stop_reading();
            });
        connection.in_request = false;
        const bool complete = result && status == 200 && !connection.cancel_current &&
                              received.bytes.size() == expected.bytes;
        if (on_link) link_body_ended(complete ? &timing : nullptr, received.bytes.size());
        if (cancelled_) return;
        // An object store's 503 SlowDown or a CDN's 502 is worth asking again, briefly.
        if (result && is_server_error(status) && !connection.cancel_current &&
            retry < config_.server_error_retries && back_off(retry + 1))
            continue;
        break;
    }
    if (cancelled_) return;

    const std::string name = unit_name(unit);
    if (connection.cancel_current) {
        return report(unit, FailureKind::cancelled,
                      fmt::format("{}: withdrawn after {} of {} bytes", name, received.bytes.size(),
                                  expected.bytes));
    }
    if (overflow)
        return report(
            unit, FailureKind::size_mismatch,
            fmt::format("{}: size mismatch: server sent more than the manifest's {} bytes", name,
                        expected.bytes));
    if (!result) {
        const auto error = result.error();
        if (status == 0 &&
            (error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout)) {
            server_gone_ = true;  // a fresh connection failed: do not wait on it for every unit
            return report(unit, FailureKind::unreachable,
                          fmt::format("{}: server {}:{} is unreachable ({})", name, config_.host,
                                      config_.port, httplib::to_string(error)));
        }
        const double last_activity =
            std::max({timing.request_s, timing.headers_s, timing.last_byte_s});
        const double silent = now_seconds() - last_activity;
        if (silent >= 0.9 * config_.read_timeout_s)
            return report(unit, FailureKind::timeout,
                          fmt::format("{}: timed out after {:.1f} s without data ({} of {} bytes)",
                                      name, silent, received.bytes.size(), expected.bytes));
        return report(
            unit, FailureKind::connection_lost,
            fmt::format("{}: connection lost after {} of {} bytes ({})", name,
                        received.bytes.size(), expected.bytes, httplib::to_string(error)));
    }
    if (status != 200)
        return report(
            unit, FailureKind::http_status,
            fmt::format("{}: server answered {}: {}", name, status, error_message(error_body)));
    if (received.bytes.size() != expected.bytes)
        return report(unit, FailureKind::size_mismatch,
                      fmt::format("{}: size mismatch: received {} bytes, manifest says {}", name,
                                  received.bytes.size(), expected.bytes));
    if (object_checksum(received.bytes) != expected.xxh64)
        return report(unit, FailureKind::checksum_mismatch,
                      fmt::format("{}: checksum mismatch", name));

    timing.bytes = received.bytes.size();
    if (timing.first_byte_s == 0) timing.first_byte_s = timing.last_byte_s = timing.headers_s;
    ++units_received_;
    bytes_received_ += timing.bytes;
    if (callbacks_.on_timing) callbacks_.on_timing(timing);
    deliver(connection, std::move(received));
}

void UnitClient::deliver(Connection& connection, ReceivedUnit&& unit) {
    std::unique_lock lock(queue_mutex_);
    queue_changed_.wait(lock,
                        [&] { return queue_.size() < config_.max_queued_units || cancelled_; });
    if (cancelled_) return;
    if (connection.cancel_current) {  // withdrawn between its last byte and now
        lock.unlock();
        return report(unit.unit, FailureKind::cancelled,
                      fmt::format("{}: withdrawn", unit_name(unit.unit)));
    }
    connection.current_unit = -1;  // from here on cancel_unit finds it in the queue
    queue_.push_back(std::move(unit));
    lock.unlock();
    queue_changed_.notify_all();
}

bool UnitClient::verify_hash(ReceivedUnit& unit) {
    if (!trust_->enforcing()) return true;
    const double start = now_seconds();
    const UnitObject& expected = manifest_.object(unit.unit.t, unit.unit.l, unit.unit.level);
    const bool ok = sha256(unit.bytes) == expected.sha256;
    unit.verify_s = now_seconds() - start;
    if (!ok) {
        unit.bytes.clear();  // refused bytes never reach the caller
        report(unit.unit, FailureKind::hash_mismatch,
               fmt::format("{}: SHA-256 differs from the signed manifest: refused",
                           unit_name(unit.unit)));
    }
    return ok;
}

void UnitClient::delivery_loop() {
    for (;;) {
        ReceivedUnit unit;
        {
            std::unique_lock lock(queue_mutex_);
            queue_changed_.wait(
                lock, [&] { return !queue_.empty() || fetchers_running_ == 0 || cancelled_; });
            if (cancelled_ || queue_.empty()) return;
            unit = std::move(queue_.front());
            queue_.pop_front();
        }
        queue_changed_.notify_all();
        if (!verify_hash(unit)) continue;
        if (callbacks_.decode) {
            const double start = now_seconds();
            try {
                unit.decoded = callbacks_.decode(unit.unit, unit.bytes);
            } catch (const std::exception& e) {
                report(unit.unit, FailureKind::decode,
                       fmt::format("{}: decode failed: {}", unit_name(unit.unit), e.what()));
                continue;
            }
            unit.decode_s = now_seconds() - start;
        }
        if (cancelled_) return;
        const UnitRequest request = unit.unit;
        try {
            if (callbacks_.on_unit) callbacks_.on_unit(std::move(unit));
        } catch (const std::exception& e) {
            report(request, FailureKind::decode,
                   fmt::format("{}: could not be used: {}", unit_name(request), e.what()));
        }
    }
}

}  // namespace sparkv
