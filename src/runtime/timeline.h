// What happened during one request, unit by unit: every run records which lane produced each
// unit, when, how many bytes at which level, what failed and what the controller moved, plus
// the bandwidth the stream lane observed. Times are seconds since the request started (the
// moment the device had the context id and the question). Rendered as JSON for scripts and as
// an SVG picture (timeline_svg.cpp) for people.
//
// Threads: every lane appends; all methods lock.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sparkv::runtime {

enum class EventKind : uint8_t {
    compute,       // a unit computed by the compute lane
    pass_through,  // a layer of a chunk recomputed over streamed KV to go deeper
    query,         // a layer of the question
    stream,        // a unit streamed: start = request, arrive = last byte, end = decoded
    failure,       // a unit the stream lane could not deliver
    migration,     // the controller moved a unit to the other lane
    phase,         // manifest fetch, planning, LM head ... (t = l = -1)
};
const char* event_kind_name(EventKind kind);

struct TimelineEvent {
    EventKind kind = EventKind::compute;
    int32_t t = -1;
    int32_t l = -1;
    double start_s = 0;
    double end_s = 0;
    double arrive_s = 0;  // stream: last byte received (decode runs from then to end_s)
    uint64_t bytes = 0;
    std::string level;
    std::string note;  // failure reason, migration direction, phase name
};

struct BandwidthSample {
    double t_s = 0;
    double bytes_per_s = 0;  // one unit's throughput
};

class Timeline {
  public:
    void add(TimelineEvent event);
    void add_bandwidth(BandwidthSample sample);
    std::vector<TimelineEvent> events() const;
    std::vector<BandwidthSample> bandwidth() const;
    size_t count(EventKind kind) const;

    nlohmann::json to_json() const;

  private:
    mutable std::mutex mutex_;
    std::vector<TimelineEvent> events_;
    std::vector<BandwidthSample> bandwidth_;
};

struct TimelinePicture {
    std::string title;
    double ttft_s = 0;
    int n_chunks = 0;
    int n_layers = 0;
    std::string energy_note;  // e.g. "energy (modelled): 12.3 J"
    // The link's capacity over time (bytes/s, same time base) when the run was paced by a known
    // trace; drawn under the observed bandwidth. Empty when unknown.
    std::vector<BandwidthSample> capacity;
};

// An SVG of both lanes unit by unit over time (compute units coloured by chunk, streamed units
// with their transfer and decode parts, failures and migrations marked) with the bandwidth under
// them.
std::string render_timeline_svg(const Timeline& timeline, const TimelinePicture& picture);

}  // namespace sparkv::runtime
