// The device side of SparKV, end to end: given a served context id and a question, get the
// context's KV into the cache by streaming and computing at once, prefill the question, and
// answer. One Device holds what outlives a request (the model, its cost profile, an engine
// whose cache is reused); ask() is one request, timed from the moment it has the context id and
// the question (connection, manifest, token ids and planning included) to the first sampled
// answer token.
//
// Threads: ask() runs the compute lane on the calling thread and starts/joins the others; a
// Device serves one request at a time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/sampling.h"
#include "net/unit_client.h"
#include "plan/cost_model.h"
#include "plan/policy.h"
#include "runtime/controller.h"
#include "runtime/cpu_monitor.h"
#include "runtime/energy.h"
#include "runtime/timeline.h"

namespace sparkv::runtime {

struct DeviceOptions {
    std::string model_path;  // empty: the reference model
    int threads = 0;         // compute lane threads (0: all cores)
    // The engine's pool spin while the stream lane's decoder shares the cores (us): short, so
    // idle workers give the decoder its time (ThreadPool's default is 500 us).
    int pool_spin_us = 50;
    std::string profile_path;  // empty: the cached profile, measured on first use
    // How long the link speed observed while streaming one request is the planning estimate for
    // the next request to the same server (seconds; 0: never). Two tiny fetches (manifest,
    // token ids) say little about a link: latency dominates them, and a paced link may deliver
    // them in one burst. A recent request's per-unit throughputs say much more.
    double link_memory_s = 30;
    std::function<void(int done, int total, double seconds)> on_profile_progress;
};

// The link the server replayed, for the oracle (which is told what really happened).
struct RealisedLink {
    std::vector<uint32_t> trace_ms;  // Mahimahi timestamps; empty with a fixed rate
    double scale = 1;
    double rate_mbps = 0;  // fixed rate instead of a trace
};

struct AskOptions {
    std::string server;  // http://HOST:PORT or HOST:PORT
    std::string context_id;
    std::string question;
    plan::Policy policy = plan::Policy::sparkv;
    int n_predict = 32;
    std::string
        level;  // level to stream; empty: the default lossy level if stored, else the smallest
    SamplingParams sampling;  // greedy by default
    plan::PlannerSettings planner;
    ControllerSettings controller;
    std::string power_profile = "phone";
    double read_timeout_s = 10;
    int connections = ClientConfig{}.connections;  // the stream lane's (net/unit_client.h)
    // Keys whose signatures the device trusts (store/trust.h): with any, an unsigned, foreign or
    // other-model context is refused and a streamed unit whose SHA-256 differs from the signed
    // manifest is refused (and computed instead). Null: not verified, as before signing.
    std::shared_ptr<const TrustPolicy> trust;
    // When the trust policy refuses the context: compute it all locally from its token ids (which
    // hash to the id asked for, so they are the context's own), or, false, fail.
    bool compute_untrusted = true;
    std::string bearer_token;  // for a server with per-tenant access (serve --auth)
    // oracle only: the realised link and, when known, measured per-unit compute seconds (e.g.
    // from a local run of the same request) instead of the profile's predictions.
    std::optional<RealisedLink> realised_link;
    std::vector<double> measured_compute_s;
    // Run this plan instead of planning (tests, or a plan made offline); it must fit the
    // context (same shape, levels indexed like the manifest's).
    std::optional<plan::Plan> fixed_plan;
    // Called with each answer token's text as it is generated.
    std::function<void(std::string_view piece)> on_piece;
};

struct AskResult {
    std::string policy;
    std::string level;
    std::string answer;
    std::vector<int32_t> answer_tokens;
    std::vector<float> first_logits;  // the logits that chose the first answer token
    double ttft_ms = 0;
    double manifest_ms = 0;  // connection + manifest + token ids
    double planning_ms = 0;
    double load_ms = 0;      // plan ready -> every context unit in the cache
    double question_ms = 0;  // -> logits of the question's last token (overlaps loading)
    double controller_ms = 0;
    double decode_tok_s = 0;  // answer tokens after the first
    double predicted_ttft_ms = 0;
    double lower_bound_ms = 0;     // oracle only
    double planned_mbps = 0;       // bandwidth estimate the plan used
    std::string bandwidth_source;  // "recent" (an earlier request's units) or "probe" (manifest)
    std::string trust_refusal;     // why the context's KV was refused (then everything computed)
    double availability = 1;       // CPU availability the plan used
    size_t units_computed = 0;
    size_t units_streamed = 0;
    size_t pass_throughs = 0;
    uint64_t bytes_received = 0;
    int controller_migrations = 0;
    std::vector<UnitFailure> failures;
    EnergyBreakdown energy;
    int64_t context_tokens = 0;
    int64_t question_tokens = 0;
    int n_chunks = 0;
    int n_layers = 0;
    std::shared_ptr<Timeline> timeline;
    std::vector<double> unit_compute_s;  // measured compute seconds per unit (0 if streamed)
};

class Device {
  public:
    explicit Device(DeviceOptions options);
    ~Device();

    const Model& model() const { return *model_; }
    const plan::DeviceProfile& profile() const { return profile_; }
    // The lossy level requests stream by default: the model's codec profile's default, or q5h.
    const std::string& default_level() const { return default_level_; }
    int threads() const { return threads_; }

    AskResult ask(const AskOptions& options);

  private:
    Engine& engine_for(int64_t positions);
    plan::Plan plan_oracle(const AskOptions& options, const ClientConfig& client_config);

    DeviceOptions options_;
    std::unique_ptr<Model> model_;
    int threads_ = 1;
    plan::DeviceProfile profile_;
    std::string default_level_;  // the model's default lossy level (its codec profile's, or q5h)
    std::unique_ptr<Engine> engine_;
    // Last observed link per server address (see DeviceOptions::link_memory_s).
    struct LinkMemory {
        double bytes_per_s = 0;
        double latency_s = 0;
        double observed_at_s = 0;  // steady clock
    };
    std::map<std::string, LinkMemory> links_;
    CpuMonitor cpu_;  // other processes' CPU use between requests: the plan's availability
};

// The level a request streams at: `wanted` if given (must be stored), else `preferred` (the
// model's default lossy level, codec::default_lossy_level) if the context has it, else q5h if
// it has that, else the smallest stored level. Index into manifest.levels.
int choose_level(const Manifest& manifest, const std::string& wanted,
                 const std::string& preferred = "");

}  // namespace sparkv::runtime
