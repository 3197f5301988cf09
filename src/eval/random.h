// A uniform index from a 64-bit Mersenne Twister, the same on every platform (unlike
// std::uniform_int_distribution, whose algorithm the standard leaves open).
#pragma once

#include <cstdint>
#include <random>

namespace sparkv::eval {

// Uniform in [0, n), n > 0, by rejection (no modulo bias).
inline size_t uniform_index(std::mt19937_64& rng, size_t n) {
    const uint64_t bound = static_cast<uint64_t>(n);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
        x = rng();
    } while (x >= limit);
    return static_cast<size_t>(x % bound);
}

}  // namespace sparkv::eval
