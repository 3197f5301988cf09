#include "runtime/controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "common/timer.h"

namespace sparkv::runtime {

Controller::Controller(const plan::CostInstance& costs, const plan::Plan& plan,
                       double planned_bandwidth, UnitBoard& board, StreamControl& stream,
                       const ComputeProgress& compute, Timeline& timeline, double origin_s,
                       ControllerSettings settings)
    : costs_(costs),
      shape_(costs.shape),
      planned_bandwidth_(planned_bandwidth),
      board_(board),
      stream_(stream),
      compute_(compute),
      timeline_(timeline),
      origin_s_(origin_s),
      settings_(settings),
      level_(plan.level),
      depth_(plan.prefixes(costs.shape)),
      pass_debt_s_(costs.shape.n_units(), 0.0),
      pass_from_(costs.shape.n_units(), -1) {
    for (auto& level : level_)
        if (level < 0) level = costs.default_level;
}

Controller::~Controller() {
    stop();
}

void Controller::start() {
    if (!settings_.enabled || thread_.joinable()) return;
    thread_ = std::thread([this] { loop(); });
}

void Controller::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

ControllerStats Controller::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

void Controller::loop() {
    const auto period = std::chrono::duration<double>(settings_.period_s);
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, period, [&] { return stopping_; })) {
        lock.unlock();
        tick(now_seconds() - origin_s_);
        lock.lock();
    }
}

double Controller::compute_drift(double now_s) {
    double predicted = 0, actual = 0;
    for (const auto& o : compute_.observations(now_s - settings_.window_s)) {
        predicted += o.predicted_s;
        actual += o.actual_s;
    }
    // Too little evidence in the window: keep the last judgement.
    if (predicted < 0.2 * settings_.window_s) return stats().last_compute_drift;
    return actual / predicted;
}

double Controller::bandwidth_estimate(double now_s) const {
    double bandwidth = stream_.bandwidth().value_or(planned_bandwidth_);
    // A unit that has been in flight far longer than it should says more than old samples.
    if (const auto since = stream_.in_flight_since()) {
        const double elapsed = now_s - *since;
        const double typical =
            costs_.units.empty()
                ? 0
                : static_cast<double>(
                      costs_.units[0].bytes[static_cast<size_t>(costs_.default_level)]);
        // The oldest unit in flight shares the link with the other connections' units.
        const double expected = costs_.request_latency_s + costs_.connections * typical / bandwidth;
        if (elapsed > settings_.stall_factor * expected && elapsed > 0.25)
            bandwidth = std::min(bandwidth, typical / elapsed);
    }
    return std::max(bandwidth, 1.0);
}

void Controller::migrate(UnitId u, bool to_stream, double now_s, const char* note) {
    TimelineEvent e;
    e.kind = EventKind::migration;
    e.t = u.t;
    e.l = u.l;
    e.start_s = e.end_s = now_s;
    e.note = note ? note : to_stream ? "compute -> stream" : "stream -> compute";
    timeline_.add(std::move(e));
    std::lock_guard lock(stats_mutex_);
    ++(to_stream ? stats_.to_stream : stats_.to_compute);
}

void Controller::take_over_for_idle_compute(std::vector<UnitState>& states, double drift_c,
                                            double idle_s, double now_s) {
    const int32_t L = shape_.n_layers;
    const auto ready = [&](UnitId u) { return states[shape_.index(u)] == UnitState::ready; };
    const auto queued_for_compute = [&](UnitId u) {
        const UnitState s = states[shape_.index(u)];
        return s == UnitState::compute_planned || s == UnitState::unassigned;
    };
    // Chunk t's frontier unit (right above its computed layers) if it is still queued on the
    // link and planned compute work of a later chunk needs it (the last layer blocks nobody).
    const auto queued_blocker = [&](int32_t t) -> std::optional<UnitId> {
        const UnitId u{t, depth_[static_cast<size_t>(t)]};
        if (u.l >= L - 1 || states[shape_.index(u)] != UnitState::stream_planned)
            return std::nullopt;
        for (int32_t later = t + 1; later < shape_.n_chunks(); ++later)
            if (queued_for_compute({later, u.l})) return u;
        return std::nullopt;
    };
    // ... that the compute lane could also start right now.
    const auto blocking = [&](int32_t t) -> std::optional<UnitId> {
        const auto u = queued_blocker(t);
        if (!u || (u->l > 0 && !ready({t, u->l - 1}))) return std::nullopt;
        for (int32_t e = 0; e < t; ++e)
            if (!ready({e, u->l})) return std::nullopt;
        return u;
    };
    for (int32_t t = 0; t < shape_.n_chunks(); ++t) {
        auto u = blocking(t);
        // Ski rental: wait for the link as long as computing the unit would take, then compute.
        if (!u || idle_s < drift_c * costs_.units[shape_.index(*u)].compute_s) continue;
        // Take the chunk's next layers too while they block later chunks: the lane computes them
        // one after the other without another period of waiting.
        for (int taken = 0; u && taken < settings_.max_migrations; ++taken) {
            if (!stream_.withdraw(*u)) return;
            states[shape_.index(*u)] = UnitState::compute_planned;
            ++depth_[static_cast<size_t>(t)];
            migrate(*u, false, now_s, "stream -> compute (compute lane idle)");
            // The layer below is the lane's to compute now, not yet ready; look past that.
            u = queued_blocker(t);
        }
        return;
    }
}

