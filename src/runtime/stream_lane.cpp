#include "runtime/stream_lane.h"

#include "common/error.h"
#include "common/timer.h"
#include "store/content_id.h"

namespace sparkv::runtime {

StreamLane::StreamLane(UnitClient& client, UnitBoard& board, KvCache& cache, Timeline& timeline,
                       double origin_s)
    : client_(client),
      board_(board),
      cache_(cache),
      timeline_(timeline),
      origin_s_(origin_s),
      manifest_(client.manifest()),
      schedule_(std::make_shared<FetchSchedule>()) {
    const auto fingerprint = parse_hex64(manifest_.model.fingerprint);
    if (!fingerprint)
        fail("manifest of {}: model fingerprint '{}' is not 16 hex digits", manifest_.context_id,
             manifest_.model.fingerprint);
    fingerprint_ = *fingerprint;
    level_names_ = manifest_.levels;
}

StreamLane::~StreamLane() {
    if (started_) stop();
}

double StreamLane::now_s() const {
    return now_seconds() - origin_s_;
}

void StreamLane::start(const std::vector<std::pair<UnitId, int>>& order, bool chunk_claims) {
    if (started_) fail("stream lane: already started");
    chunk_claims_ = chunk_claims;
    for (const auto& [u, level] : order) append(u, level);
    ClientCallbacks cb;
    cb.before_request = [this](const UnitRequest& r) {
        if (!board_.begin_stream({r.t, r.l}, chunk_claims_)) return false;
        request_sent({r.t, r.l});
        return true;
    };
    cb.on_timing = [this](const UnitTiming& t) {
        estimator_.add(t);
        timeline_.add_bandwidth({t.last_byte_s - origin_s_, t.throughput_bytes_per_s()});
    };
    cb.on_unit = [this](ReceivedUnit&& unit) { on_unit(std::move(unit)); };
    cb.on_failure = [this](const UnitFailure& f) { on_failure(f); };
    started_ = true;
    client_.start(schedule_, std::move(cb));
}

void StreamLane::append(UnitId u, int level, bool front) {
    if (level < 0 || static_cast<size_t>(level) >= level_names_.size())
        fail("stream lane: level {} is not one of the context's {} levels", level,
             level_names_.size());
    UnitRequest r{u.t, u.l, level_names_[static_cast<size_t>(level)]};
    front ? schedule_->add_front(std::move(r)) : schedule_->add(std::move(r));
}

void StreamLane::on_unit(ReceivedUnit&& unit) {
    const UnitId u{unit.unit.t, unit.unit.l};
    bytes_ += unit.bytes.size();
    request_done(u);
    last_activity_s_ = now_s();
    if (!board_.begin_write(u)) {  // withdrawn while it was on its way
        ++withdrawn_;
        return;
    }
    // A throw from here on reaches the client, which reports the unit as failed (on_failure).
    const auto& chunk = manifest_.chunks.at(static_cast<size_t>(u.t));
    const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                 static_cast<uint16_t>(manifest_.model.n_kv_heads),
                                 static_cast<uint16_t>(manifest_.model.head_dim)};
    const UnitWriteView view = cache_.unit_view(u.l, chunk.first_token, chunk.n_tokens);
    const double d0 = now_seconds();
    decoder_.decode(
        unit.bytes, {fingerprint_, static_cast<uint32_t>(u.t), static_cast<uint32_t>(u.l)}, shape,
        codec::KvView{view.k, view.head_stride}, codec::KvView{view.v, view.head_stride},
        codec::level_from_name(unit.unit.level));
    const double d1 = now_seconds();
    cache_.commit(view);
    board_.finish_write(u);
    ++units_;
    decode_s_ = decode_s_.load() + (d1 - d0);
    TimelineEvent e;
    e.kind = EventKind::stream;
    e.t = u.t;
    e.l = u.l;
    e.start_s = unit.timing.request_s - origin_s_;
    e.arrive_s = unit.timing.last_byte_s - origin_s_;
    e.end_s = d1 - origin_s_;
    e.bytes = unit.bytes.size();
    e.level = unit.unit.level;
    timeline_.add(std::move(e));
    last_activity_s_ = now_s();
}

void StreamLane::on_failure(const UnitFailure& f) {
    const UnitId u{f.unit.t, f.unit.l};
    request_done(u);
    last_activity_s_ = now_s();
    if (f.kind == FailureKind::cancelled) {
        ++withdrawn_;
        board_.stream_failed(u, true);
        return;
    }
    ++failures_;
    board_.stream_failed(u, false);
    {
        std::lock_guard lock(failures_mutex_);
        failure_list_.push_back(f);
    }
    TimelineEvent e;
    e.kind = EventKind::failure;
    e.t = u.t;
    e.l = u.l;
    e.start_s = e.end_s = now_s();
    e.note = f.reason;
    timeline_.add(std::move(e));
}

bool StreamLane::withdraw(UnitId u) {
    if (board_.move_to_compute(u)) {  // still pending: the fetch thread will skip it
        schedule_->remove(u.t, u.l);
        ++withdrawn_;
        return true;
    }
    // In flight: cut the transfer; the client reports it as withdrawn (on_failure).
    return board_.state(u) == UnitState::streaming && client_.cancel_unit(u.t, u.l);
}

void StreamLane::stop() {
    if (!started_) return;
    client_.cancel();
    client_.wait();
    started_ = false;
    // Whatever the lane still held goes back to the compute lane.
    const auto& shape = board_.shape();
    for (size_t i = 0; i < shape.n_units(); ++i) board_.stream_failed(shape.unit(i), false);
}

void StreamLane::finish() {
    if (!started_) return;
    schedule_->close();
    client_.wait();
    started_ = false;
}

StreamLaneStats StreamLane::stats() const {
    return {units_.load(), bytes_.load(), failures_.load(), withdrawn_.load(), decode_s_.load()};
}

std::vector<UnitFailure> StreamLane::failures() const {
    std::lock_guard lock(failures_mutex_);
    return failure_list_;
}

void StreamLane::request_sent(UnitId u) {
    std::lock_guard lock(in_flight_mutex_);
    in_flight_.emplace_back(u, now_s());
}

void StreamLane::request_done(UnitId u) {
    std::lock_guard lock(in_flight_mutex_);
    std::erase_if(in_flight_, [u](const auto& entry) { return entry.first == u; });
}

std::optional<double> StreamLane::in_flight_since() const {
    std::lock_guard lock(in_flight_mutex_);
    if (in_flight_.empty()) return std::nullopt;
    double oldest = in_flight_.front().second;
    for (const auto& [u, t] : in_flight_) oldest = std::min(oldest, t);
    return oldest;
}

}  // namespace sparkv::runtime
