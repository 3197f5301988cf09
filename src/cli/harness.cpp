#include "cli/harness.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/progress.h"
#include "cloud/ingest.h"
#include "common/error.h"
#include "engine/prompt.h"

namespace sparkv::cli {

std::string read_text_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read {}", path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

std::vector<double> parse_numbers(const std::string& text, const char* what) {
    std::vector<double> out;
    for (const auto& item : split_list(text)) {
        try {
            size_t used = 0;
            const double v = std::stod(item, &used);
            if (used != item.size() || !(v > 0)) throw std::invalid_argument(item);
            out.push_back(v);
        } catch (const std::exception&) {
            fail("{}: '{}' is not a positive number", what, item);
        }
    }
    if (out.empty()) fail("{}: no values given", what);
    return out;
}

std::vector<int32_t> context_of_length(const Model& model, const std::string& document, int64_t n) {
    if (n <= 0) fail("context length must be positive");
    if (document.empty()) fail("the document is empty");
    const PromptFormat format = default_prompt_format(model);
    std::string text = document;
    std::vector<int32_t> tokens = context_tokens(model, text, format);
    while (static_cast<int64_t>(tokens.size()) < n) {  // repeat the document until long enough
        text += "\n\n" + document;
        tokens = context_tokens(model, text, format);
    }
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

std::string ingest_tokens(const Model& model, ContextStore& store,
                          const std::vector<int32_t>& tokens,
                          const std::vector<std::string>& levels, int threads,
                          const std::string& label) {
    IngestOptions io;
    io.levels = levels;
    io.threads = threads;
    io.prompt_format = std::string(prompt_format_name(default_prompt_format(model)));
    ProgressBar bar(label);
    io.on_progress = [&](const IngestProgress& p) {
        bar.update(p.chunks_done, p.chunks_total, p.seconds);
    };
    const auto r = ingest_context(model, store, tokens, io);
    bar.finish();
    return r.context_id;
}

LoopbackServer::LoopbackServer(std::shared_ptr<StorageBackend> backend, LinkConfig link)
    : link_(std::move(link)) {
    ServerConfig config;
    config.port = 0;
    config.threads = 16;
    config.link = link_;
    server_ = std::make_unique<UnitServer>(std::move(backend), config);
    server_->start();
}

LoopbackServer::~LoopbackServer() {
    stop();
}

void LoopbackServer::stop() {
    if (server_) server_->stop();
}

std::string LoopbackServer::address() const {
    return "127.0.0.1:" + std::to_string(server_->port());
}

runtime::RealisedLink LoopbackServer::realised() const {
    runtime::RealisedLink r;
    if (link_.trace) r.trace_ms = link_.trace->timestamps_ms();
    r.scale = link_.trace_scale;
    r.rate_mbps = link_.rate_mbps;
    return r;
}

std::vector<runtime::BandwidthSample> LoopbackServer::capacity(double seconds, double step) const {
    std::vector<runtime::BandwidthSample> out;
    if (!link_.paced()) return out;
    for (double t = 0; t < seconds; t += step)
        out.push_back({t + step / 2, link_.capacity_bytes(t, t + step) / step});
    return out;
}

std::string find_trace_dir() {
    namespace fs = std::filesystem;
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("SPARKV_TRACES"); env && *env) candidates.emplace_back(env);
    candidates.push_back(fs::path(SPARKV_SOURCE_DIR) / ".." / "shared" / "traces");
    candidates.push_back(fs::current_path() / "shared" / "traces");
    candidates.push_back(fs::current_path() / ".." / "shared" / "traces");
    for (const auto& dir : candidates) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        for (const auto& entry : fs::directory_iterator(dir, ec))
            if (entry.path().extension() == ".down") return fs::canonical(dir).string();
    }
    return {};
}

std::unique_ptr<runtime::Device> open_device(runtime::DeviceOptions options, std::string label) {
    // Shared with the callback, which the device keeps.
    auto bar = std::make_shared<ProgressBar>(std::move(label));
    options.on_profile_progress = [bar](int done, int total, double seconds) {
        bar->update(done, total, seconds);
    };
    auto device = std::make_unique<runtime::Device>(std::move(options));
    bar->finish();
    return device;
}

}  // namespace sparkv::cli
