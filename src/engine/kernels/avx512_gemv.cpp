// AVX-512 VNNI GEMV (one token) for every quantised weight type, straight on the memory-mapped
// blocks: decode reads every weight once per token, so the kernel's job is to keep the memory
// stream busy with as few instructions per block as possible.
//
// Rows are walked one after the other (one sequential stream per thread). Per row and block:
// unpack the 32 quants to unsigned bytes (simd_unpack.h), one 256-bit vpdpbusd against the
// token's 32 activation bytes, convert, and one FMA with the block scale times the activation
// scale into an 8-lane accumulator; the offset term (bias or min times the activation block sum)
// is a scalar FMA. Rows are reduced once at the end.
#include <immintrin.h>

#include <algorithm>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx512_kernels.h"
#include "engine/kernels/simd_unpack.h"

namespace sparkv::kernels::detail::avx512 {

namespace {

struct TokenView {
    const int8_t* qs;  // cols quants
    const float* d;    // scale of block b at d[b >> xd_shift]
    const float* off;  // offset sums per group (per 32 or per 16 elements)
    int xd_shift;
};

// Bytes ahead of the current block that the row stream is prefetched: the rows of a task are
// contiguous, so this keeps one sequential stream per thread running across row boundaries
// (rows of a few hundred bytes are too short for the hardware prefetcher to ramp up on).
constexpr int64_t kPrefetchBytes = 1024;

// One row against the token; two blocks per step with separate accumulators, so that the FMA
// latency does not serialise the blocks.
template <GgmlType kType>
float gemv_row(const uint8_t* row, size_t block_bytes, const TokenView& x, int64_t nb) {
    using U = simd::Unpack<kType>;
    constexpr int G = U::kGroups;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    float off_acc[2] = {0.0f, 0.0f};
    auto step = [&](int64_t b, int i) {
        _mm_prefetch(reinterpret_cast<const char*>(row + b * block_bytes + kPrefetchBytes),
                     _MM_HINT_T0);
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
        const float dx = x.d[b >> x.xd_shift];
        float s[2], o[2];
        const __m256i u = U::block(row, b, s, o);
        const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xv);
        __m256 scale;
        if constexpr (G == 1) {
            scale = _mm256_set1_ps(s[0] * dx);
            off_acc[i] += o[0] * x.off[b];
        } else {  // lanes 0-3: elements 0-15 (group 0), lanes 4-7: group 1
            scale = _mm256_set_m128(_mm_set1_ps(s[1] * dx), _mm_set1_ps(s[0] * dx));
            off_acc[i] += o[0] * x.off[2 * b] + o[1] * x.off[2 * b + 1];
        }
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[i]);
    };
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        step(b, 0);
        step(b + 1, 1);
    }
    if (b < nb) step(b, 0);
    return avx2::hsum(_mm256_add_ps(acc[0], acc[1])) + off_acc[0] + off_acc[1];
}

template <GgmlType kType>
void gemv_type(const GemmTask& task, int xd_shift, bool off16) {
    const Matrix& w = *task.w;
    const PackedActivations& a = *task.a;
    const int64_t t = task.t0;
    const TokenView x{a.qs + t * a.cols, a.d + t * a.d_stride,
                      off16 ? a.off16 + t * a.off16_stride : a.off + t * a.off_stride, xd_shift};
    const int64_t nb = w.cols / 32;
    // Bytes per 32-element block (a 256-element super-block is 8 of them on average).
    const size_t block_bytes = w.row_bytes / static_cast<size_t>(nb);
    float* y = task.y + t * task.ldy;
    for (int64_t r = task.r0; r < task.r1; ++r)
        y[r] = gemv_row<kType>(w.data + r * w.row_bytes, block_bytes, x, nb);
}

}  // namespace

bool gemv(const GemmTask& task) {
    switch (task.w->type) {
        case GgmlType::Q4_0:
            gemv_type<GgmlType::Q4_0>(task, 0, false);
            return true;
        case GgmlType::Q4_1:
            gemv_type<GgmlType::Q4_1>(task, 0, false);
            return true;
        case GgmlType::Q5_0:
            gemv_type<GgmlType::Q5_0>(task, 0, false);
            return true;
        case GgmlType::Q5_1:
            gemv_type<GgmlType::Q5_1>(task, 0, false);
            return true;
        case GgmlType::Q8_0:
            gemv_type<GgmlType::Q8_0>(task, 0, false);
            return true;
        case GgmlType::IQ4_NL:
            gemv_type<GgmlType::IQ4_NL>(task, 0, false);
            return true;
        case GgmlType::Q2_K:
            gemv_type<GgmlType::Q2_K>(task, 3, true);
            return true;
        case GgmlType::Q3_K:
            gemv_type<GgmlType::Q3_K>(task, 3, true);
            return true;
        case GgmlType::Q4_K:
            gemv_type<GgmlType::Q4_K>(task, 3, false);
            return true;
        case GgmlType::Q5_K:
            gemv_type<GgmlType::Q5_K>(task, 3, false);
            return true;
        case GgmlType::Q6_K:
            gemv_type<GgmlType::Q6_K>(task, 3, true);
            return true;
        case GgmlType::IQ4_XS:
            gemv_type<GgmlType::IQ4_XS>(task, 3, false);
            return true;
        default:
            return false;
    }
}

}  // namespace sparkv::kernels::detail::avx512
