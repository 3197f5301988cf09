// The compute lane: runs the engine on the units the board gives it, and the question.
//
// It keeps one hidden state per chunk and at each step takes the first unit of the board's
// compute queue whose next layer can run now: a unit it may compute (claimed on the board, then
// run_layer, or the K/V projection for the last layer), or a layer of that chunk that another
// lane already filled, run over the cached KV (run_layer_over_cached_kv) to reach a deeper unit.
// A layer of the question runs, before anything else, as soon as that layer of the context is
// complete; after the question's last layer it computes the logits and is done. When nothing can
// run it sleeps until the board changes.
//
// Threads: run() executes on the calling thread (the compute lane) and is the only user of the
// engine's compute methods and of the hidden states; stop(), stats(), observations(),
// idle_since() and busy() may be called from any thread (the controller's).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "plan/plan.h"
#include "runtime/lane_views.h"
#include "runtime/timeline.h"
#include "runtime/unit_board.h"

namespace sparkv::runtime {

struct ComputeLaneStats {
    uint64_t units = 0;          // computed context units
    uint64_t pass_throughs = 0;  // layers rerun over streamed KV
    double busy_s = 0;           // time spent running the engine (context + question)
    double query_s = 0;          // of which the question's layers and the logits
};

class ComputeLane : public ComputeProgress {
  public:
    // predicted_s: the cost model's seconds per unit (ContextShape::index), for the controller.
    // With wait_for_stream, context units are computed only once the stream lane holds nothing
    // (CacheGen's "recompute after the stream").
    ComputeLane(Engine& engine, UnitBoard& board, std::span<const int32_t> context_tokens,
                std::span<const int32_t> question_tokens, std::vector<double> predicted_s,
                Timeline& timeline, double origin_s, bool wait_for_stream);

    // Loads what the board assigns it, prefills the question and returns the logits of its last
    // token. Throws Error if stopped or if the engine fails.
    std::vector<float> run();
    void stop();

    ComputeLaneStats stats() const;
    // Units completed since `since_s` (seconds since origin), oldest first.
    std::vector<ComputeObservation> observations(double since_s) const override;
    std::optional<double> idle_since() const override;
    // Whether the lane is running a step right now.
    bool busy() const { return busy_.load(); }

  private:
    enum class StepKind { query, compute, pass_through };
    struct Step {
        StepKind kind;
        UnitId unit;
    };
    std::optional<Step> pick(const std::vector<UnitState>& states) const;
    bool layer_complete(const std::vector<UnitState>& states, int32_t l) const;
    bool history_ready(const std::vector<UnitState>& states, UnitId u) const;
    int32_t depth(int32_t t) const;
    void execute(const Step& step);
    HiddenState& hidden(int32_t t);
    double now_s() const;

    Engine& engine_;
    UnitBoard& board_;
    const plan::ContextShape shape_;
    std::span<const int32_t> context_tokens_;
    std::span<const int32_t> question_tokens_;
    std::vector<double> predicted_s_;
    Timeline& timeline_;
    const double origin_s_;
    const bool wait_for_stream_;

    std::vector<std::optional<HiddenState>> hidden_;  // per chunk; compute lane only
    std::optional<HiddenState> question_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> busy_{false};
    std::atomic<double> idle_since_{-1};  // < 0: not idle

    mutable std::mutex stats_mutex_;
    ComputeLaneStats stats_;
    std::deque<ComputeObservation> observations_;
};

}  // namespace sparkv::runtime
