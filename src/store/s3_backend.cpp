#include "store/s3_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>

#include "common/error.h"
#include "store/context_store.h"
#include "store/s3_xml.h"

namespace sparkv {

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

Headers object_headers(std::string_view key) {
    return {
        {"Cache-Control", std::string(cache_control_for_key(key))},
        {"Content-Type", key.ends_with(".json") ? "application/json" : "application/octet-stream"}};
}

// "bytes 0-99/1234" -> 1234.
std::optional<uint64_t> total_from_content_range(std::string_view range) {
    const size_t slash = range.rfind('/');
    if (slash == std::string_view::npos || slash + 1 >= range.size()) return std::nullopt;
    uint64_t total = 0;
    for (char c : range.substr(slash + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        total = total * 10 + static_cast<uint64_t>(c - '0');
    }
    return total;
}

uint64_t parse_size(const std::string& text, std::string_view what) {
    uint64_t v = 0;
    if (text.empty()) fail("S3 listing: {} has no size", what);
    for (char c : text) {
        if (c < '0' || c > '9') fail("S3 listing: {} has size \"{}\"", what, text);
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

XmlElement parse_response(const S3Response& response, std::string_view root,
                          std::string_view what) {
    XmlElement doc;
    try {
        doc = parse_xml(response.text());
    } catch (const Error& e) {
        fail("S3 {}: unreadable answer: {}", what, e.what());
    }
    if (doc.name != root) fail("S3 {}: expected <{}>, got <{}>", what, root, doc.name);
    return doc;
}

class S3ObjectReader final : public ObjectReader {
  public:
    S3ObjectReader(const S3Client& client, std::string object, uint64_t size, std::string etag,
                   std::vector<uint8_t> window)
        : client_(client),
          object_(std::move(object)),
          size_(size),
          etag_(std::move(etag)),
          window_(std::move(window)) {}

    uint64_t size() const override { return size_; }

    size_t read_at(uint64_t offset, std::span<uint8_t> dst) override {
        size_t done = 0;
        while (done < dst.size() && offset + done < size_) {
            const uint64_t at = offset + done;
            if (at < window_offset_ || at >= window_offset_ + window_.size()) fetch_window(at);
            const uint64_t in_window = at - window_offset_;
            const size_t n = static_cast<size_t>(
                std::min<uint64_t>(dst.size() - done, window_.size() - in_window));
            std::memcpy(dst.data() + done, window_.data() + in_window, n);
            done += n;
        }
        return done;
    }

  private:
    void fetch_window(uint64_t at) {
        const uint64_t last = std::min(size_, at + S3Backend::kReadWindow) - 1;
        S3Request request;
        request.key = object_;
        request.headers = {{"Range", fmt::format("bytes={}-{}", at, last)}};
        if (!etag_.empty()) request.headers.emplace_back("If-Match", etag_);
        S3Response response = client_.send(request);
        if (response.status == 412) fail("S3 object {} changed while it was being read", object_);
        if (response.status != 206 || response.body.size() != last - at + 1)
            fail("S3 GET {} bytes {}-{}: {}", object_, at, last, response.error_text());
        window_ = std::move(response.body);
        window_offset_ = at;
    }

    const S3Client& client_;
    std::string object_;
    uint64_t size_;
    std::string etag_;
    std::vector<uint8_t> window_;
    uint64_t window_offset_ = 0;
};

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_s3_time(std::string_view text) {
    int year, month, day, hour, minute, second, consumed = 0;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                    &second, &consumed) != 6)
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

S3Backend::S3Backend(S3Config config, std::string prefix)
    : client_(std::move(config)), prefix_(std::move(prefix)) {
    if (!prefix_.empty()) validate_key(prefix_);
}

std::string S3Backend::object_key(std::string_view key) const {
    validate_key(key);
    return prefix_.empty() ? std::string(key) : prefix_ + "/" + std::string(key);
}

std::string S3Backend::store_key(std::string_view object) const {
    if (!prefix_.empty()) {
        if (object.size() <= prefix_.size() + 1 || !object.starts_with(prefix_) ||
            object[prefix_.size()] != '/')
            return {};
        object.remove_prefix(prefix_.size() + 1);
    }
    return is_valid_key(object) ? std::string(object) : std::string();
}

bool S3Backend::contains(std::string_view key) const {
    return size(key).has_value();
}

std::optional<uint64_t> S3Backend::size(std::string_view key) const {
    S3Request request;
    request.method = "HEAD";
    request.key = object_key(key);
    const S3Response response = client_.send(request);
    if (response.status == 404) return std::nullopt;
    if (response.status != 200 || !response.content_length)
        fail("S3 HEAD {}: {}", request.key, response.error_text());
    return response.content_length;
}

void S3Backend::put(std::string_view key, std::span<const uint8_t> bytes) {
    const std::string object = object_key(key);
    if (bytes.size() >= client_.config().multipart_threshold)
        return put_multipart(object, bytes, object_headers(key));
    S3Request request;
    request.method = "PUT";
    request.key = object;
    request.headers = object_headers(key);
    request.body = bytes;
    const S3Response response = client_.send(request);
    if (response.status != 200) fail("S3 PUT {}: {}", object, response.error_text());
}

void S3Backend::put_multipart(const std::string& object, std::span<const uint8_t> bytes,
                              const Headers& headers) {
    S3Request start;
    start.method = "POST";
    start.key = object;
    start.query = {{"uploads", ""}};
    start.headers = headers;
    const S3Response started = client_.send(start);
    if (started.status != 200)
        fail("S3 multipart upload of {}: cannot start: {}", object, started.error_text());
    const std::string upload_id =
        parse_response(started, "InitiateMultipartUploadResult", "multipart start")
            .child_text("UploadId");
    if (upload_id.empty()) fail("S3 multipart upload of {}: no upload id", object);

    const auto abort_upload = [&] {
        S3Request abort;
        abort.method = "DELETE";
        abort.key = object;
        abort.query = {{"uploadId", upload_id}};
        try {
            client_.send(abort);
        } catch (const Error&) {
            // remove_incomplete_writes() collects it later
        }
    };
    try {
        std::string parts_xml;
        const uint64_t part_size = client_.config().part_size;
        int number = 1;
        for (uint64_t offset = 0; offset < bytes.size(); offset += part_size, ++number) {
            S3Request part;
            part.method = "PUT";
            part.key = object;
            part.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
            part.body = bytes.subspan(offset, std::min<uint64_t>(part_size, bytes.size() - offset));
            const S3Response sent = client_.send(part);
            if (sent.status != 200 || sent.etag.empty())
                fail("S3 multipart upload of {}: part {}: {}", object, number, sent.error_text());
            parts_xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                                     number, xml_escape(sent.etag));
        }
        const std::string body =
            "<CompleteMultipartUpload>" + parts_xml + "</CompleteMultipartUpload>";
        S3Request complete;
        complete.method = "POST";
        complete.key = object;
        complete.query = {{"uploadId", upload_id}};
        complete.headers = {{"Content-Type", "application/xml"}};
        complete.body = std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size());
        const S3Response done = client_.send(complete);
        // A retried completion whose first try went through finds the upload gone: the object
        // tells whether it was completed.
        if (done.status == 404 && done.attempts > 1 && size_of_object(object) == bytes.size())
            return;
        // S3 may answer 200 and still report an error in the body.
        if (done.status != 200 || parse_s3_error(done.text()))
            fail("S3 multipart upload of {}: cannot complete: {}", object, done.error_text());
    } catch (...) {
        abort_upload();
        throw;
    }
}

std::optional<uint64_t> S3Backend::size_of_object(const std::string& object) const {
    S3Request request;
    request.method = "HEAD";
    request.key = object;
    const S3Response response = client_.send(request);
    if (response.status != 200) return std::nullopt;
    return response.content_length;
}

std::vector<uint8_t> S3Backend::get(std::string_view key) const {
    S3Request request;
    request.key = object_key(key);
    S3Response response = client_.send(request);
    if (response.status == 404) fail("store: object {} not found in {}", key, describe());
    if (response.status != 200) fail("S3 GET {}: {}", request.key, response.error_text());
    return std::move(response.body);
}

std::unique_ptr<ObjectReader> S3Backend::open(std::string_view key) const {
    S3Request request;
    request.key = object_key(key);
    request.headers = {{"Range", fmt::format("bytes=0-{}", kReadWindow - 1)}};
    S3Response response = client_.send(request);
    if (response.status == 404) return nullptr;
    uint64_t total = 0;
    if (response.status == 206) {
        const auto parsed = total_from_content_range(response.content_range);
        if (!parsed)
            fail("S3 GET {}: unreadable Content-Range \"{}\"", request.key, response.content_range);
        total = *parsed;
    } else if (response.status == 200) {
        total = response.body.size();  // a store that ignores ranges sends the whole object
    } else if (response.status == 416) {
        // No byte of an empty object can be asked for; make sure it is one.
        if (size(key) != 0) fail("S3 GET {}: {}", request.key, response.error_text());
        response.body.clear();
    } else {
        fail("S3 GET {}: {}", request.key, response.error_text());
    }
    return std::make_unique<S3ObjectReader>(client_, request.key, total, response.etag,
                                            std::move(response.body));
}

void S3Backend::list_pages(const std::string& object_prefix, bool delimited,
                           const std::function<void(const XmlElement&)>& on_page) const {
    std::string token;
    for (int page = 0;; ++page) {
        S3Request request;
        request.query = {{"list-type", "2"}, {"prefix", object_prefix}};
        if (delimited) request.query.emplace_back("delimiter", "/");
        if (!token.empty()) request.query.emplace_back("continuation-token", token);
        const S3Response response = client_.send(request);
        if (response.status != 200)
            fail("S3 listing of {} under \"{}\": {}", client_.config().bucket, object_prefix,
                 response.error_text());
        const XmlElement doc = parse_response(response, "ListBucketResult", "listing");
        on_page(doc);
        if (doc.child_text("IsTruncated") != "true") return;
        token = doc.child_text("NextContinuationToken");
        if (token.empty()) fail("S3 listing: truncated page without a continuation token");
    }
}

std::vector<ObjectInfo> S3Backend::list_info(std::string_view prefix) const {
    const std::string base = prefix.empty() ? (prefix_.empty() ? std::string() : prefix_ + "/")
                                            : object_key(prefix) + "/";
    std::vector<ObjectInfo> objects;
    list_pages(base, false, [&](const XmlElement& doc) {
        for (const XmlElement* entry : doc.children_named("Contents")) {
            std::string key = store_key(entry->child_text("Key"));
            if (key.empty()) continue;  // not a store object (another tool's, or a bad name)
            const auto modified = parse_s3_time(entry->child_text("LastModified"));
            objects.push_back({std::move(key), parse_size(entry->child_text("Size"), "an object"),
                               modified.value_or(std::chrono::system_clock::time_point{})});
        }
    });
    std::sort(objects.begin(), objects.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return objects;
}

std::vector<std::string> S3Backend::list(std::string_view prefix) const {
    std::vector<std::string> keys;
    for (auto& info : list_info(prefix)) keys.push_back(std::move(info.key));
    return keys;
}

std::vector<std::string> S3Backend::list_children(std::string_view prefix) const {
    const std::string base = prefix.empty() ? (prefix_.empty() ? std::string() : prefix_ + "/")
                                            : object_key(prefix) + "/";
    std::vector<std::string> names;
    const auto add = [&](std::string_view object) {
        if (!object.starts_with(base)) return;
        object.remove_prefix(base.size());
        if (object.ends_with('/')) object.remove_suffix(1);
        if (!object.empty() && object.find('/') == std::string_view::npos && is_valid_key(object))
            names.emplace_back(object);
    };
    list_pages(base, true, [&](const XmlElement& doc) {
        for (const XmlElement* p : doc.children_named("CommonPrefixes"))
            add(p->child_text("Prefix"));
        for (const XmlElement* c : doc.children_named("Contents")) add(c->child_text("Key"));
    });
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

void S3Backend::remove(std::string_view key) {
    S3Request request;
    request.method = "DELETE";
    request.key = object_key(key);
    const S3Response response = client_.send(request);
    if (response.status != 204 && response.status != 200 && response.status != 404)
        fail("S3 DELETE {}: {}", request.key, response.error_text());
}

size_t S3Backend::remove_incomplete_writes(std::chrono::seconds min_age) {
    const std::string base = prefix_.empty() ? std::string() : prefix_ + "/";
    const auto now = std::chrono::system_clock::now();
    size_t removed = 0;
    std::string key_marker, upload_marker;
    for (;;) {
        S3Request request;
        request.query = {{"uploads", ""}, {"prefix", base}};
        if (!key_marker.empty()) request.query.emplace_back("key-marker", key_marker);
        if (!upload_marker.empty()) request.query.emplace_back("upload-id-marker", upload_marker);
        const S3Response response = client_.send(request);
        if (response.status != 200)
            fail("S3 listing of unfinished uploads: {}", response.error_text());
        const XmlElement doc =
            parse_response(response, "ListMultipartUploadsResult", "listing of uploads");
        for (const XmlElement* upload : doc.children_named("Upload")) {
            const auto started = parse_s3_time(upload->child_text("Initiated"));
            if (!started || now - *started < min_age) continue;
            S3Request abort;
            abort.method = "DELETE";
            abort.key = upload->child_text("Key");
            abort.query = {{"uploadId", upload->child_text("UploadId")}};
            const S3Response aborted = client_.send(abort);
            if (aborted.status == 204 || aborted.status == 200) ++removed;
        }
        if (doc.child_text("IsTruncated") != "true") return removed;
        key_marker = doc.child_text("NextKeyMarker");
        upload_marker = doc.child_text("NextUploadIdMarker");
        if (key_marker.empty() && upload_marker.empty()) return removed;
    }
}

std::string S3Backend::describe() const {
    const auto& c = client_.config();
    return fmt::format("s3://{}/{} ({})", c.bucket, prefix_,
                       c.endpoint.empty() ? "AWS " + c.region : c.endpoint);
}

}  // namespace sparkv
