// AVX2 + F16C versions of the quantisation kernels, eight elements per step. This file alone is
// compiled with -mavx2 -mf16c and is only called after a CPU check. It deliberately uses no C++
// library templates or shared inline functions: an inline function compiled here could be picked
// by the linker for the whole program and run on a CPU without AVX2.
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

#include "codec/quantize.h"

namespace sparkv::codec {

namespace {

constexpr int kLanes = 8;

// Loads n <= 8 halves as floats; missing lanes are zero.
__m256 load_halves(const uint16_t* p, int64_t n) {
    if (n == kLanes) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    alignas(16) uint16_t tmp[kLanes] = {};
    std::memcpy(tmp, p, static_cast<size_t>(n) * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}

__m256 load_floats(const float* p, int64_t n) {
    if (n == kLanes) return _mm256_loadu_ps(p);
    alignas(32) float tmp[kLanes] = {};
    std::memcpy(tmp, p, static_cast<size_t>(n) * sizeof(float));
    return _mm256_load_ps(tmp);
}

void store_halves(uint16_t* p, __m256 v, int64_t n) {
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (n == kLanes) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
        return;
    }
    alignas(16) uint16_t tmp[kLanes];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), h);
    std::memcpy(p, tmp, static_cast<size_t>(n) * sizeof(uint16_t));
}

__m256 load_symbols(const uint8_t* p, int64_t n) {
    __m128i bytes;
    if (n == kLanes) {
        bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    } else {
        alignas(16) uint8_t tmp[16] = {};
        std::memcpy(tmp, p, static_cast<size_t>(n));
        bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}

void store_symbols(uint8_t* p, __m256 levels, int64_t n) {
    const __m256i q = _mm256_cvtps_epi32(levels);  // rounds to nearest even, like nearbyint
    const __m128i words =
        _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i bytes = _mm_packus_epi16(words, words);
    if (n == kLanes) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(p), bytes);
        return;
    }
    alignas(16) uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
    std::memcpy(p, tmp, static_cast<size_t>(n));
}

int64_t lanes_left(int64_t cols, int64_t c) {
    return cols - c < kLanes ? cols - c : kLanes;
}

// Rounds (x - min) * inv_step to its level, clamping first so the conversion is always in range
// (clamping to integer bounds before or after rounding gives the same level).
__m256 level_of(__m256 x, __m256 min, __m256 inv_step, __m256 qmax) {
    const __m256 scaled = _mm256_mul_ps(_mm256_sub_ps(x, min), inv_step);
    return _mm256_min_ps(_mm256_max_ps(scaled, _mm256_setzero_ps()), qmax);
}

__m256 value_of(__m256 level, __m256 min, __m256 step) {
    const __m256 half_max = _mm256_set1_ps(65504.0f);
    const __m256 value = _mm256_add_ps(_mm256_mul_ps(level, step), min);
    return _mm256_min_ps(_mm256_max_ps(value, _mm256_sub_ps(_mm256_setzero_ps(), half_max)),
                         half_max);
}

void minmax_per_col(const uint16_t* x, int64_t rows, int64_t cols, float* mins, float* maxs) {
    for (int64_t c = 0; c < cols; c += kLanes) {
        const int64_t n = lanes_left(cols, c);
        __m256 lo = _mm256_set1_ps(rows ? __builtin_inff() : 0.0f);
        __m256 hi = _mm256_set1_ps(rows ? -__builtin_inff() : 0.0f);
        for (int64_t r = 0; r < rows; ++r) {
            const __m256 v = load_halves(x + r * cols + c, n);
            lo = _mm256_min_ps(lo, v);
            hi = _mm256_max_ps(hi, v);
        }
        alignas(32) float lo_out[kLanes], hi_out[kLanes];
        _mm256_store_ps(lo_out, lo);
        _mm256_store_ps(hi_out, hi);
        std::memcpy(mins + c, lo_out, static_cast<size_t>(n) * sizeof(float));
        std::memcpy(maxs + c, hi_out, static_cast<size_t>(n) * sizeof(float));
    }
}

