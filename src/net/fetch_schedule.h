// The order in which the client streams units. The planner owns it and may reorder, add and
// remove units while the fetch loop takes them from the front, so every operation is locked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sparkv {

struct UnitRequest {
    int32_t t = 0;
    int32_t l = 0;
    std::string level;
    bool operator==(const UnitRequest&) const = default;
};

class FetchSchedule {
  public:
    FetchSchedule() = default;
    explicit FetchSchedule(std::vector<UnitRequest> order) { assign(std::move(order)); }

    // Appends (or prepends) a unit; false if that (t, l) is already pending.
    bool add(UnitRequest unit);
    bool add_front(UnitRequest unit);
    // Replaces the whole pending order (duplicates of a (t, l) keep the first).
    void assign(std::vector<UnitRequest> order);
    // Drops a pending unit; false if it was not pending (already taken, or never added).
    bool remove(int32_t t, int32_t l);
    bool move_to_front(int32_t t, int32_t l);
    std::vector<UnitRequest> pending() const;
    size_t size() const;

    // No more units will be added: the fetch loop ends once the pending ones are done.
    void close();
    bool closed() const;

    // For the fetch loop: the next unit, waiting while the schedule is empty but open. nullopt
    // when closed and empty, or when interrupted() turns true (checked on every wake()).
    std::optional<UnitRequest> take(const std::function<bool()>& interrupted);
    void wake();

  private:
    bool contains_locked(int32_t t, int32_t l) const;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<UnitRequest> pending_;
    bool closed_ = false;
};

}  // namespace sparkv
