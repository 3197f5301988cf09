#include "cloud/ingest_batch.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/timer.h"
#include "store/content_id.h"

namespace sparkv {

namespace {

struct Pending {
    size_t index;
    std::optional<std::chrono::steady_clock::time_point> deferred_since;
};

std::string read_document(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read document {}", path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// Whether an uncommitted attempt of the context was written to within `window`.
bool another_worker_is_writing(const ContextStore& store, const std::string& context_id,
                               std::chrono::seconds window) {
    const auto now = std::chrono::system_clock::now();
    for (const auto& attempt : store.list_attempts(context_id))
        if (now - attempt.newest < window) return true;
    return false;
}

}  // namespace

const char* batch_status_name(BatchItem::Status status) {
    switch (status) {
        case BatchItem::Status::ingested:
            return "ingested";
        case BatchItem::Status::already_present:
            return "already_present";
        case BatchItem::Status::failed:
            return "failed";
    }
    return "unknown";
}

std::vector<std::string> list_documents(const std::string& docs_from) {
    namespace fs = std::filesystem;
    std::vector<std::string> paths;
    std::error_code ec;
    if (fs::is_directory(docs_from, ec)) {
        for (const auto& entry : fs::directory_iterator(docs_from, ec))
            if (entry.is_regular_file() && entry.path().filename().string().front() != '.')
                paths.push_back(entry.path().string());
        std::sort(paths.begin(), paths.end());
        if (paths.empty()) fail("--docs-from {}: the directory holds no files", docs_from);
        return paths;
    }
    std::ifstream list(docs_from);
    if (!list) fail("--docs-from {}: no such file or directory", docs_from);
    for (std::string line; std::getline(list, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (line.empty() || line.front() == '#') continue;
        paths.push_back(line);
    }
    if (paths.empty()) fail("--docs-from {}: the list names no document", docs_from);
    return paths;
}

BatchSummary ingest_batch(const Model& model, ContextStore& store,
                          const std::vector<std::string>& paths, const BatchOptions& options,
                          const std::function<void(const BatchEvent&)>& on_event) {
    const double t0 = now_seconds();
    BatchSummary summary;
    summary.items.resize(paths.size());
    std::vector<std::vector<int32_t>> tokens(paths.size());
    std::vector<Pending> pending;
    size_t done = 0;
    const auto emit = [&](BatchEvent::Kind kind, size_t index, const BatchItem* item) {
        if (on_event) on_event({kind, index, done, paths.size(), item});
    };
    const auto finish = [&](size_t index) {
        BatchItem& item = summary.items[index];
        ++done;
        if (item.status == BatchItem::Status::ingested) ++summary.ingested;
        if (item.status == BatchItem::Status::already_present) ++summary.already_present;
        if (item.status == BatchItem::Status::failed) ++summary.failed;
        tokens[index] = {};
        emit(BatchEvent::Kind::finished, index, &item);
    };

    // Read and tokenize everything first: a bad document fails at once, not after an hour.
    const std::string fingerprint = hex64(model.fingerprint());
    for (size_t i = 0; i < paths.size(); ++i) {
        BatchItem& item = summary.items[i];
        item.path = paths[i];
        try {
            tokens[i] = context_tokens(model, read_document(paths[i]), options.format);
            if (options.max_tokens > 0 &&
                static_cast<int64_t>(tokens[i].size()) > options.max_tokens)
                tokens[i].resize(static_cast<size_t>(options.max_tokens));
            if (tokens[i].empty()) fail("{}: the document has no tokens", paths[i]);
            item.context_id = context_id(fingerprint, tokens[i], options.ingest.chunk_tokens);
            pending.push_back({i, std::nullopt});
        } catch (const Error& e) {
            item.error = e.what();
            finish(i);
        }
    }

    while (!pending.empty()) {
        bool progressed = false;
        for (auto it = pending.begin(); it != pending.end();) {
            const size_t i = it->index;
            BatchItem& item = summary.items[i];
            try {
                if (!store.is_complete(item.context_id)) {
                    const auto now = std::chrono::steady_clock::now();
                    const bool waited_enough =
                        it->deferred_since && now - *it->deferred_since >= options.wait_limit;
                    if (!waited_enough &&
                        another_worker_is_writing(store, item.context_id, options.busy_window)) {
                        if (!it->deferred_since) {
                            it->deferred_since = now;
                            emit(BatchEvent::Kind::deferred, i, nullptr);
                        }
                        ++it;
                        continue;
                    }
                }
                emit(BatchEvent::Kind::started, i, nullptr);
                item.result = ingest_context(model, store, tokens[i], options.ingest);
                item.status = item.result.already_present ? BatchItem::Status::already_present
                                                          : BatchItem::Status::ingested;
            } catch (const Error& e) {
                item.status = BatchItem::Status::failed;
                item.error = e.what();
            }
            finish(i);
            it = pending.erase(it);
            progressed = true;
        }
        if (!pending.empty() && !progressed) std::this_thread::sleep_for(options.poll_interval);
    }
    summary.seconds = now_seconds() - t0;
    return summary;
}

}  // namespace sparkv
