#include "store/context_store.h"

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

std::string unit_key(std::string_view context_id, std::string_view level, int32_t t, int32_t l) {
    return fmt::format("contexts/{}/units/{}/t{}_l{}.kvu", context_id, level, t, l);
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
    for (const auto& u : m.units) {
        for (size_t k = 0; k < m.levels.size(); ++k) {
            const std::string key = unit_key(context_id, m.levels[k], u.t, u.l);
            if (check == Check::sizes) {
                if (backend_->size(key) != u.objects[k].bytes) return false;
                continue;
            }
            auto reader = backend_->open(key);
            if (!reader || reader->size() != u.objects[k].bytes) return false;
            std::vector<uint8_t> bytes(reader->size());
            if (reader->read_at(0, bytes) != bytes.size()) return false;
            if (object_checksum(bytes) != u.objects[k].xxh64) return false;
        }
    }
    return true;
}

std::vector<uint8_t> ContextStore::read_unit(std::string_view context_id, std::string_view level,
                                             int32_t t, int32_t l) const {
    require_context_id(context_id);
    return backend_->get(unit_key(context_id, level, t, l));
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
    for (const auto& level : manifest_.levels)
        if (!is_level_name(level)) fail("level name \"{}\" is not [a-z0-9_-]{{1,32}}", level);
}

void ContextWriter::put_unit(int32_t t, int32_t l, std::string_view level,
                             std::span<const uint8_t> bytes) {
    if (bytes.empty()) fail("unit ({}, {}) at level {}: empty object", t, l, level);
    const auto index = static_cast<size_t>(manifest_.require_level(level));
    manifest_.unit(t, l);  // throws for a unit outside the context
    const UnitObject object{bytes.size(), object_checksum(bytes)};
    store_.backend().put(unit_key(manifest_.context_id, level, t, l), bytes);
    std::lock_guard lock(mutex_);
    if (committed_) fail("context {} is already committed", manifest_.context_id);
    manifest_.unit(t, l).objects[index] = object;
}

void ContextWriter::set_active_blocks(int32_t t, int32_t l, int64_t active_blocks) {
    std::lock_guard lock(mutex_);
    if (committed_) fail("context {} is already committed", manifest_.context_id);
    manifest_.unit(t, l).active_blocks = active_blocks;
}

const Manifest& ContextWriter::commit() {
    std::lock_guard lock(mutex_);
    if (committed_) return manifest_;
    manifest_.validate();  // names the first unit/level without an object
    const std::string text = manifest_.dump();
    store_.backend().put(manifest_key(manifest_.context_id),
                         std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    committed_ = true;
    return manifest_;
}

}  // namespace sparkv
