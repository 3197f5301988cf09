#include "store/context_store.h"

#include <cstring>
#include <ctime>
#include <map>
#include <random>

#include "common/error.h"
#include "store/content_id.h"

namespace sparkv {

namespace {

void require_context_id(std::string_view context_id) {
    if (!is_context_id(context_id))
        fail("\"{}\" is not a context id (32 lowercase hex digits)", context_id);
}

}  // namespace

std::string manifest_key(std::string_view context_id) {
    return fmt::format("contexts/{}/manifest.json", context_id);
}

std::string attempt_prefix(std::string_view context_id, std::string_view attempt) {
    return fmt::format("contexts/{}/attempts/{}", context_id, attempt);
}

std::string unit_key(std::string_view context_id, std::string_view attempt, std::string_view level,
                     int32_t t, int32_t l) {
    return fmt::format("contexts/{}/attempts/{}/units/{}/t{}_l{}.kvu", context_id, attempt, level,
                       t, l);
}

std::string tokens_key(std::string_view context_id, std::string_view attempt) {
    return fmt::format("contexts/{}/attempts/{}/tokens.i32", context_id, attempt);
}

std::string unit_key(const Manifest& manifest, std::string_view level, int32_t t, int32_t l) {
    return unit_key(manifest.context_id, manifest.attempt, level, t, l);
}

std::string tokens_key(const Manifest& manifest) {
    return tokens_key(manifest.context_id, manifest.attempt);
}

std::string new_attempt_name() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
    std::random_device random;  // the kernel's generator: distinct across processes and machines
    const uint64_t bits = (uint64_t{random()} << 32) | random();
    return fmt::format("{}-{}", stamp, hex64(bits));
}

std::string_view cache_control_for_key(std::string_view key) {
    if (key == "manifest.json" || key.ends_with("/manifest.json")) return "no-cache";
    return "public, max-age=31536000, immutable";
}

std::vector<int32_t> parse_tokens(const Manifest& manifest, std::span<const uint8_t> bytes) {
    if (bytes.size() != manifest.tokens.bytes)
        fail("context {}: the token ids are {} bytes, the manifest says {}", manifest.context_id,
             bytes.size(), manifest.tokens.bytes);
    if (object_checksum(bytes) != manifest.tokens.xxh64)
        fail("context {}: the token ids fail their checksum", manifest.context_id);
    std::vector<int32_t> tokens(bytes.size() / sizeof(int32_t));
    std::memcpy(tokens.data(), bytes.data(), tokens.size() * sizeof(int32_t));
    if (context_id(manifest.model.fingerprint, tokens, manifest.chunk_size) != manifest.context_id)
        fail("context {}: the token ids do not hash to the context id", manifest.context_id);
    return tokens;
}

ContextStore::ContextStore(std::shared_ptr<StorageBackend> backend) : backend_(std::move(backend)) {
    if (!backend_) fail("context store: no storage backend");
}

std::vector<std::string> ContextStore::list_contexts() const {
    std::vector<std::string> ids;
    for (auto& name : backend_->list_children("contexts"))
        if (is_context_id(name) && backend_->contains(manifest_key(name)))
            ids.push_back(std::move(name));
    return ids;
}

bool ContextStore::has_manifest(std::string_view context_id) const {
    return is_context_id(context_id) && backend_->contains(manifest_key(context_id));
}

