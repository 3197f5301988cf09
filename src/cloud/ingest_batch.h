// Many documents in one process, and many such processes on one store. Each document is
// ingested as by ingest_context() (idempotent: a context already complete is skipped). Workers
// that share a document list spread over it without talking to each other: a document whose
// context another worker is writing right now (an uncommitted attempt with an object younger than
// busy_window) is put off and looked at again after the others; if that worker is still at it
// after wait_limit, or its attempt goes quiet (it died), this worker ingests the context itself.
// Correctness never depends on this: two workers on one context both commit complete attempts and
// the last manifest wins (store/context_store.h).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "cloud/ingest.h"
#include "engine/prompt.h"

namespace sparkv {

struct BatchOptions {
    IngestOptions ingest;  // on_progress reports the chunks of the document being ingested
    PromptFormat format = PromptFormat::raw;
    int64_t max_tokens = 0;  // keep only the first N tokens of each document (0: all)
    std::chrono::seconds busy_window{60};
    std::chrono::seconds wait_limit{600};
    std::chrono::milliseconds poll_interval{1000};
};

struct BatchItem {
    enum class Status { ingested, already_present, failed };
    std::string path;
    Status status = Status::failed;
    std::string context_id;  // empty when the document could not be read or tokenized
    std::string error;
    IngestResult result;
};

struct BatchEvent {
    enum class Kind { started, deferred, finished };
    Kind kind;
    size_t index = 0;  // into the document list
    size_t done = 0;   // documents finished so far (any status)
    size_t total = 0;
    const BatchItem* item = nullptr;  // finished: the outcome
};

struct BatchSummary {
    std::vector<BatchItem> items;  // in document-list order
    size_t ingested = 0, already_present = 0, failed = 0;
    double seconds = 0;
};

// Ingests every document at `paths` (UTF-8 text files). A document that fails is reported in its
// item and does not stop the batch.
BatchSummary ingest_batch(const Model& model, ContextStore& store,
                          const std::vector<std::string>& paths, const BatchOptions& options,
                          const std::function<void(const BatchEvent&)>& on_event = {});

// The documents a --docs-from argument names: every regular file of a directory (sorted), or the
// paths listed one per line in a file (blank lines and lines starting with '#' skipped).
std::vector<std::string> list_documents(const std::string& docs_from);

const char* batch_status_name(BatchItem::Status status);

}  // namespace sparkv
