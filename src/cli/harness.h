// What bench, demo (and eval) share: contexts of a given length ingested from a document into a
// temporary store, a server replaying a link on loopback, and the oracle's view of that link.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/statistics.h"
#include "engine/model.h"
#include "net/link_trace.h"
#include "net/server.h"
#include "runtime/device.h"
#include "store/context_store.h"
#include "store/fs_backend.h"

namespace sparkv::cli {

std::string read_text_file(const std::string& path);
std::vector<std::string> split_list(const std::string& text);  // "a,b,,c" -> {a, b, c}
std::vector<double> parse_numbers(const std::string& text, const char* what);

// The document's context tokens (model's prompt format) cut or repeated to exactly n tokens.
std::vector<int32_t> context_of_length(const Model& model, const std::string& document, int64_t n);

// Ingests `tokens` into `store` (a no-op when present) and returns the context id.
std::string ingest_tokens(const Model& model, ContextStore& store,
                          const std::vector<int32_t>& tokens,
                          const std::vector<std::string>& levels, int threads,
                          const std::string& label);

// A UnitServer on 127.0.0.1 with a link; each connection replays the link from its start.
class LoopbackServer {
  public:
    LoopbackServer(std::shared_ptr<StorageBackend> backend, LinkConfig link);
    ~LoopbackServer();
    std::string address() const;
    const LinkConfig& link() const { return link_; }
    // What the oracle is told: the link this server replays.
    runtime::RealisedLink realised() const;
    // The link's capacity over [0, seconds) in steps of `step` seconds, for timeline pictures.
    std::vector<runtime::BandwidthSample> capacity(double seconds, double step = 0.25) const;
    void stop();

  private:
    LinkConfig link_;
    std::unique_ptr<UnitServer> server_;
};

// Where the shared bandwidth traces are: $SPARKV_TRACES, else a shared/traces directory next
// to the source tree or the working directory; empty when none is found.
std::string find_trace_dir();

// The device the commands answer with, showing a progress bar while it measures its costs (the
// first time only: the profile is cached per model and thread count).
std::unique_ptr<runtime::Device> open_device(runtime::DeviceOptions options,
                                             std::string label = "profiling this device");

}  // namespace sparkv::cli
