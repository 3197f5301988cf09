#include "runtime/timeline.h"

#include <algorithm>

namespace sparkv::runtime {

const char* event_kind_name(EventKind kind) {
    switch (kind) {
        case EventKind::compute:
            return "compute";
        case EventKind::pass_through:
            return "pass_through";
        case EventKind::query:
            return "query";
        case EventKind::stream:
            return "stream";
        case EventKind::failure:
            return "failure";
        case EventKind::migration:
            return "migration";
        case EventKind::phase:
            return "phase";
    }
    return "?";
}

void Timeline::add(TimelineEvent event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
}

void Timeline::add_bandwidth(BandwidthSample sample) {
    std::lock_guard lock(mutex_);
    bandwidth_.push_back(sample);
}

std::vector<TimelineEvent> Timeline::events() const {
    std::lock_guard lock(mutex_);
    return events_;
}

std::vector<BandwidthSample> Timeline::bandwidth() const {
    std::lock_guard lock(mutex_);
    return bandwidth_;
}

size_t Timeline::count(EventKind kind) const {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(std::count_if(
        events_.begin(), events_.end(), [&](const TimelineEvent& e) { return e.kind == kind; }));
}

nlohmann::json Timeline::to_json() const {
    std::lock_guard lock(mutex_);
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : events_) {
        nlohmann::json j = {
            {"kind", event_kind_name(e.kind)}, {"start_s", e.start_s}, {"end_s", e.end_s}};
        if (e.t >= 0) j["t"] = e.t, j["l"] = e.l;
        if (e.kind == EventKind::stream) j["arrive_s"] = e.arrive_s;
        if (e.bytes) j["bytes"] = e.bytes;
        if (!e.level.empty()) j["level"] = e.level;
        if (!e.note.empty()) j["note"] = e.note;
        events.push_back(std::move(j));
    }
    nlohmann::json bandwidth = nlohmann::json::array();
    for (const auto& b : bandwidth_)
        bandwidth.push_back({{"t_s", b.t_s}, {"bytes_per_s", b.bytes_per_s}});
    return {{"events", events}, {"bandwidth", bandwidth}};
}

}  // namespace sparkv::runtime
