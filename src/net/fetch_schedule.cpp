#include "net/fetch_schedule.h"

#include <algorithm>

namespace sparkv {

bool FetchSchedule::contains_locked(int32_t t, int32_t l) const {
    return std::any_of(pending_.begin(), pending_.end(),
                       [&](const UnitRequest& u) { return u.t == t && u.l == l; });
}

bool FetchSchedule::add(UnitRequest unit) {
    {
        std::lock_guard lock(mutex_);
        if (contains_locked(unit.t, unit.l)) return false;
        pending_.push_back(std::move(unit));
    }
    changed_.notify_all();
    return true;
}

bool FetchSchedule::add_front(UnitRequest unit) {
    {
        std::lock_guard lock(mutex_);
        if (contains_locked(unit.t, unit.l)) return false;
        pending_.push_front(std::move(unit));
    }
    changed_.notify_all();
    return true;
}

void FetchSchedule::assign(std::vector<UnitRequest> order) {
    {
        std::lock_guard lock(mutex_);
        pending_.clear();
        for (auto& unit : order)
            if (!contains_locked(unit.t, unit.l)) pending_.push_back(std::move(unit));
    }
    changed_.notify_all();
}

bool FetchSchedule::remove(int32_t t, int32_t l) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const UnitRequest& u) { return u.t == t && u.l == l; });
    if (it == pending_.end()) return false;
    pending_.erase(it);
    return true;
}

bool FetchSchedule::move_to_front(int32_t t, int32_t l) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const UnitRequest& u) { return u.t == t && u.l == l; });
    if (it == pending_.end()) return false;
    std::rotate(pending_.begin(), it, it + 1);
    return true;
}

std::vector<UnitRequest> FetchSchedule::pending() const {
    std::lock_guard lock(mutex_);
    return {pending_.begin(), pending_.end()};
}

size_t FetchSchedule::size() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
}

void FetchSchedule::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    changed_.notify_all();
}

bool FetchSchedule::closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
}

std::optional<UnitRequest> FetchSchedule::take(const std::function<bool()>& interrupted) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !pending_.empty() || closed_ || interrupted(); });
    if (interrupted() || pending_.empty()) return std::nullopt;
    UnitRequest unit = std::move(pending_.front());
    pending_.pop_front();
    return unit;
}

void FetchSchedule::wake() {
    // Taking the lock orders the caller's flag update before the waiter's re-check.
    { std::lock_guard lock(mutex_); }
    changed_.notify_all();
}

}  // namespace sparkv
