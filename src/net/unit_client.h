// The device side's network client. It fetches a context's manifest, then streams units over a
// few persistent HTTP/1.1 connections (ClientConfig::connections) in the order of a FetchSchedule
// that the caller may change while it runs: each connection takes the next unit when its last one
// is in, so the next request's round trip overlaps the current body instead of idling the link.
// Every unit is checked against the manifest's size and xxhash64 before it is handed on, and, under
// a trust policy (store/trust.h), the manifest's signature and every unit's SHA-256; a unit that
// fails (timeout, reset, bad checksum, HTTP error) is reported with a reason and the stream goes on
// with the next one. Decoding and the caller's callback run on a delivery thread, so the link never
// idles while a unit is being decoded.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "net/bandwidth_estimator.h"
#include "net/fetch_schedule.h"
#include "store/manifest.h"
#include "store/trust.h"

namespace httplib {
class Client;
}

namespace sparkv {

struct ClientConfig {
    std::string host = "127.0.0.1";
    int port = 8080;
    double connect_timeout_s = 3;
    // A unit fails as timed out when no byte arrives for this long. Real cellular traces pause
    // for up to ~1.5 s, so the default leaves a wide margin.
    double read_timeout_s = 10;
    // Received units waiting for the delivery thread; the fetch loop waits when it is full.
    size_t max_queued_units = 16;
    // Connections streaming units at once (1-8). One request per unit leaves the link idle for a
    // round trip between units; a second connection hides it. The requests name one link
    // (X-Sparkv-Link) so that an emulating server paces them together (net/server.h).
    int connections = 2;
    // Where the store's root is on the server: "" for `sparkv serve`, "/PREFIX" when an object
    // store's website endpoint or a CDN serves the store's objects under a path.
    std::string path_prefix;
    // Sent as the Host header instead of host:port: an object store's website endpoint or a CDN
    // picks the bucket or site by name. Empty: host:port.
    std::string host_header;
    // A unit answered 500, 502, 503 or 504 (an object store's SlowDown, a CDN's origin error) is
    // asked for again up to this many times, after retry_backoff_s, then 2x, 4x..., before it
    // is reported as failed.
    int server_error_retries = 2;
    double retry_backoff_s = 0.05;
    // Keys whose signatures the device trusts (--trust-key). Null or empty: contexts are not
    // verified, as before signing existed, and the client says so once per process.
    std::shared_ptr<const TrustPolicy> trust{};
    // When set, a manifest for other weights is refused (UntrustedContext): KV from another
    // model is never usable. The engine's hex64(Model::fingerprint()).
    std::string model_fingerprint{};
    // Sent as "Authorization: Bearer <token>" to a server with per-tenant access; never logged.
    std::string bearer_token{};
    // Local IPv4 address to connect from (empty: the system's choice). Lets a test or benchmark
    // play several devices on one machine (any 127/8 address is local), since the server limits
    // each client address.
    std::string source_address{};
};

// A --server argument: "HOST:PORT" (`sparkv serve`) or "http://HOST[:PORT][/PREFIX]" (an object
// store's website endpoint, a CDN edge, or serve behind a path). Throws Error otherwise.
ClientConfig client_config_for_server(std::string_view server);

struct ReceivedUnit {
    UnitRequest unit;
    std::vector<uint8_t> bytes;    // the verified encoded object
    std::vector<uint8_t> decoded;  // the decode hook's output (empty without a hook)
    UnitTiming timing;
    double decode_s = 0;
    double verify_s = 0;  // SHA-256 check under a trust policy (delivery thread)
};

enum class FailureKind {
    not_in_manifest,  // the schedule asked for a unit or level the context does not have
    http_status,      // the server answered with an error status
    size_mismatch,
    checksum_mismatch,
    hash_mismatch,  // the SHA-256 differs from the signed manifest's: refused under a trust key
    timeout,
    connection_lost,
    unreachable,  // the server cannot be reached any more; every later unit fails this way
    decode,       // the decode hook or the unit callback rejected the bytes
    cancelled,    // the caller withdrew the unit while it was in flight (cancel_unit)
};

struct UnitFailure {
    UnitRequest unit;
    FailureKind kind;
    std::string reason;  // "unit (3, 17): checksum mismatch"
};

struct ClientCallbacks {
    // Runs on the delivery thread, in arrival order. Throwing reports the unit as a decode
    // failure (on_failure), so a unit the caller could not use is never silently lost.
    std::function<void(ReceivedUnit&&)> on_unit;
    // Runs on a fetch thread or the delivery thread.
    std::function<void(const UnitFailure&)> on_failure;
    // Optional, on the delivery thread: turns verified bytes into what on_unit receives in
    // `decoded`; throwing sparkv::Error reports the unit as a decode failure.
    std::function<std::vector<uint8_t>(const UnitRequest&, std::span<const uint8_t>)> decode;
    // Optional, on a fetch thread as soon as a unit's last byte arrived.
    std::function<void(const UnitTiming&)> on_timing;
    // Optional, on a fetch thread just before a unit is requested: false skips it silently
    // (another lane has taken it since it was scheduled). Fetch threads run at once.
    std::function<bool(const UnitRequest&)> before_request;
};

struct ClientStats {
    uint64_t units_received = 0;
    uint64_t units_failed = 0;
    uint64_t bytes_received = 0;
    uint64_t connections_opened = 0;
    uint64_t retries = 0;  // requests repeated after a 5xx answer
};

class UnitClient {
  public:
    explicit UnitClient(ClientConfig config);
    ~UnitClient();  // cancels and waits
    UnitClient(const UnitClient&) = delete;
    UnitClient& operator=(const UnitClient&) = delete;

