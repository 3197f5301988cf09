// Who produces each unit, and whether it is there yet: the one place where the stream lane, the
// compute lane and the controller meet. Every transition happens under one mutex, and a unit
// is written by exactly one lane: the lane that moved it into `streaming` or `computing`.
//
//   unassigned ──plan──> compute_planned ──compute lane──> computing ──> ready
//        │                  ^     │ (controller)
//        │                  │     v
//        └──plan──────> stream_planned ──fetch thread──> streaming ──delivery──> writing ──> ready
//                                                            │  (failure or withdrawal)
//                                                            v
//                                              unassigned / compute_planned
//
// `unassigned` units (never planned, or given up by the stream lane) are the compute lane's to
// take, so no lane can wait forever for a unit nobody will produce. The compute lane's queue
// (its order of preference) lives here too because the controller edits it.
//
// Threads: the compute lane, the client's fetch and delivery threads and the controller all call
// in; every method takes the board's mutex. wait_for_change() lets the compute lane sleep until
// another lane changes something.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "plan/plan.h"

namespace sparkv::runtime {

using plan::UnitId;

enum class UnitState : uint8_t {
    unassigned,
    compute_planned,
    computing,
    stream_planned,
    streaming,
    writing,
    ready,
};
const char* unit_state_name(UnitState state);

class UnitBoard {
  public:
    explicit UnitBoard(plan::ContextShape shape);

    const plan::ContextShape& shape() const { return shape_; }

    // Applies a plan's lanes (meet-in-the-middle plans leave every unit unassigned: the lanes
    // claim chunks as they go) and takes its compute order as the compute lane's queue.
    void apply(const plan::Plan& plan);

    UnitState state(UnitId u) const;
    std::vector<UnitState> snapshot() const;  // every unit's state at one instant
    bool is_ready(UnitId u) const;
    bool all_ready() const;
    size_t count(UnitState state) const;
    // Units the stream lane still owns or may still deliver.
    size_t stream_pending() const;

    // --- stream lane ---
    // The fetch thread is about to request u: stream_planned -> streaming. With chunk_claim,
    // an entirely unassigned chunk is first claimed for streaming (meet-in-the-middle). False
    // when the unit is no longer the stream lane's (skip it).
    bool begin_stream(UnitId u, bool chunk_claim = false);
    // The delivery thread is about to write u into the cache: streaming -> writing. False when
    // the unit was withdrawn meanwhile (drop the bytes).
    bool begin_write(UnitId u);
    // writing -> ready, once the cache has committed the unit.
    void finish_write(UnitId u);
    // A unit the stream lane could not deliver (failure, or withdrawn by the controller): back
    // to the compute lane (compute_planned when `to_compute`, else unassigned).
    void stream_failed(UnitId u, bool to_compute = false);

    // --- compute lane ---
    // compute_planned or unassigned -> computing. False if another lane holds it.
    bool begin_compute(UnitId u);
    void finish_compute(UnitId u);
    // Units the compute lane should produce, in its order of preference (planned ones in the
    // planned order, then units given up by the stream lane).
    std::vector<UnitId> compute_queue() const;

    // --- controller ---
    // stream_planned -> compute_planned (appended to the compute queue). False otherwise.
    bool move_to_compute(UnitId u);
    // compute_planned -> stream_planned (removed from the compute queue). False otherwise.
    bool move_to_stream(UnitId u);

    // Blocks until something changed since `version` or the timeout passed; returns the
    // current version. version() reads it without waiting.
    uint64_t wait_for_change(uint64_t version, std::chrono::milliseconds timeout) const;
    uint64_t version() const;

  private:
    size_t index(UnitId u) const;
    void changed();  // under mutex_

    plan::ContextShape shape_;
    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    std::vector<UnitState> state_;
    std::vector<UnitId> queue_;  // compute lane's preference order (may hold stale entries)
    uint64_t version_ = 0;
};

}  // namespace sparkv::runtime
