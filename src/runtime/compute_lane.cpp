#include "runtime/compute_lane.h"

#include <chrono>

#include "common/error.h"
#include "common/timer.h"

namespace sparkv::runtime {

ComputeLane::ComputeLane(Engine& engine, UnitBoard& board, std::span<const int32_t> context_tokens,
                         std::span<const int32_t> question_tokens, std::vector<double> predicted_s,
                         Timeline& timeline, double origin_s, bool wait_for_stream)
    : engine_(engine),
      board_(board),
      shape_(board.shape()),
      context_tokens_(context_tokens),
      question_tokens_(question_tokens),
      predicted_s_(std::move(predicted_s)),
      timeline_(timeline),
      origin_s_(origin_s),
      wait_for_stream_(wait_for_stream),
      hidden_(static_cast<size_t>(shape_.n_chunks())) {
    if (static_cast<int64_t>(context_tokens.size()) != shape_.n_tokens())
        fail("compute lane: {} context tokens for a context of {}", context_tokens.size(),
             shape_.n_tokens());
    if (question_tokens.empty()) fail("compute lane: the question has no tokens");
    if (predicted_s_.size() != shape_.n_units())
        fail("compute lane: {} predictions for {} units", predicted_s_.size(), shape_.n_units());
    if (engine.config().n_layer != shape_.n_layers)
        fail("compute lane: the model has {} layers, the context {}", engine.config().n_layer,
             shape_.n_layers);
}

double ComputeLane::now_s() const {
    return now_seconds() - origin_s_;
}

void ComputeLane::stop() {
    stop_ = true;
}

int32_t ComputeLane::depth(int32_t t) const {
    const auto& h = hidden_[static_cast<size_t>(t)];
    return h ? h->layer : 0;
}

HiddenState& ComputeLane::hidden(int32_t t) {
    auto& h = hidden_[static_cast<size_t>(t)];
    if (!h) {
        const int64_t first = shape_.first_token(t);
        h = engine_.embed(context_tokens_.subspan(
                              static_cast<size_t>(first),
                              static_cast<size_t>(shape_.chunk_tokens[static_cast<size_t>(t)])),
                          first);
    }
    return *h;
}

bool ComputeLane::layer_complete(const std::vector<UnitState>& states, int32_t l) const {
    for (int32_t t = 0; t < shape_.n_chunks(); ++t)
        if (states[shape_.index({t, l})] != UnitState::ready) return false;
    return true;
}

bool ComputeLane::history_ready(const std::vector<UnitState>& states, UnitId u) const {
    for (int32_t t = 0; t < u.t; ++t)
        if (states[shape_.index({t, u.l})] != UnitState::ready) return false;
    return true;
}

std::optional<ComputeLane::Step> ComputeLane::pick(const std::vector<UnitState>& states) const {
    const int32_t L = shape_.n_layers;
    const int32_t q = question_ ? question_->layer : 0;
    if (q < L && layer_complete(states, q)) return Step{StepKind::query, {-1, q}};
    if (wait_for_stream_)
        for (UnitState s : states)
            if (s == UnitState::stream_planned || s == UnitState::streaming ||
                s == UnitState::writing)
                return std::nullopt;
    for (const UnitId wanted : board_.compute_queue()) {
        const int32_t a = depth(wanted.t);
        if (a > wanted.l) continue;  // cannot happen: a layer passed is a layer filled
        const UnitId next{wanted.t, a};
        const UnitState s = states[shape_.index(next)];
        if (s == UnitState::ready) {
            if (history_ready(states, next)) return Step{StepKind::pass_through, next};
        } else if (s == UnitState::compute_planned || s == UnitState::unassigned) {
            if (a == L - 1 || history_ready(states, next)) return Step{StepKind::compute, next};
        }
        // Otherwise the stream lane owns the next layer of this chunk: try the next unit.
    }
    return std::nullopt;
}

void ComputeLane::execute(const Step& step) {
    const int32_t L = shape_.n_layers;
    TimelineEvent e;
    e.t = step.unit.t;
    e.l = step.unit.l;
    if (step.kind == StepKind::compute && !board_.begin_compute(step.unit)) return;  // lost it
    busy_ = true;
    const double start = now_s();
    switch (step.kind) {
        case StepKind::query: {
            if (!question_) question_ = engine_.embed(question_tokens_, shape_.n_tokens());
            engine_.run_layer(*question_);
            e.kind = EventKind::query;
            e.t = -1;
            break;
        }
        case StepKind::compute: {
            HiddenState& h = hidden(step.unit.t);
            if (step.unit.l == L - 1)
                engine_.project_kv(h);  // the last layer's output is never needed
            else
                engine_.run_layer(h);
            board_.finish_compute(step.unit);
            e.kind = EventKind::compute;
            break;
        }
        case StepKind::pass_through: {
            engine_.run_layer_over_cached_kv(hidden(step.unit.t));
            e.kind = EventKind::pass_through;
            break;
        }
    }
    const double end = now_s();
    busy_ = false;
    e.start_s = start;
    e.end_s = end;
    timeline_.add(e);
    std::lock_guard lock(stats_mutex_);
    stats_.busy_s += end - start;
    if (step.kind == StepKind::query) stats_.query_s += end - start;
    if (step.kind == StepKind::pass_through) ++stats_.pass_throughs;
    if (step.kind == StepKind::compute) {
        ++stats_.units;
        observations_.push_back({end, predicted_s_[shape_.index(step.unit)], end - start});
        if (observations_.size() > 4096) observations_.pop_front();
    }
}

std::vector<float> ComputeLane::run() {
    const int32_t L = shape_.n_layers;
    while (!(question_ && question_->layer == L)) {
        if (stop_) fail("compute lane: stopped before the question was prefilled");
        const uint64_t version = board_.version();
        const auto step = pick(board_.snapshot());
        if (!step) {
            if (idle_since_.load() < 0) idle_since_ = now_s();
            board_.wait_for_change(version, std::chrono::milliseconds(50));
            continue;
        }
        idle_since_ = -1;
        execute(*step);
    }
    idle_since_ = -1;
    const double start = now_s();
    std::vector<float> logits = engine_.last_logits(*question_);
    const double end = now_s();
    timeline_.add({EventKind::query, -1, L, start, end, 0, 0, "", "logits"});
    std::lock_guard lock(stats_mutex_);
    stats_.busy_s += end - start;
    stats_.query_s += end - start;
    return logits;
}

std::optional<double> ComputeLane::idle_since() const {
    const double since = idle_since_.load();
    return since < 0 ? std::nullopt : std::optional<double>(since);
}

ComputeLaneStats ComputeLane::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

std::vector<ComputeObservation> ComputeLane::observations(double since_s) const {
    std::lock_guard lock(stats_mutex_);
    std::vector<ComputeObservation> out;
    for (const auto& o : observations_)
        if (o.end_s >= since_s) out.push_back(o);
    return out;
}

}  // namespace sparkv::runtime