    // Fetches and validates the manifest on the client's connection; throws Error, or
    // UntrustedContext (an Error) when the trust policy or the model fingerprint refuses it.
    const Manifest& fetch_manifest(std::string_view context_id);
    const Manifest& manifest() const { return manifest_; }
    // Fetches the context's token ids (after fetch_manifest), checked against the manifest and
    // the context id (store/context_store.h parse_tokens); throws Error. Not while streaming.
    std::vector<int32_t> fetch_tokens();

    // Starts streaming the units of `schedule` (after fetch_manifest). Returns at once.
    void start(std::shared_ptr<FetchSchedule> schedule, ClientCallbacks callbacks);
    // Stops promptly, mid-unit if need be; units not yet delivered are dropped unreported.
    void cancel();
    // Withdraws one unit: if it is being downloaded, the transfer is cut (the connection is
    // reopened for the next unit); if it waits for delivery, it is dropped. Either way it is
    // reported once with FailureKind::cancelled. Returns whether the unit was in flight; a unit
    // still pending in the schedule is the schedule's business (FetchSchedule::remove).
    bool cancel_unit(int32_t t, int32_t l);
    // Waits until the schedule is closed and drained (or cancel()) and every delivery ran.
    void wait();

    ClientStats stats() const;

  private:
    // One connection and the unit it is downloading. Its fetch thread owns `http`'s requests;
    // cancel(), cancel_unit() and the caller's threads read the atomics.
    struct Connection {
        std::unique_ptr<httplib::Client> http;
        std::atomic<int64_t> current_unit{-1};  // (t << 32) | l, or -1
        std::atomic<bool> cancel_current{false};
        std::atomic<bool> in_request{false};
        std::atomic<int> socket{-1};
        std::thread thread;
    };
    std::unique_ptr<httplib::Client> make_http(Connection& connection);
    // Link accounting shared by the connections: body bytes and the time the link has been busy
    // since the last completed unit, so that concurrent bodies measure the link, not their share.
    void link_headers_arrived(double now_s);
    void link_body_ended(UnitTiming* completed, uint64_t body_bytes);

    std::string get_small_object(const std::string& key, std::string_view what);
    std::string url_path(const std::string& key) const;
    // Sleeps before retry number `retry` (1, 2, ...); false if the client was cancelled meanwhile.
    bool back_off(int retry);
    void acknowledge_now(const Connection& connection);
    void fetch_loop(Connection& connection);
    void delivery_loop();
    void fetch_unit(Connection& connection, const UnitRequest& unit);
    void report(const UnitRequest& unit, FailureKind kind, std::string reason);
    void deliver(Connection& connection, ReceivedUnit&& unit);
    // Under an enforcing trust policy: the SHA-256 check; reports and returns false on mismatch.
    bool verify_hash(ReceivedUnit& unit);

    ClientConfig config_;
    std::shared_ptr<const TrustPolicy> trust_;              // never null
    std::string link_name_;                                 // X-Sparkv-Link of every request
    std::vector<std::unique_ptr<Connection>> connections_;  // [0] also fetches small objects
    Manifest manifest_;
    bool have_manifest_ = false;
    std::shared_ptr<FetchSchedule> schedule_;
    ClientCallbacks callbacks_;

    std::atomic<bool> cancelled_{false};
    std::atomic<bool> server_gone_{false};
    std::atomic<bool> started_{false};
    std::thread delivery_thread_;

    std::mutex link_mutex_;  // guards the link accounting below
    int bodies_active_ = 0;
    double mark_s_ = 0;        // the link's busy time is counted from here...
    uint64_t mark_bytes_ = 0;  // ...and its bytes from this count of link_bytes_
    uint64_t link_bytes_ = 0;  // body bytes received on all connections

    std::mutex queue_mutex_;
    std::condition_variable queue_changed_;
    std::deque<ReceivedUnit> queue_;
    std::vector<std::pair<int32_t, int32_t>> withdrawn_;  // queued units to drop on delivery
    int fetchers_running_ = 0;                            // fetch threads that have not finished

    std::atomic<uint64_t> units_received_{0}, units_failed_{0}, bytes_received_{0},
        connections_opened_{0}, retries_{0};
};

const char* failure_kind_name(FailureKind kind);

}  // namespace sparkv