std::optional<Controller::Takeover> Controller::link_takeover(const std::vector<UnitState>& states,
                                                              int32_t t) const {
    Takeover take;
    take.from_layer = depth_[static_cast<size_t>(t)];
    for (int32_t l = take.from_layer; l < shape_.n_layers; ++l) {
        const size_t i = shape_.index({t, l});
        switch (states[i]) {
            case UnitState::stream_planned:
                take.unit = {t, l};
                return take;
            case UnitState::streaming:
            case UnitState::writing:
            case UnitState::ready:  // delivered (or about to be): rerun over its KV
                take.pass_s += costs_.units[i].compute_s;
                break;
            default:  // the compute lane's already (handed back by the link)
                break;
        }
    }
    return std::nullopt;
}

void Controller::tick(double now_s) {
    const double started = now_seconds();
    const double drift_c = compute_drift(now_s);
    const double bandwidth = bandwidth_estimate(now_s);
    const double drift_s = planned_bandwidth_ / bandwidth;
    auto states = board_.snapshot();
    // What the link delivered per second of wall time over the window, latencies included. On a
    // bursty link the last few per-unit rates swing several-fold from one unit to the next; the
    // delivered rate is what the rest of the queue will see if the link stays as it was. A unit
    // stuck in flight is newer evidence than either (bandwidth_estimate lowers for it).
    const bool stalled = bandwidth < stream_.bandwidth().value_or(planned_bandwidth_);
    const std::optional<double> delivered =
        stalled ? std::nullopt
                : stream_.delivered_rate(settings_.window_s,
                                         static_cast<size_t>(settings_.warmup_units));

    // Remaining work of each lane at the observed speeds.
    const auto stream_s = [&](size_t i) {
        const auto bytes =
            static_cast<double>(costs_.units[i].bytes[static_cast<size_t>(level_[i])]);
        return delivered ? bytes / *delivered
                         : costs_.request_latency_s / costs_.connections + bytes / bandwidth;
    };
    double remaining_c = 0, remaining_s = 0;
    for (size_t i = 0; i < states.size(); ++i) {
        const UnitState s = states[i];
        if (s == UnitState::compute_planned || s == UnitState::unassigned)
            remaining_c += drift_c * (costs_.units[i].compute_s + pass_debt_s_[i]);
        else if (s == UnitState::computing)
            remaining_c += drift_c * costs_.units[i].compute_s;
        else if (s == UnitState::stream_planned || s == UnitState::streaming)
            remaining_s += stream_s(i);
    }

    // An idle compute lane with planned work it cannot start is waiting for a stream unit still
    // in the queue: take that unit over (see take_over_for_idle_compute).
    if (const auto idle = compute_.idle_since())
        take_over_for_idle_compute(states, drift_c, now_s - *idle, now_s);

    int moves = 0;
    // Act on evidence only: a few units through each lane first.
    // On a fast link the whole request may take less than the warm-up time; the link's own
    // samples are the evidence there (a tick period first, so the compute lane reports too).
    const bool warmed_up =
        now_s >= settings_.warmup_s ||
        (now_s >= 2 * settings_.period_s &&
         stream_.bandwidth_samples() >= static_cast<size_t>(settings_.warmup_units));
    // A gross imbalance (e.g. a link several times faster than the manifest fetch suggested)
    // is no noise: let the lanes meet within a few periods instead of a dozen.
    const int cap = std::max(remaining_c, remaining_s) > 2 * std::min(remaining_c, remaining_s)
                        ? 4 * settings_.max_migrations
                        : settings_.max_migrations;
    const double slack =
        std::max(settings_.period_s, settings_.threshold * std::max(remaining_c, remaining_s));
    if (warmed_up && remaining_c > remaining_s + slack) {
        // Compute lane slower than planned and now the last to finish: stream the deepest
        // planned compute units of the costliest chunks.
        while (moves < cap) {
            int32_t best_t = -1;
            double best_cost = 0;
            for (int32_t t = 0; t < shape_.n_chunks(); ++t) {
                const int32_t d = depth_[static_cast<size_t>(t)];
                if (d == 0) continue;
                const size_t i = shape_.index({t, d - 1});
                if (states[i] != UnitState::compute_planned) continue;
                if (costs_.units[i].compute_s > best_cost)
                    best_cost = costs_.units[i].compute_s, best_t = t;
            }
            if (best_t < 0) break;
            const UnitId u{best_t, depth_[static_cast<size_t>(best_t)] - 1};
            const size_t i = shape_.index(u);
            const double dc = drift_c * costs_.units[i].compute_s, ds = stream_s(i);
            if (remaining_c - dc < remaining_s + ds) break;  // would overshoot
            if (!board_.move_to_stream(u)) break;
            stream_.append(u, level_[i]);
            --depth_[static_cast<size_t>(best_t)];
            if (pass_from_[i] >= 0) {  // its pass-throughs are no longer needed either
                depth_[static_cast<size_t>(best_t)] = pass_from_[i];
                remaining_c -= drift_c * pass_debt_s_[i];
                pass_from_[i] = -1;
                pass_debt_s_[i] = 0;
            }
            remaining_c -= dc;
            remaining_s += ds;
            migrate(u, true, now_s);
            ++moves;
        }
    } else if (warmed_up && remaining_s > remaining_c + slack) {
        // Link slower than planned and now the last to finish: the compute lane takes a chunk's
        // lowest unit still queued on the link, cheapest first (pass-throughs included).
        while (moves < cap) {
            std::optional<Takeover> best;
            double best_cost = 0;
            for (int32_t t = 0; t < shape_.n_chunks(); ++t) {
                const auto take = link_takeover(states, t);
                if (!take) continue;
                const size_t i = shape_.index(take->unit);
                // Rerunning delivered layers only pays where the link is not much faster per
                // unit than the CPU (rerun_link_ratio): the chunk's later layers then come sooner
                // from the compute lane. On a fast link the reruns would hold up the question's
                // own layers (the compute lane runs them) and take the CPU from the stream lane's
                // decode, neither priced by the balance (measured, x4 links: 8-17% slower TTFT).
                if (take->pass_s > 0 &&
                    stream_s(i) <= settings_.rerun_link_ratio * drift_c * costs_.units[i].compute_s)
                    continue;
                const double cost = take->pass_s + costs_.units[i].compute_s;
                if (!best || cost < best_cost) best = take, best_cost = cost;
            }
            if (!best) break;
            const UnitId u = best->unit;
            const size_t i = shape_.index(u);
            const double dc = drift_c * best_cost, ds = stream_s(i);
            if (remaining_s - ds < remaining_c + dc) break;
            if (!stream_.withdraw(u)) break;
            states[i] = UnitState::compute_planned;
            depth_[static_cast<size_t>(u.t)] = u.l + 1;
            if (best->pass_s > 0) {
                pass_debt_s_[i] = best->pass_s;
                pass_from_[i] = best->from_layer;
            }
            remaining_s -= ds;
            remaining_c += dc;
            migrate(u, false, now_s,
                    best->pass_s > 0 ? "stream -> compute (over delivered layers)" : nullptr);
            ++moves;
        }
    }
    std::lock_guard lock(stats_mutex_);
    ++stats_.ticks;
    stats_.last_compute_drift = drift_c;
    stats_.last_link_drift = drift_s;
    stats_.busy_s += now_seconds() - started;
}

}  // namespace sparkv::runtime
