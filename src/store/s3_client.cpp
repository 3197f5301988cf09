#include "store/s3_client.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "common/error.h"
#include "store/s3_xml.h"

namespace sparkv {

namespace {

void init_curl_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) fail("cannot initialise libcurl");
    });
}

bool debug_enabled() {
    static const bool enabled = [] {
        const char* v = std::getenv("SPARKV_S3_DEBUG");
        return v && std::string_view(v) == "1";
    }();
    return enabled;
}

// curl errors that another attempt may not meet: the network or the server, not the request.
bool curl_error_is_transient(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
            return true;
        default:
            return false;
    }
}

// Some stores (Garage among them) write responses without TCP_NODELAY: Nagle holds a small
// segment (the body after the headers, the last piece of a body) until what precedes it is
// acknowledged, and on a reused connection Linux delays that ACK by up to 40 ms. Acknowledging
// at once whenever data arrives removes the stall (Garage 2.5 over loopback: 44 -> 1 ms per GET).
// curl 7.88 does not tell a callback which socket a transfer uses, so the handle remembers the
// socket of its connection when curl opens it.
int remember_socket(void* slot, curl_socket_t socket, curlsocktype) {
    *static_cast<int*>(slot) = socket;
    return CURL_SOCKOPT_OK;
}

size_t on_header(char*, size_t size, size_t count, void* slot) {
    const int one = 1;
    const int socket = *static_cast<int*>(slot);
    if (socket >= 0) setsockopt(socket, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    return size * count;
}

struct BodySink {
    std::vector<uint8_t>* body;
    const int* socket;
};

size_t append_body(char* data, size_t size, size_t count, void* user) {
    auto* sink = static_cast<BodySink*>(user);
    // The same for the body's last, partial segment (an odd segment's ACK is delayed too).
    on_header(nullptr, 0, 0, const_cast<int*>(sink->socket));
    auto* body = sink->body;
    body->insert(body->end(), reinterpret_cast<uint8_t*>(data),
                 reinterpret_cast<uint8_t*>(data) + size * count);
    return size * count;
}

std::string header_value(CURL* handle, const char* name) {
    curl_header* h = nullptr;
    if (curl_easy_header(handle, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h) return {};
    return h->value;
}

struct HeaderList {
    curl_slist* list = nullptr;
    ~HeaderList() { curl_slist_free_all(list); }
    void add(const std::string& line) {
        curl_slist* next = curl_slist_append(list, line.c_str());
        if (!next) fail("out of memory building request headers");
        list = next;
    }
};

}  // namespace

void S3Config::validate() const {
    if (bucket.empty()) fail("S3: no bucket given");
    if (bucket.size() < 3 || bucket.size() > 63)
        fail("S3: bucket name \"{}\" must be 3 to 63 characters", bucket);
    for (char c : bucket)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            fail("S3: bucket name \"{}\" may hold only a-z, 0-9, '-' and '.'", bucket);
    if (access_key_id.empty() || secret_access_key.empty())
        fail(
            "S3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or put them in "
            "the [default] profile of ~/.aws/credentials)");
    if (region.empty()) fail("S3: no region: set AWS_REGION");
    for (char c : region)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            fail("S3: region \"{}\" may hold only a-z, 0-9, '-' and '_'", region);
    if (!endpoint.empty() && !endpoint.starts_with("http://") && !endpoint.starts_with("https://"))
        fail("S3: endpoint \"{}\" must start with http:// or https://", endpoint);
    if (max_attempts < 1) fail("S3: max_attempts must be at least 1");
    if (!(connect_timeout_s > 0) || !(stall_timeout_s >= 1))
        fail("S3: connect timeout must be positive and the stall timeout at least 1 s");
    if (part_size < (uint64_t{5} << 20) || multipart_threshold < part_size)
        fail("S3: parts must be at least 5 MiB and the multipart threshold at least one part");
}

std::string S3Response::error_text() const {
    if (const auto error = parse_s3_error(text()))
        return fmt::format("{} {}: {}", status, error->code, error->message);
    std::string start(text().substr(0, 200));
    for (char& c : start)
        if (c == '\n' || c == '\r') c = ' ';
    return start.empty() ? fmt::format("HTTP {}", status) : fmt::format("{} {}", status, start);
}

std::string s3_uri_encode(std::string_view text, bool keep_slash) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::string s3_canonical_query(std::vector<std::pair<std::string, std::string>> query) {
    for (auto& [name, value] : query) {
        name = s3_uri_encode(name, false);
        value = s3_uri_encode(value, false);
    }
    std::sort(query.begin(), query.end());
    std::string out;
    for (const auto& [name, value] : query) {
        if (!out.empty()) out += '&';
        out += name;
        out += '=';
        out += value;
    }
    return out;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        fail("SHA-256 failed");
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
    return hex;
}

bool s3_status_is_transient(long status) {
    return status == 500 || status == 502 || status == 503 || status == 504 || status == 429;
}

// Easy handles are reused (each keeps its connections alive); one per concurrent request.
struct S3Client::HandlePool {
    struct Handle {
        CURL* curl = nullptr;
        int socket = -1;  // of the handle's connection (remember_socket)
    };
    std::mutex mutex;
    std::vector<std::unique_ptr<Handle>> idle;

    ~HandlePool() {
        for (auto& h : idle) curl_easy_cleanup(h->curl);
    }
    std::unique_ptr<Handle> take() {
        {
            std::lock_guard lock(mutex);
            if (!idle.empty()) {
                auto h = std::move(idle.back());
                idle.pop_back();
                return h;
            }
        }
        auto h = std::make_unique<Handle>();
        h->curl = curl_easy_init();
        if (!h->curl) fail("cannot create a libcurl handle");
        return h;
    }
    void give(std::unique_ptr<Handle> h) {
        curl_easy_reset(h->curl);  // keeps the handle's open connections
        std::lock_guard lock(mutex);
        idle.push_back(std::move(h));
    }
};

S3Client::S3Client(S3Config config)
    : config_(std::move(config)), handles_(std::make_unique<HandlePool>()) {
    config_.validate();
    while (config_.endpoint.ends_with('/')) config_.endpoint.pop_back();
    init_curl_once();
}

S3Client::~S3Client() = default;

std::string S3Client::url(std::string_view key) const {
    const std::string path =
        key.empty() ? std::string() : fmt::format("/{}", s3_uri_encode(key, true));
    if (config_.endpoint.empty())
        return fmt::format("https://{}.s3.{}.amazonaws.com{}", config_.bucket, config_.region,
                           path.empty() ? "/" : path);
    return fmt::format("{}/{}{}", config_.endpoint, config_.bucket, path);
}

S3Response S3Client::send(const S3Request& request) const {
    const std::string query = s3_canonical_query(request.query);
    const std::string target =
        query.empty() ? url(request.key) : fmt::format("{}?{}", url(request.key), query);
    // GET, HEAD and DELETE carry no payload; its hash is that of the empty string.
    const std::string payload_hash = sha256_hex(request.body);
    const std::string sigv4 = fmt::format("aws:amz:{}:s3", config_.region);
    const bool has_body = request.method == "PUT" || request.method == "POST";

    thread_local std::minstd_rand jitter(std::random_device{}());
    std::string last_error;
    S3Response response;
    for (int attempt = 1;; ++attempt) {
        response = S3Response{};
        response.attempts = attempt;
        auto pooled = handles_->take();
        CURL* h = pooled->curl;
        HeaderList headers;
        headers.add("x-amz-content-sha256: " + payload_hash);
        if (!config_.session_token.empty())
            headers.add("x-amz-security-token: " + config_.session_token);
        bool has_content_type = false;
        for (const auto& [name, value] : request.headers) {
            headers.add(name + ": " + value);
            if (name.size() == 12 && strncasecmp(name.c_str(), "content-type", 12) == 0)
                has_content_type = true;
        }
        if (has_body && !has_content_type) headers.add("Content-Type: application/octet-stream");

        char error_buffer[CURL_ERROR_SIZE] = {0};
        curl_easy_setopt(h, CURLOPT_URL, target.c_str());
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
        curl_easy_setopt(h, CURLOPT_USERNAME, config_.access_key_id.c_str());
        curl_easy_setopt(h, CURLOPT_PASSWORD, config_.secret_access_key.c_str());
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(config_.connect_timeout_s * 1000));
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_.stall_timeout_s));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &append_body);
        BodySink sink{&response.body, &pooled->socket};
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
        curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, &remember_socket);
        curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, &pooled->socket);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &pooled->socket);
        if (request.method == "GET") {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        } else if (request.method == "HEAD") {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (has_body) {
            // The body is sent from memory (POSTFIELDS), which is also what lets curl sign
            // requests; CUSTOMREQUEST turns the POST into the method asked for.
            curl_easy_setopt(
                h, CURLOPT_POSTFIELDS,
                request.body.empty() ? "" : reinterpret_cast<const char*>(request.body.data()));
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(request.body.size()));
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
        } else if (request.method == "DELETE") {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        } else {
            handles_->give(std::move(pooled));
            fail("S3: unsupported method {}", request.method);
        }

        const CURLcode code = curl_easy_perform(h);
        if (code == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
            curl_off_t length = -1;
            curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
            if (length >= 0) response.content_length = static_cast<uint64_t>(length);
            response.etag = header_value(h, "ETag");
            response.content_range = header_value(h, "Content-Range");
        }
        handles_->give(std::move(pooled));
        if (debug_enabled())
            std::fprintf(stderr, "s3: %s %s -> %ld%s%s (attempt %d)\n", request.method.c_str(),
                         target.c_str(), response.status, code == CURLE_OK ? "" : " curl: ",
                         code == CURLE_OK ? "" : curl_easy_strerror(code), attempt);

        const bool transient = code != CURLE_OK ? curl_error_is_transient(code)
                                                : s3_status_is_transient(response.status);
        if (!transient) {
            if (code != CURLE_OK)
                fail("S3 {} {}: {}", request.method, target,
                     error_buffer[0] ? error_buffer : curl_easy_strerror(code));
            return response;
        }
        last_error = code != CURLE_OK
                         ? std::string(error_buffer[0] ? error_buffer : curl_easy_strerror(code))
                         : response.error_text();
        if (attempt >= config_.max_attempts) break;
        const double cap = std::min(config_.backoff_max_s,
                                    config_.backoff_initial_s * std::ldexp(1.0, attempt - 1));
        const double wait = std::uniform_real_distribution<double>(0, cap)(jitter);
        std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    if (response.status != 0) return response;  // a transient status, after the last attempt
    fail("S3 {} {}: no answer after {} attempts: {}", request.method, target, config_.max_attempts,
         last_error);
}

}  // namespace sparkv
