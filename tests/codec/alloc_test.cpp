// Steady-state decoding must not allocate: a Decoder grows its scratch once, then reuses it.
// This binary replaces the global operator new to count allocations.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "codec/codec.h"
#include "kv_test_data.h"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](size_t size) {
    return operator new(size);
}
void* operator new(size_t size, const std::nothrow_t&) noexcept {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(size ? size : 1);
}
void* operator new[](size_t size, const std::nothrow_t& tag) noexcept {
    return operator new(size, tag);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

namespace sparkv::codec {
namespace {

TEST(Allocation, DecodeAllocatesNothingOnceWarm) {
    const UnitShape s{1024, 3, 64};
    const auto kv = testing::make_kv(s, 1);
    std::vector<std::vector<uint8_t>> units;
    for (Level level : {Level::q5h, Level::fp16, Level::int8, Level::q3h}) {
        units.push_back(encode_unit({1, 0, 4}, s, contiguous(kv.k.data(), s),
                                    contiguous(kv.v.data(), s), EncodeOptions(level, 30)));
    }
    std::vector<uint16_t> k(s.elements()), v(s.elements());
    const long at_start = g_allocations.load();
    Decoder decoder;
    for (const auto& unit : units) {  // warm up: scratch grows to the largest unit
        decoder.decode(unit, {1, 0, 4}, s, contiguous(k.data(), s), contiguous(v.data(), s));
    }
    const long before = g_allocations.load();
    EXPECT_GT(before - at_start, 0);  // the counter sees the warm-up growth
    for (int round = 0; round < 3; ++round) {
        for (const auto& unit : units) {
            decoder.decode(unit, {1, 0, 4}, s, contiguous(k.data(), s), contiguous(v.data(), s));
        }
    }
    EXPECT_EQ(g_allocations.load() - before, 0);
}

}  // namespace
}  // namespace sparkv::codec
