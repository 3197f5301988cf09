#include "runtime/unit_board.h"

#include <algorithm>

#include "common/error.h"

namespace sparkv::runtime {

const char* unit_state_name(UnitState state) {
    switch (state) {
        case UnitState::unassigned:
            return "unassigned";
        case UnitState::compute_planned:
            return "compute_planned";
        case UnitState::computing:
            return "computing";
        case UnitState::stream_planned:
            return "stream_planned";
        case UnitState::streaming:
            return "streaming";
        case UnitState::writing:
            return "writing";
        case UnitState::ready:
            return "ready";
    }
    return "?";
}

UnitBoard::UnitBoard(plan::ContextShape shape)
    : shape_(std::move(shape)), state_(shape_.n_units(), UnitState::unassigned) {}

size_t UnitBoard::index(UnitId u) const {
    if (u.t < 0 || u.t >= shape_.n_chunks() || u.l < 0 || u.l >= shape_.n_layers)
        fail("unit ({}, {}) is not in this context", u.t, u.l);
    return shape_.index(u);
}

void UnitBoard::changed() {
    ++version_;
    cv_.notify_all();
}

void UnitBoard::apply(const plan::Plan& plan) {
    std::lock_guard lock(mutex_);
    if (plan.lane.size() != state_.size()) fail("board: the plan is for another context");
    for (size_t i = 0; i < state_.size(); ++i) {
        if (state_[i] != UnitState::unassigned) continue;  // already produced or in flight
        if (plan.dispatch == plan::Dispatch::meet_in_the_middle) continue;
        state_[i] = plan.lane[i] == plan::Lane::compute ? UnitState::compute_planned
                                                        : UnitState::stream_planned;
    }
    queue_ = plan.compute_order;
    changed();
}

UnitState UnitBoard::state(UnitId u) const {
    std::lock_guard lock(mutex_);
    return state_[index(u)];
}

std::vector<UnitState> UnitBoard::snapshot() const {
    std::lock_guard lock(mutex_);
    return state_;
}

bool UnitBoard::is_ready(UnitId u) const {
    return state(u) == UnitState::ready;
}

bool UnitBoard::all_ready() const {
    std::lock_guard lock(mutex_);
    return std::all_of(state_.begin(), state_.end(),
                       [](UnitState s) { return s == UnitState::ready; });
}

size_t UnitBoard::count(UnitState which) const {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(std::count(state_.begin(), state_.end(), which));
}

size_t UnitBoard::stream_pending() const {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(std::count_if(state_.begin(), state_.end(), [](UnitState s) {
        return s == UnitState::stream_planned || s == UnitState::streaming ||
               s == UnitState::writing;
    }));
}

bool UnitBoard::begin_stream(UnitId u, bool chunk_claim) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (chunk_claim && state_[i] == UnitState::unassigned) {
        const size_t first = shape_.index({u.t, 0});
        const auto begin = state_.begin() + static_cast<std::ptrdiff_t>(first);
        const auto end = begin + shape_.n_layers;
        if (std::all_of(begin, end, [](UnitState s) { return s == UnitState::unassigned; }))
            std::fill(begin, end, UnitState::stream_planned);
    }
    if (state_[i] != UnitState::stream_planned) return false;
    state_[i] = UnitState::streaming;
    changed();
    return true;
}

bool UnitBoard::begin_write(UnitId u) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (state_[i] != UnitState::streaming) return false;
    state_[i] = UnitState::writing;
    changed();
    return true;
}

void UnitBoard::finish_write(UnitId u) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (state_[i] != UnitState::writing)
        fail("board: unit ({}, {}) finished writing while {}", u.t, u.l,
             unit_state_name(state_[i]));
    state_[i] = UnitState::ready;
    changed();
}

void UnitBoard::stream_failed(UnitId u, bool to_compute) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    const UnitState s = state_[i];
    if (s != UnitState::stream_planned && s != UnitState::streaming && s != UnitState::writing)
        return;  // already taken over by the compute lane
    state_[i] = to_compute ? UnitState::compute_planned : UnitState::unassigned;
    queue_.push_back(u);
    changed();
}

bool UnitBoard::begin_compute(UnitId u) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (state_[i] != UnitState::compute_planned && state_[i] != UnitState::unassigned) return false;
    state_[i] = UnitState::computing;
    changed();
    return true;
}

void UnitBoard::finish_compute(UnitId u) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (state_[i] != UnitState::computing)
        fail("board: unit ({}, {}) finished computing while {}", u.t, u.l,
             unit_state_name(state_[i]));
    state_[i] = UnitState::ready;
    changed();
}

std::vector<UnitId> UnitBoard::compute_queue() const {
    std::lock_guard lock(mutex_);
    std::vector<UnitId> out;
    std::vector<bool> seen(state_.size(), false);
    const auto take = [&](UnitId u) {
        const size_t i = shape_.index(u);
        if (seen[i]) return;
        if (state_[i] == UnitState::compute_planned || state_[i] == UnitState::unassigned) {
            seen[i] = true;
            out.push_back(u);
        }
    };
    for (UnitId u : queue_) take(u);
    // Units nobody planned (meet-in-the-middle, or a plan that left some out): chunk order.
    for (size_t i = 0; i < state_.size(); ++i) take(shape_.unit(i));
    return out;
}

bool UnitBoard::move_to_compute(UnitId u) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (state_[i] != UnitState::stream_planned) return false;
    state_[i] = UnitState::compute_planned;
    queue_.push_back(u);
    changed();
    return true;
}

bool UnitBoard::move_to_stream(UnitId u) {
    std::lock_guard lock(mutex_);
    const size_t i = index(u);
    if (state_[i] != UnitState::compute_planned) return false;
    state_[i] = UnitState::stream_planned;
    changed();
    return true;
}

uint64_t UnitBoard::wait_for_change(uint64_t version, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return version_ != version; });
    return version_;
}

uint64_t UnitBoard::version() const {
    std::lock_guard lock(mutex_);
    return version_;
}

}  // namespace sparkv::runtime
