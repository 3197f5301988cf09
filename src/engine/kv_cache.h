// The fp16 KV cache of one context. Per layer, keys and values are laid out
// [kv_head][position][head_dim]: attention streams one head's keys contiguously, and one unit
// (chunk x layer) is one contiguous block per head, so import and export are plain copies.
// The cache also records which positions of each layer hold valid KV; the engine refuses to run
// a layer whose earlier positions are missing (the dependency rule of DESIGN.md section 3).
//
// Concurrency: positions are written by one owner at a time (the compute lane through the
// engine, or the stream lane through a UnitWriteView) and become visible only through commit /
// mark_filled, which publishes the bytes under the cache's mutex; readers check is_filled (also
// under it) before they read, and filled positions are never written again until truncate().
// Which thread owns which unit is decided outside the cache (runtime/unit_board.h).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace sparkv {

// Where one unit (a layer's K and V for positions [pos0, pos0 + n)) lives in the cache: head h's
// rows start at k + h * head_stride (values likewise), consecutive positions head_dim apart.
struct UnitWriteView {
    int layer = 0;
    int64_t pos0 = 0;
    int64_t n = 0;
    uint16_t* k = nullptr;
    uint16_t* v = nullptr;
    uint64_t head_stride = 0;  // elements
};

class KvCache {
  public:
    KvCache(int n_layer, int n_kv_head, int head_dim, int64_t capacity);

    int n_layer() const { return n_layer_; }
    int n_kv_head() const { return n_kv_head_; }
    int head_dim() const { return head_dim_; }
    int64_t capacity() const { return capacity_; }
    size_t bytes() const { return (keys_.size() + values_.size()) * sizeof(uint16_t); }

    uint16_t* keys(int layer) { return keys_.data() + layer_offset(layer); }
    uint16_t* values(int layer) { return values_.data() + layer_offset(layer); }
    const uint16_t* keys(int layer) const { return keys_.data() + layer_offset(layer); }
    const uint16_t* values(int layer) const { return values_.data() + layer_offset(layer); }
    // Start of head h's rows in a layer; consecutive positions are head_dim apart.
    size_t head_offset(int head) const { return static_cast<size_t>(head) * capacity_ * head_dim_; }

    // A unit's place in the cache, for its one writer to fill in place (e.g. a decoder writing
    // straight into it), then commit(). Throws Error if the range is outside the cache or any
    // of its positions is already filled: committed KV is never overwritten.
    UnitWriteView unit_view(int layer, int64_t pos0, int64_t n);
    // Publishes a view's positions as filled, once its last byte is written.
    void commit(const UnitWriteView& view) { mark_filled(view.layer, view.pos0, view.n); }

    // Validity bookkeeping, safe to call from the compute and the stream lane at once.
    void mark_filled(int layer, int64_t pos0, int64_t n);
    bool is_filled(int layer, int64_t pos0, int64_t n) const;
    // First position in [0, end) of the layer that holds no KV, or end if all do.
    int64_t first_missing(int layer, int64_t end) const;
    // Forget positions >= n in every layer (e.g. drop a previous question).
    void truncate(int64_t n);
    void clear() { truncate(0); }

  private:
    size_t layer_offset(int layer) const {
        return static_cast<size_t>(layer) * n_kv_head_ * capacity_ * head_dim_;
    }

    int n_layer_, n_kv_head_, head_dim_;
    int64_t capacity_;
    std::vector<uint16_t> keys_, values_;
    mutable std::mutex filled_mutex_;
    std::vector<std::vector<uint8_t>> filled_;  // [layer][position]
};

}  // namespace sparkv
