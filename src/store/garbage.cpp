#include "store/garbage.h"

#include <map>

#include "common/error.h"
#include "store/content_id.h"

namespace sparkv {

namespace {

constexpr std::string_view kOutside = "(outside any attempt)";

struct Group {
    std::vector<std::string> keys;
    uint64_t bytes = 0;
    std::chrono::system_clock::time_point newest;
};

// The attempt the context's manifest names now: "" without a manifest; nullopt if unreadable.
std::optional<std::string> committed_attempt(const ContextStore& store, const std::string& id) {
    if (!store.has_manifest(id)) return std::string();
    try {
        return store.read_manifest(id).attempt;
    } catch (const Error&) {
        return std::nullopt;
    }
}

}  // namespace

size_t GcReport::objects_removed() const {
    size_t n = 0;
    for (const auto& r : removed) n += r.objects;
    return n;
}

uint64_t GcReport::bytes_removed() const {
    uint64_t n = 0;
    for (const auto& r : removed) n += r.bytes;
    return n;
}

GcReport collect_garbage(ContextStore& store, const GcOptions& options) {
    StorageBackend& backend = store.backend();
    GcReport report;
    const auto now = std::chrono::system_clock::now();
    for (const auto& id : backend.list_children("contexts")) {
        if (!is_context_id(id)) continue;
        ++report.contexts;
        const std::string base = fmt::format("contexts/{}/", id);
        const std::string manifest = manifest_key(id);
        std::map<std::string, Group, std::less<>> groups;
        std::optional<std::chrono::system_clock::time_point> manifest_written;
        for (auto& info : backend.list_info(base.substr(0, base.size() - 1))) {
            if (info.key == manifest) {
                manifest_written = info.modified;
                continue;
            }
            std::string_view rest = std::string_view(info.key).substr(base.size());
            std::string name(kOutside);
            if (rest.starts_with("attempts/")) {
                rest.remove_prefix(9);
                if (rest.find('/') != std::string_view::npos) name = rest.substr(0, rest.find('/'));
            }
            Group& g = groups[name];
            g.keys.push_back(std::move(info.key));
            g.bytes += info.size;
            g.newest = std::max(g.newest, info.modified);
        }
        const auto referenced = committed_attempt(store, id);
        if (!referenced) {
            ++report.unreadable;
            continue;
        }
        for (auto& [name, group] : groups) {
            if (name == *referenced) continue;
            auto newest = group.newest;
            if (manifest_written) newest = std::max(newest, *manifest_written);
            if (now - newest < options.min_age) {
                ++report.kept_attempts;
                continue;
            }
            // A worker that was paused may have committed this very attempt since the listing.
            const auto now_referenced = committed_attempt(store, id);
            if (!now_referenced || *now_referenced == name) continue;
            if (!options.dry_run)
                for (const auto& key : group.keys) backend.remove(key);
            report.removed.push_back(
                {id, name, group.keys.size(), group.bytes, !referenced->empty()});
        }
    }
    if (!options.dry_run)
        report.incomplete_writes = backend.remove_incomplete_writes(options.min_age);
    return report;
}

}  // namespace sparkv
