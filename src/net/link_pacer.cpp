#include "net/link_pacer.h"

#include <algorithm>

namespace sparkv {

void StopSignal::request_stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
}

bool StopSignal::stop_requested() const {
    std::lock_guard lock(mutex_);
    return stop_;
}

bool StopSignal::sleep_until(std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mutex_);
    return !wake_.wait_until(lock, deadline, [&] { return stop_; });
}

LinkPacer::LinkPacer(const LinkConfig& config, Clock::time_point start)
    : start_(start), cursor_(config) {}

int64_t LinkPacer::now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
}

double LinkPacer::link_time(Clock::time_point when) const {
    return std::chrono::duration<double>(when - start_).count();
}

void LinkPacer::begin_body() {
    std::lock_guard lock(mutex_);
    if (active_bodies_++ > 0) return;  // the link is busy with another body: nothing was lost
    carry_bytes_ = 0;
    cursor_.skip_to(now_ns());
}

void LinkPacer::end_body() {
    std::lock_guard lock(mutex_);
    if (active_bodies_ > 0) --active_bodies_;
}

size_t LinkPacer::wait_for_credit(size_t max_bytes, const StopSignal& stop) {
    if (max_bytes == 0) return 0;
    std::unique_lock lock(mutex_);
    while (carry_bytes_ == 0) {
        const auto due = start_ + std::chrono::nanoseconds(cursor_.time_ns());
        if (Clock::now() < due) {
            lock.unlock();  // another body may take this opportunity meanwhile: look again
            if (!stop.sleep_until(due)) return 0;
            lock.lock();
            continue;
        }
        if (stop.stop_requested()) return 0;
        // Take every opportunity that is due by now: one normally, several after a late wake-up.
        const int64_t now = now_ns();
        do {
            carry_bytes_ += cursor_.bytes();
            cursor_.advance();
        } while (cursor_.time_ns() <= now && carry_bytes_ < max_bytes);
    }
    const size_t grant = static_cast<size_t>(std::min<uint64_t>(carry_bytes_, max_bytes));
    carry_bytes_ -= grant;
    return grant;
}

}  // namespace sparkv
