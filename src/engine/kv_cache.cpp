#include "engine/kv_cache.h"

#include <algorithm>

#include "common/error.h"

namespace sparkv {

KvCache::KvCache(int n_layer, int n_kv_head, int head_dim, int64_t capacity)
    : n_layer_(n_layer), n_kv_head_(n_kv_head), head_dim_(head_dim), capacity_(capacity) {
    if (n_layer <= 0 || n_kv_head <= 0 || head_dim <= 0 || capacity <= 0)
        fail("KV cache: invalid shape ({} layers, {} heads, head size {}, {} positions)", n_layer,
             n_kv_head, head_dim, capacity);
    const size_t elements = static_cast<size_t>(n_layer) * n_kv_head * capacity * head_dim;
    keys_.assign(elements, 0);
    values_.assign(elements, 0);
    filled_.assign(static_cast<size_t>(n_layer),
                   std::vector<uint8_t>(static_cast<size_t>(capacity), 0));
}

UnitWriteView KvCache::unit_view(int layer, int64_t pos0, int64_t n) {
    if (layer < 0 || layer >= n_layer_ || pos0 < 0 || n <= 0 || pos0 + n > capacity_)
        fail("KV cache: unit at layer {} positions [{}, {}) is outside {} layers x {} positions",
             layer, pos0, pos0 + n, n_layer_, capacity_);
    {
        std::lock_guard lock(filled_mutex_);
        const auto& f = filled_[static_cast<size_t>(layer)];
        if (std::any_of(f.begin() + pos0, f.begin() + pos0 + n, [](uint8_t b) { return b != 0; }))
            fail("KV cache: layer {} positions [{}, {}) already hold KV; it is never overwritten",
                 layer, pos0, pos0 + n);
    }
    const size_t offset = layer_offset(layer) + static_cast<size_t>(pos0) * head_dim_;
    return {layer, pos0, n, keys_.data() + offset, values_.data() + offset, head_offset(1)};
}

void KvCache::mark_filled(int layer, int64_t pos0, int64_t n) {
    std::lock_guard lock(filled_mutex_);
    auto& f = filled_[static_cast<size_t>(layer)];
    std::fill(f.begin() + pos0, f.begin() + pos0 + n, uint8_t{1});
}

bool KvCache::is_filled(int layer, int64_t pos0, int64_t n) const {
    std::lock_guard lock(filled_mutex_);
    const auto& f = filled_[static_cast<size_t>(layer)];
    return std::all_of(f.begin() + pos0, f.begin() + pos0 + n, [](uint8_t b) { return b != 0; });
}

int64_t KvCache::first_missing(int layer, int64_t end) const {
    std::lock_guard lock(filled_mutex_);
    const auto& f = filled_[static_cast<size_t>(layer)];
    const auto it = std::find(f.begin(), f.begin() + end, uint8_t{0});
    return it - f.begin();
}

void KvCache::truncate(int64_t n) {
    std::lock_guard lock(filled_mutex_);
    for (auto& f : filled_) std::fill(f.begin() + std::min(n, capacity_), f.end(), uint8_t{0});
}

}  // namespace sparkv