float horizontal(__m256 v, bool want_max) {
    __m128 m = want_max ? _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))
                        : _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 shuffled = _mm_movehl_ps(m, m);
    m = want_max ? _mm_max_ps(m, shuffled) : _mm_min_ps(m, shuffled);
    shuffled = _mm_shuffle_ps(m, m, 1);
    m = want_max ? _mm_max_ss(m, shuffled) : _mm_min_ss(m, shuffled);
    return _mm_cvtss_f32(m);
}

void minmax_per_row(const uint16_t* x, int64_t rows, int64_t cols, float* mins, float* maxs) {
    for (int64_t r = 0; r < rows; ++r) {
        if (cols == 0) {
            mins[r] = maxs[r] = 0.0f;
            continue;
        }
        __m256 lo = _mm256_set1_ps(__builtin_inff()), hi = _mm256_set1_ps(-__builtin_inff());
        for (int64_t c = 0; c < cols; c += kLanes) {
            const int64_t n = lanes_left(cols, c);
            const __m256 v = load_halves(x + r * cols + c, n);
            // Padding lanes must not win: blend them back to the running values.
            const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256 live = _mm256_castsi256_ps(
                _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane));
            lo = _mm256_blendv_ps(lo, _mm256_min_ps(lo, v), live);
            hi = _mm256_blendv_ps(hi, _mm256_max_ps(hi, v), live);
        }
        mins[r] = horizontal(lo, false);
        maxs[r] = horizontal(hi, true);
    }
}

void quantize_per_col(const uint16_t* x, int64_t rows, int64_t cols, const float* mins,
                      const float* inv_steps, int qmax, uint8_t* symbols) {
    const __m256 top = _mm256_set1_ps(static_cast<float>(qmax));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; c += kLanes) {
            const int64_t n = lanes_left(cols, c);
            const __m256 level =
                level_of(load_halves(x + r * cols + c, n), load_floats(mins + c, n),
                         load_floats(inv_steps + c, n), top);
            store_symbols(symbols + r * cols + c, level, n);
        }
    }
}

void quantize_per_row(const uint16_t* x, int64_t rows, int64_t cols, const float* mins,
                      const float* inv_steps, int qmax, uint8_t* symbols) {
    const __m256 top = _mm256_set1_ps(static_cast<float>(qmax));
    for (int64_t r = 0; r < rows; ++r) {
        const __m256 min = _mm256_set1_ps(mins[r]), inv_step = _mm256_set1_ps(inv_steps[r]);
        for (int64_t c = 0; c < cols; c += kLanes) {
            const int64_t n = lanes_left(cols, c);
            const __m256 level = level_of(load_halves(x + r * cols + c, n), min, inv_step, top);
            store_symbols(symbols + r * cols + c, level, n);
        }
    }
}

void dequantize_per_col(const uint8_t* symbols, int64_t rows, int64_t cols, const float* mins,
                        const float* steps, uint16_t* out) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; c += kLanes) {
            const int64_t n = lanes_left(cols, c);
            const __m256 value = value_of(load_symbols(symbols + r * cols + c, n),
                                          load_floats(mins + c, n), load_floats(steps + c, n));
            store_halves(out + r * cols + c, value, n);
        }
    }
}

void dequantize_per_row(const uint8_t* symbols, int64_t rows, int64_t cols, const float* mins,
                        const float* steps, uint16_t* out) {
    for (int64_t r = 0; r < rows; ++r) {
        const __m256 min = _mm256_set1_ps(mins[r]), step = _mm256_set1_ps(steps[r]);
        for (int64_t c = 0; c < cols; c += kLanes) {
            const int64_t n = lanes_left(cols, c);
            store_halves(out + r * cols + c,
                         value_of(load_symbols(symbols + r * cols + c, n), min, step), n);
        }
    }
}

}  // namespace

const QuantKernels* avx2_quant_kernels() {
    static constexpr QuantKernels kernels{
        "avx2",           minmax_per_col,     minmax_per_row,    quantize_per_col,
        quantize_per_row, dequantize_per_col, dequantize_per_row};
    // The avx2 check includes the OS saving YMM state; F16C is read from CPUID leaf 1 directly
    // (not every compiler's __builtin_cpu_supports knows it).
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
    const bool supported = __builtin_cpu_supports("avx2") && f16c;
    return supported ? &kernels : nullptr;
}

}  // namespace sparkv::codec
