#include "runtime/device.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "cloud/ingest.h"
#include "codec/codec.h"
#include "codec/profile.h"
#include "common/error.h"
#include "common/paths.h"
#include "common/timer.h"
#include "engine/generate.h"
#include "engine/prompt.h"
#include "runtime/cost_builder.h"
#include "runtime/cpu_monitor.h"
#include "runtime/executor.h"
#include "runtime/profiler.h"
#include "store/content_id.h"

namespace sparkv::runtime {

namespace {

// Bandwidth and request latency from the two small fetches every request starts with:
// duration = latency + bytes / bandwidth for both; solved when the two sizes are far enough
// apart, else bytes over time (a conservative estimate the controller corrects within a few
// units).
std::pair<double, double> initial_link_estimate(double bytes_a, double s_a, double bytes_b,
                                                double s_b) {
    constexpr double kFloor = 125'000;  // 1 Mbit/s: never plan with an absurdly slow link
    if (std::abs(bytes_a - bytes_b) > 4096 && std::abs(s_a - s_b) > 1e-4) {
        const double bw = (bytes_a - bytes_b) / (s_a - s_b);
        const double latency = s_b - bytes_b / bw;
        if (bw > 0 && latency >= 0) return {std::max(bw, kFloor), latency};
    }
    const double total_s = std::max(s_a + s_b, 1e-4);
    return {std::max((bytes_a + bytes_b) / total_s, kFloor), 0.0};
}

// Units a request must have streamed before its link estimate is remembered.
constexpr size_t kLinkMemoryMinUnits = 4;
constexpr double kAvailabilityWindow_s = 0.25;

void add_phase(Timeline& timeline, const char* name, double start, double end) {
    TimelineEvent e;
    e.kind = EventKind::phase;
    e.start_s = start;
    e.end_s = end;
    e.note = name;
    timeline.add(std::move(e));
}

std::unique_ptr<plan::LinkModel> realised_model(const RealisedLink& link, double offset_s) {
    if (!link.trace_ms.empty())
        return std::make_unique<plan::TraceLink>(link.trace_ms, link.scale, offset_s);
    if (link.rate_mbps > 0) return std::make_unique<plan::ConstantLink>(link.rate_mbps * 1e6 / 8);
    fail("oracle: the realised link has neither a trace nor a rate");
}

}  // namespace

int choose_level(const Manifest& manifest, const std::string& wanted,
                 const std::string& preferred) {
    if (!wanted.empty()) return manifest.require_level(wanted);
    if (!preferred.empty())
        if (const int i = manifest.level_index(preferred); i >= 0) return i;
    const int fallback = manifest.level_index(codec::level_name(codec::kDefaultLossyLevel));
    if (fallback >= 0) return fallback;
    int smallest = 0;
    for (int i = 1; i < static_cast<int>(manifest.levels.size()); ++i)
        if (manifest.total_bytes(manifest.levels[static_cast<size_t>(i)]) <
            manifest.total_bytes(manifest.levels[static_cast<size_t>(smallest)]))
            smallest = i;
    return smallest;
}

Device::Device(DeviceOptions options) : options_(std::move(options)) {
    model_ = Model::load(resolve_model_path(options_.model_path));
    threads_ = options_.threads > 0 ? options_.threads : ThreadPool::default_threads();
    profile_ = options_.profile_path.empty()
                   ? load_or_measure_profile(*model_, threads_, options_.on_profile_progress)
                   : plan::DeviceProfile::load(options_.profile_path);
    if (profile_.model_fingerprint != hex64(model_->fingerprint()))
        fail("device profile is for model {}, not {} (run `sparkv profile`)",
             profile_.model_fingerprint, hex64(model_->fingerprint()));
    default_level_ = codec::level_name(codec::default_lossy_level(model_->fingerprint()));
}

Device::~Device() = default;

Engine& Device::engine_for(int64_t positions) {
    // Reuse the cache across requests (a device keeps it); grow it in steps of 1024 positions.
    if (!engine_ || engine_->cache().capacity() < positions) {
        const int64_t capacity = (positions + 1023) / 1024 * 1024;
        engine_.reset();
        engine_ = std::make_unique<Engine>(
            *model_,
            EngineOptions{.n_ctx = std::min<int64_t>(
                              capacity, std::max<int64_t>(positions, model_->config().n_ctx_train)),
                          .n_threads = threads_,
                          .pool_spin_us = options_.pool_spin_us});
    } else {
        engine_->cache().clear();
    }
    return *engine_;
}

plan::Plan Device::plan_oracle(const AskOptions& opt, const ClientConfig& client_config) {
    constexpr double kOracleCpuWindow_s = 0.25;
    UnitClient client(client_config);
    CpuMonitor monitor;
    const double t0 = now_seconds();
    const Manifest& m = client.fetch_manifest(opt.context_id);
    client.fetch_tokens();
    const double offset = now_seconds() - t0;
    // The CPU's availability needs a window to be measured over (a fresh monitor reads 1).
    if (offset < kOracleCpuWindow_s)
        std::this_thread::sleep_for(std::chrono::duration<double>(kOracleCpuWindow_s - offset));
    const double availability = monitor.sample(0.0);
    const int level = choose_level(m, opt.level, default_level_);
    const PromptFormat format = m.prompt_format.empty() ? default_prompt_format(*model_)
                                                        : prompt_format_from_name(m.prompt_format);
    plan::CostInstance costs =
        build_costs(m, profile_, availability, level, 0.0,
                    static_cast<int64_t>(question_tokens(*model_, opt.question, format).size()));
    costs.connections = client_config.connections;
    if (!opt.measured_compute_s.empty()) {
        if (opt.measured_compute_s.size() != costs.units.size())
            fail("ask: {} measured unit costs for {} units", opt.measured_compute_s.size(),
                 costs.units.size());
        for (size_t i = 0; i < costs.units.size(); ++i)
            if (opt.measured_compute_s[i] > 0) costs.units[i].compute_s = opt.measured_compute_s[i];
    }
    const auto link = realised_model(*opt.realised_link, offset);
    return plan::make_plan(plan::Policy::oracle, costs, link->mean_rate(0, 60), opt.planner,
                           link.get());
}

AskResult Device::ask(const AskOptions& opt) {
    if (opt.question.empty()) fail("ask: the question is empty");
    if (opt.n_predict < 1) fail("ask: -n must be at least 1");
    ClientConfig client_config = client_config_for_server(opt.server);
    client_config.read_timeout_s = opt.read_timeout_s;
    client_config.connections = opt.connections;
    client_config.trust = opt.trust;
    client_config.bearer_token = opt.bearer_token;
    const auto& config = model_->config();

    // The oracle is told what will happen: plan it first, on a connection of its own, untimed.
    std::optional<plan::Plan> oracle_plan;
    if (opt.policy == plan::Policy::oracle && !opt.fixed_plan) {
        if (!opt.realised_link) fail("ask: the oracle policy needs the link the server replays");
        try {
            oracle_plan = plan_oracle(opt, client_config);
        } catch (const UntrustedContext&) {
            if (!opt.compute_untrusted) throw;  // else refused below, and computed locally
        }
    }

    AskResult r;
    r.policy = std::string(plan::policy_name(opt.policy));
    r.timeline = std::make_shared<Timeline>();
    Timeline& timeline = *r.timeline;
    const double origin = now_seconds();

    auto connection = std::make_unique<UnitClient>(client_config);
    const Manifest* fetched = nullptr;
    try {
        fetched = &connection->fetch_manifest(opt.context_id);
    } catch (const UntrustedContext& e) {
        if (!opt.compute_untrusted) throw;
        // None of its KV may be used; its token ids may (see TrustPolicy::for_token_ids_only).
        r.trust_refusal = e.what();
        ClientConfig tokens_only = client_config;
        tokens_only.trust = std::make_shared<const TrustPolicy>(TrustPolicy::for_token_ids_only());
        connection = std::make_unique<UnitClient>(tokens_only);
        fetched = &connection->fetch_manifest(opt.context_id);
    }
    UnitClient& client = *connection;
    const Manifest& manifest = *fetched;
    const bool refused = !r.trust_refusal.empty();
    const double t_manifest = now_seconds();
    const double manifest_bytes = static_cast<double>(client.stats().bytes_received);
    if (manifest.model.fingerprint != hex64(model_->fingerprint()))
        fail("context {} was ingested with model '{}' (fingerprint {}), not this one ({})",
             opt.context_id, manifest.model.name, manifest.model.fingerprint,
             hex64(model_->fingerprint()));
    if (manifest.n_layers() != config.n_layer || manifest.model.n_kv_heads != config.n_kv_head ||
        manifest.model.head_dim != config.head_dim)
        fail("context {}: its KV shape does not match the model", opt.context_id);
    const std::vector<int32_t> tokens = client.fetch_tokens();
    const double t_tokens = now_seconds();
    add_phase(timeline, "manifest", 0, t_manifest - origin);
    add_phase(timeline, "tokens", t_manifest - origin, t_tokens - origin);

    const PromptFormat format = manifest.prompt_format.empty()
                                    ? default_prompt_format(*model_)
                                    : prompt_format_from_name(manifest.prompt_format);
    const std::vector<int32_t> question = question_tokens(*model_, opt.question, format);
    const int64_t positions =
        manifest.n_tokens + static_cast<int64_t>(question.size()) + opt.n_predict + 1;
    if (positions > config.n_ctx_train)
        fail(
            "context ({} tokens) + question ({}) + answer ({}) exceed the model's {}-token context",
            manifest.n_tokens, question.size(), opt.n_predict, config.n_ctx_train);
    Engine& engine = engine_for(positions);
    // The lanes mix streamed and computed units of this context in one cache, so the units computed
    // here must be the ones ingest stored: attend with the manifest's settings (dense without).
    engine.set_sparse(manifest.sparse ? from_manifest(*manifest.sparse) : SparseAttentionOptions{});

    // Plan.
    const double t_plan0 = now_seconds();
    auto [bandwidth, latency] =
        initial_link_estimate(manifest_bytes, t_manifest - origin,
                              static_cast<double>(manifest.tokens.bytes), t_tokens - t_manifest);
    r.bandwidth_source = "probe";
    if (const auto it = links_.find(opt.server);
        it != links_.end() && origin - it->second.observed_at_s <= options_.link_memory_s) {
        bandwidth = it->second.bytes_per_s;
        latency = it->second.latency_s;
        r.bandwidth_source = "recent";
    }
    // Over the time since the last request (at least kAvailabilityWindow_s, else the last value):
    // /proc/stat counts in 10 ms ticks, so the few milliseconds of this request so far would
    // read one tick of anyone's work as most of a core taken (measured: availability 0.05, every
    // unit priced 20x too slow, everything streamed on a link that then could not deliver).
    // Contention that starts during the request is the controller's to see.
    r.availability = cpu_.sample(kAvailabilityWindow_s);
    const int level = choose_level(manifest, opt.level, default_level_);
    r.level = manifest.levels[static_cast<size_t>(level)];
    plan::CostInstance costs = build_costs(manifest, profile_, r.availability, level, latency,
                                           static_cast<int64_t>(question.size()));
    costs.connections = client_config.connections;
    plan::PlannerSettings planner = opt.planner;
    if (!opt.level.empty()) planner.stream_adapts_level = false;  // the level asked for is a floor
    plan::Plan plan = refused          ? plan::make_plan(plan::Policy::local, costs, bandwidth)
                      : opt.fixed_plan ? *opt.fixed_plan
                      : oracle_plan    ? *oracle_plan
                                       : plan::make_plan(opt.policy, costs, bandwidth, planner);
    if (opt.fixed_plan && !refused)
        r.policy = opt.fixed_plan->policy.empty() ? "fixed" : opt.fixed_plan->policy;
    const double t_plan1 = now_seconds();
    add_phase(timeline, "plan", t_plan0 - origin, t_plan1 - origin);
    r.planning_ms = (t_plan1 - t_plan0) * 1e3;
    r.planned_mbps = bandwidth * 8 / 1e6;
    r.predicted_ttft_ms = plan.predicted_ttft_s * 1e3;
    r.lower_bound_ms = plan.lower_bound_s * 1e3;

    // Load and prefill the question.
    ExecuteOptions exec;
    exec.controller = opt.controller;
    // Run-time control is part of the sparkv policy only: the baselines are measured as published
    // (fixed paths; cake adapts through its own meet-in-the-middle dispatch), and the oracle
    // already knows the realised link. A fixed plan keeps whatever the caller asked for.
    if ((!opt.fixed_plan && opt.policy != plan::Policy::sparkv) || refused)
        exec.controller.enabled = false;
    exec.planned_bandwidth = bandwidth;
    ExecutionReport report =
        execute(engine, client, costs, plan, tokens, question, timeline, origin, exec);
    if (report.bandwidth && report.units_streamed >= kLinkMemoryMinUnits)
        links_[opt.server] = {*report.bandwidth, report.latency_s.value_or(latency), now_seconds()};

    // Answer: the first token ends the TTFT.
    double t_first = 0;
    GenerateOptions gen;
    gen.n_predict = opt.n_predict;
    gen.sampling = opt.sampling;
    const Tokenizer& tok = model_->tokenizer();
    gen.on_token = [&](int32_t token) {
        if (t_first == 0) t_first = now_seconds();
        if (opt.on_piece) opt.on_piece(tok.token_to_piece(token));
    };
    const int64_t next_pos = manifest.n_tokens + static_cast<int64_t>(question.size());
    GenerateResult answer = generate_from(engine, report.logits, next_pos, gen);
    add_phase(timeline, "first token", report.done_s, t_first - origin);

    r.first_logits = std::move(answer.first_logits);
    r.answer_tokens = answer.tokens;
    r.answer = tok.decode(answer.tokens);
    r.ttft_ms = (t_first - origin) * 1e3;
    r.manifest_ms = (t_tokens - origin) * 1e3;
    r.load_ms = (report.loaded_s - (t_plan1 - origin)) * 1e3;
    r.question_ms = (report.done_s - (t_plan1 - origin)) * 1e3;
    r.controller_ms = report.controller.busy_s * 1e3;
    r.decode_tok_s = answer.decode_steps > 0
                         ? static_cast<double>(answer.decode_steps) / answer.decode_seconds
                         : 0;
    r.units_computed = report.units_computed;
    r.units_streamed = report.units_streamed;
    r.pass_throughs = report.compute.pass_throughs;
    r.bytes_received = client.stats().bytes_received;
    r.controller_migrations = report.controller.to_stream + report.controller.to_compute;
    r.failures = report.failures;
    r.context_tokens = manifest.n_tokens;
    r.question_tokens = static_cast<int64_t>(question.size());
    r.n_chunks = manifest.n_chunks();
    r.n_layers = manifest.n_layers();
    r.unit_compute_s.assign(costs.units.size(), 0.0);
    for (const auto& e : timeline.events())
        if (e.kind == EventKind::compute && e.t >= 0)
            r.unit_compute_s[costs.shape.index({e.t, e.l})] = e.end_s - e.start_s;

    EnergyInputs energy;
    energy.ttft_s = r.ttft_ms / 1e3;
    energy.compute_busy_s = report.compute.busy_s;
    energy.compute_threads = threads_;
    energy.decode_busy_s = report.stream.decode_s;
    energy.receive_intervals = receive_intervals(timeline);
    energy.bytes_received = r.bytes_received;
    r.energy = model_energy(power_profile(opt.power_profile), energy);
    return r;
}

}  // namespace sparkv::runtime
