// A whole SparKV deployment in one process for the runtime tests: a small random-weight model, a
// context ingested into a store at the lossless and the default lossy level, a server on
// loopback (optionally paced), and a device profile measured quickly for that model. The context
// is ingested with the given attention settings (dense by default).
#pragma once

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cloud/ingest.h"
#include "engine/engine.h"
#include "net/server.h"
#include "runtime/device.h"
#include "runtime/profiler.h"
#include "store/context_store.h"
#include "store/fs_backend.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv::testing {

class RuntimeWorld {
  public:
    // 6 chunks of 32 tokens (the last one shorter) x 4 layers.
    explicit RuntimeWorld(int n_tokens = 180, int chunk = 32, SparseAttentionOptions attention = {})
        : sparse(attention), chunk_tokens(chunk) {
        RandomModelSpec spec;
        spec.n_layer = 4;
        spec.output_scale = 4.0f;  // peaked next-token distributions, like a trained model
        spec.tied_output = false;
        model_path = dir.file("model.gguf");
        write_random_model(spec, model_path);
        model = Model::load(model_path);
        for (int i = 0; i < n_tokens; ++i) tokens.push_back((i * 37 + 11) % 250);
        backend = std::make_shared<FilesystemBackend>(dir.file("store"));
        ContextStore store(backend);
        IngestOptions io;
        io.chunk_tokens = chunk;
        io.levels = {"fp16", "q5h"};
        io.threads = 1;
        io.prompt_format = "raw";
        io.sparse = sparse;
        context_id = ingest_context(*model, store, tokens, io).context_id;

        runtime::ProfileOptions po;
        po.threads = 2;
        po.samples = 60;
        po.chunk_tokens = chunk;
        po.max_span = 256;
        po.contention = false;
        po.mlp_epochs = 20;
        profile_path = dir.file("profile.json");
        runtime::measure_device_profile(*model, po).save(profile_path);
    }

    // Starts (or restarts) the server with a link.
    void serve(LinkConfig link = {}) {
        ServerConfig config;
        config.port = 0;
        config.threads = 8;
        config.keep_alive_s = 5;
        config.link = std::move(link);
        server = std::make_unique<UnitServer>(backend, config);
        server->start();
    }

    std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }

    runtime::DeviceOptions device_options() const {
        runtime::DeviceOptions o;
        o.model_path = model_path;
        o.threads = 2;
        o.profile_path = profile_path;
        return o;
    }

    runtime::AskOptions ask(plan::Policy policy, const std::string& level = "fp16") const {
        runtime::AskOptions a;
        a.server = address();
        a.context_id = context_id;
        a.question = "what comes next?";
        a.policy = policy;
        a.level = level;
        a.n_predict = 8;
        return a;
    }

    // Logits of a local prefill of the context chunk by chunk (as ingest and the device run it),
    // then the question, with the ingest's attention settings (the reference every policy must
    // match), or with other ones.
    std::vector<float> local_logits(const std::vector<int32_t>& question) const {
        return local_logits(question, sparse);
    }
    std::vector<float> local_logits(const std::vector<int32_t>& question,
                                    const SparseAttentionOptions& attention) const {
        Engine engine(*model, {.n_ctx = static_cast<int64_t>(tokens.size() + question.size() + 16),
                               .n_threads = 2,
                               .sparse = attention});
        const std::span<const int32_t> context(tokens);
        for (size_t t = 0; t < tokens.size(); t += static_cast<size_t>(chunk_tokens))
            engine.prefill(
                context.subspan(t, std::min(tokens.size() - t, static_cast<size_t>(chunk_tokens))),
                static_cast<int64_t>(t));
        return engine.prefill(question, static_cast<int64_t>(tokens.size()));
    }

    std::string unit_file(const std::string& level, int t, int l) const {
        const Manifest m = ContextStore(backend).read_manifest(context_id);
        return (backend->root() / unit_key(m, level, t, l)).string();
    }

    SparseAttentionOptions sparse;
    int chunk_tokens = 32;
    TempDir dir;
    std::string model_path;
    std::string profile_path;
    std::unique_ptr<Model> model;
    std::vector<int32_t> tokens;
    std::shared_ptr<FilesystemBackend> backend;
    std::string context_id;
    std::unique_ptr<UnitServer> server;
};

}  // namespace sparkv::testing
