// Helpers for the fault matrix: a storage backend that fails like a full disk, a client run that
// collects what it delivered and what it refused, and byte surgery on stored objects.
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "net/unit_client.h"
#include "store/fs_backend.h"

namespace sparkv::testing {

// A filesystem store whose Nth put (counting from 1) and every later one fail as a full disk
// fails: FilesystemBackend::put is atomic, so a failed put leaves nothing visible.
class DiskFullBackend final : public StorageBackend {
  public:
    DiskFullBackend(std::filesystem::path root, int fail_at)
        : inner_(std::move(root)), fail_at_(fail_at) {}

    bool contains(std::string_view key) const override { return inner_.contains(key); }
    std::optional<uint64_t> size(std::string_view key) const override { return inner_.size(key); }
    void put(std::string_view key, std::span<const uint8_t> bytes) override {
        if (++puts_ >= fail_at_) fail("store: cannot write {}: No space left on device", key);
        inner_.put(key, bytes);
    }
    std::vector<uint8_t> get(std::string_view key) const override { return inner_.get(key); }
    std::unique_ptr<ObjectReader> open(std::string_view key) const override {
        return inner_.open(key);
    }
    std::vector<std::string> list(std::string_view prefix) const override {
        return inner_.list(prefix);
    }
    std::vector<std::string> list_children(std::string_view prefix) const override {
        return inner_.list_children(prefix);
    }
    std::vector<ObjectInfo> list_info(std::string_view prefix) const override {
        return inner_.list_info(prefix);
    }
    void remove(std::string_view key) override { inner_.remove(key); }
    std::string describe() const override { return inner_.describe() + " (disk full)"; }

    int puts() const { return puts_; }

  private:
    FilesystemBackend inner_;
    int fail_at_;
    std::atomic<int> puts_{0};
};

struct FetchOutcome {
    std::map<std::pair<int32_t, int32_t>, std::vector<uint8_t>> delivered;
    std::vector<UnitFailure> failures;

    bool failed_with(int32_t t, int32_t l, FailureKind kind) const {
        for (const auto& f : failures)
            if (f.unit.t == t && f.unit.l == l && f.kind == kind) return true;
        return false;
    }
};

// Streams every unit of the client's manifest at `level` and collects the outcome.
inline FetchOutcome fetch_all(UnitClient& client, const std::string& level) {
    const Manifest& m = client.manifest();
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : m.units) schedule->add({u.t, u.l, level});
    schedule->close();
    FetchOutcome out;
    std::mutex mutex;
    ClientCallbacks callbacks;
    callbacks.on_unit = [&](ReceivedUnit&& unit) {
        std::lock_guard lock(mutex);
        out.delivered[{unit.unit.t, unit.unit.l}] = std::move(unit.bytes);
    };
    callbacks.on_failure = [&](const UnitFailure& f) {
        std::lock_guard lock(mutex);
        out.failures.push_back(f);
    };
    client.start(schedule, callbacks);
    client.wait();
    return out;
}

inline void flip_bit(const std::filesystem::path& file, size_t byte, int bit) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(byte));
    char c = 0;
    f.get(c);
    c = static_cast<char>(c ^ (1 << bit));
    f.seekp(static_cast<std::streamoff>(byte));
    f.put(c);
}

inline void put_text(StorageBackend& backend, const std::string& key, const std::string& text) {
    backend.put(key, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

inline std::string get_text(const StorageBackend& backend, const std::string& key) {
    const auto bytes = backend.get(key);
    return {bytes.begin(), bytes.end()};
}

}  // namespace sparkv::testing