Manifest ContextStore::read_manifest(std::string_view context_id) const {
    require_context_id(context_id);
    const std::string key = manifest_key(context_id);
    if (!backend_->contains(key))
        fail("context {} is not in the store {}", context_id, backend_->describe());
    const auto bytes = backend_->get(key);
    Manifest m;
    try {
        m = Manifest::parse(
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    } catch (const Error& e) {
        fail("{} in {}: {}", key, backend_->describe(), e.what());
    }
    if (m.context_id != context_id)
        fail("{} describes context {}, not {}", key, m.context_id, context_id);
    return m;
}

bool ContextStore::is_complete(std::string_view context_id, Check check) const {
    if (!has_manifest(context_id)) return false;
    Manifest m;
    try {
        m = read_manifest(context_id);
    } catch (const Error&) {
        return false;
    }
    // One listing of the attempt instead of a request per object (an object store answers a
    // listing of 1000 keys as fast as one HEAD).
    std::map<std::string, uint64_t, std::less<>> sizes;
    for (auto& info : backend_->list_info(attempt_prefix(context_id, m.attempt)))
        sizes.emplace(std::move(info.key), info.size);
    const auto has = [&](const std::string& key, uint64_t bytes) {
        const auto it = sizes.find(key);
        return it != sizes.end() && it->second == bytes;
    };
    if (!has(tokens_key(m), m.tokens.bytes)) return false;
    for (const auto& u : m.units) {
        for (size_t k = 0; k < m.levels.size(); ++k) {
            const std::string key = unit_key(m, m.levels[k], u.t, u.l);
            if (!has(key, u.objects[k].bytes)) return false;
            if (check == Check::sizes) continue;
            auto reader = backend_->open(key);
            if (!reader || reader->size() != u.objects[k].bytes) return false;
            std::vector<uint8_t> bytes(reader->size());
            if (reader->read_at(0, bytes) != bytes.size()) return false;
            if (object_checksum(bytes) != u.objects[k].xxh64) return false;
        }
    }
    return true;
}

std::vector<AttemptInfo> ContextStore::list_attempts(std::string_view context_id) const {
    require_context_id(context_id);
    const std::string base = fmt::format("contexts/{}/attempts/", context_id);
    std::vector<AttemptInfo> attempts;
    for (const auto& info : backend_->list_info(base.substr(0, base.size() - 1))) {
        if (!info.key.starts_with(base)) continue;
        const std::string_view rest = std::string_view(info.key).substr(base.size());
        const std::string_view name = rest.substr(0, rest.find('/'));
        if (attempts.empty() || attempts.back().name != name)
            attempts.push_back({std::string(name), 0, 0, {}});
        AttemptInfo& a = attempts.back();
        ++a.objects;
        a.bytes += info.size;
        a.newest = std::max(a.newest, info.modified);
    }
    return attempts;  // the listing is sorted by key, so each attempt's objects are adjacent
}

std::vector<uint8_t> ContextStore::read_unit(const Manifest& manifest, std::string_view level,
                                             int32_t t, int32_t l) const {
    manifest.object(t, l, level);  // throws for a unit or level the context does not have
    return backend_->get(unit_key(manifest, level, t, l));
}

std::vector<int32_t> ContextStore::read_tokens(const Manifest& manifest) const {
    const std::string key = tokens_key(manifest);
    if (!backend_->contains(key))
        fail("context {} has no token ids in {}", manifest.context_id, backend_->describe());
    return parse_tokens(manifest, backend_->get(key));
}

void ContextStore::remove_context(std::string_view context_id) {
    require_context_id(context_id);
    backend_->remove(manifest_key(context_id));
    for (const auto& key : backend_->list(fmt::format("contexts/{}", context_id)))
        backend_->remove(key);
}

ContextWriter::ContextWriter(ContextStore& store, Manifest skeleton)
    : store_(store), manifest_(std::move(skeleton)) {
    require_context_id(manifest_.context_id);
    if (manifest_.attempt.empty()) manifest_.attempt = new_attempt_name();
    if (!is_attempt_name(manifest_.attempt))
        fail("attempt name \"{}\" is not [A-Za-z0-9-]{{1,64}}", manifest_.attempt);
    for (const auto& level : manifest_.levels)
        if (!is_level_name(level)) fail("level name \"{}\" is not [a-z0-9_-]{{1,32}}", level);
}

void ContextWriter::put_unit(int32_t t, int32_t l, std::string_view level,
                             std::span<const uint8_t> bytes) {
    if (bytes.empty()) fail("unit ({}, {}) at level {}: empty object", t, l, level);
    const auto index = static_cast<size_t>(manifest_.require_level(level));
    manifest_.unit(t, l);  // throws for a unit outside the context
    const UnitObject object{bytes.size(), object_checksum(bytes)};
    store_.backend().put(unit_key(manifest_, level, t, l), bytes);
    std::lock_guard lock(mutex_);
    if (committed_) fail("context {} is already committed", manifest_.context_id);
    manifest_.unit(t, l).objects[index] = object;
}

void ContextWriter::put_tokens(std::span<const int32_t> tokens) {
    if (static_cast<int64_t>(tokens.size()) != manifest_.n_tokens)
        fail("context {}: {} token ids given, the context has {}", manifest_.context_id,
             tokens.size(), manifest_.n_tokens);
    std::vector<uint8_t> bytes(tokens.size_bytes());
    std::memcpy(bytes.data(), tokens.data(), bytes.size());
    const UnitObject object{bytes.size(), object_checksum(bytes)};
    store_.backend().put(tokens_key(manifest_), bytes);
    std::lock_guard lock(mutex_);
    if (committed_) fail("context {} is already committed", manifest_.context_id);
    manifest_.tokens = object;
}

void ContextWriter::set_prompt_format(std::string format) {
    std::lock_guard lock(mutex_);
    if (committed_) fail("context {} is already committed", manifest_.context_id);
    manifest_.prompt_format = std::move(format);
}

void ContextWriter::verify_objects() const {
    std::map<std::string, uint64_t, std::less<>> sizes;
    for (auto& info :
         store_.backend().list_info(attempt_prefix(manifest_.context_id, manifest_.attempt)))
        sizes.emplace(std::move(info.key), info.size);
    const auto check = [&](const std::string& key, uint64_t bytes, std::string_view what) {
        const auto it = sizes.find(key);
        if (it == sizes.end())
            fail(
                "context {}: {} was written but is not in {} (removed by a garbage collection "
                "that took this attempt for a dead one?); ingest again",
                manifest_.context_id, what, store_.backend().describe());
        if (it->second != bytes)
            fail("context {}: {} has {} bytes in the store, {} were written", manifest_.context_id,
                 what, it->second, bytes);
    };
    check(tokens_key(manifest_), manifest_.tokens.bytes, "the token ids object");
    for (const auto& u : manifest_.units)
        for (size_t k = 0; k < manifest_.levels.size(); ++k)
            check(unit_key(manifest_, manifest_.levels[k], u.t, u.l), u.objects[k].bytes,
                  fmt::format("unit ({}, {}) at level {}", u.t, u.l, manifest_.levels[k]));
}

const Manifest& ContextWriter::commit() {
    std::lock_guard lock(mutex_);
    if (committed_) return manifest_;
    manifest_.validate();  // names the first unit/level without an object
    verify_objects();
    const std::string text = manifest_.dump();
    store_.backend().put(manifest_key(manifest_.context_id),
                         std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    committed_ = true;
    return manifest_;
}

}  // namespace sparkv
