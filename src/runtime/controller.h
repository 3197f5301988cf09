// The run-time controller (DESIGN.md §5): every period it re-estimates each lane's remaining
// work at the speeds observed so far -- the compute lane's measured/predicted time over a
// sliding window, the link's measured bandwidth (including a unit that is taking far longer than
// it should) -- and when one lane would finish later than the other by more than the threshold,
// it migrates units to the other lane until their predicted finish times meet, at most
// `max_migrations` per period:
//   compute slow (CPU contention): the deepest planned compute unit of the costliest chunks
//     moves to the stream lane;
//   link slow: a chunk's lowest unit still queued on the link moves to the compute lane,
//     cheapest first. When the link already delivered the layers below it, the compute lane
//     reruns them over their streamed KV to get there (pass-throughs), and that work is priced
//     in: otherwise a plan that streams layer by layer, whose first layers arrive at once,
//     would leave the controller nothing to take however slow the link became.
//   compute lane idle: planned compute work waits for a unit still queued on the link that the
//     compute lane could compute right now; once the lane has waited as long as computing that
//     unit would take, it takes it over (whatever the balance says: idle time is lost time).
// A dead link needs no decision: every unit it cannot deliver is handed back to the compute
// lane by the stream lane itself.
//
// Threads: its own thread (start/stop); it reads the lanes' thread-safe views and changes the
// board and the stream schedule only through their locked methods.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "plan/cost_instance.h"
#include "plan/plan.h"
#include "runtime/lane_views.h"
#include "runtime/timeline.h"
#include "runtime/unit_board.h"

namespace sparkv::runtime {

// One home for the controller's settings; defaults are justified in src/runtime/README.md.
struct ControllerSettings {
    bool enabled = true;
    double period_s = 0.1;    // how often it looks
    double window_s = 1.5;    // compute speed: units completed in the last window_s seconds
    double threshold = 0.15;  // imbalance that counts: 15% of the longer lane's remaining work
    double warmup_s = 0.5;    // no decision before this much time has passed...
    int warmup_units = 6;     // ...or this many units came over the link (fast links)
    int max_migrations = 4;   // per period; 4x when one lane has twice the other's work left
    double stall_factor = 3;  // a unit in flight for 3x its predicted time means a slow link
    // Rerun delivered layers to take a chunk over only while a unit takes the link at least
    // this share of the time it takes the CPU (a faster link leaves the reruns nothing to win).
    double rerun_link_ratio = 0.5;
};

struct ControllerStats {
    int ticks = 0;
    int to_stream = 0;              // compute units moved to the stream lane
    int to_compute = 0;             // stream units moved to the compute lane
    double busy_s = 0;              // time spent deciding
    double last_compute_drift = 1;  // observed / predicted compute time
    double last_link_drift = 1;     // planned / observed bandwidth
};

class Controller {
  public:
    Controller(const plan::CostInstance& costs, const plan::Plan& plan, double planned_bandwidth,
               UnitBoard& board, StreamControl& stream, const ComputeProgress& compute,
               Timeline& timeline, double origin_s, ControllerSettings settings);
    ~Controller();

    void start();
    void stop();
    ControllerStats stats() const;

    // One decision at time now_s (seconds since origin); public for tests with scripted drifts.
    void tick(double now_s);

  private:
    // Taking one of chunk t's stream units onto the compute lane: the unit, and the compute
    // time of the delivered layers the lane must pass through first.
    struct Takeover {
        UnitId unit;
        double pass_s = 0;
        int32_t from_layer = 0;  // the chunk's depth before it
    };
    std::optional<Takeover> link_takeover(const std::vector<UnitState>& states, int32_t t) const;

    void loop();
    double compute_drift(double now_s);
    double bandwidth_estimate(double now_s) const;
    void migrate(UnitId u, bool to_stream, double now_s, const char* note = nullptr);
    void take_over_for_idle_compute(std::vector<UnitState>& states, double drift_c, double idle_s,
                                    double now_s);

    const plan::CostInstance& costs_;
    const plan::ContextShape& shape_;
    const double planned_bandwidth_;
    UnitBoard& board_;
    StreamControl& stream_;
    const ComputeProgress& compute_;
    Timeline& timeline_;
    const double origin_s_;
    const ControllerSettings settings_;
    // Decision state, touched only by tick() (the controller's thread, or a test calling it).
    std::vector<int8_t> level_;   // level of each unit if streamed
    std::vector<int32_t> depth_;  // per chunk: layers the compute lane owns (the plan's k_t)
    // Per unit taken over with pass-throughs: their compute time (owed until the unit starts)
    // and the depth to return to if it goes back to the link.
    std::vector<double> pass_debt_s_;
    std::vector<int32_t> pass_from_;

    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    mutable std::mutex stats_mutex_;
    ControllerStats stats_;
};

}  // namespace sparkv::runtime
