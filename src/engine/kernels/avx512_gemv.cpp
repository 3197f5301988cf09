// AVX-512 VNNI GEMV (one token) for every quantised weight type, straight on the memory-mapped
// blocks: decode reads every weight once per token, so the kernel's job is to keep the memory
// stream busy with as few instructions per block as possible.
//
// Rows are walked one after the other (one sequential stream per thread, prefetched ahead). Per
// row and block: unpack the 32 quants to unsigned bytes (simd_unpack.h) and one 256-bit vpdpbusd
// against the token's 32 activation bytes; the block scales (times the activation scales) and
// the offset terms (bias or min times the activation block sums) are applied 8 blocks at a time
// with lanes = blocks (gemv_row).
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

// The 8 int32 lane vectors of 8 blocks' vpdpbusd results, summed per block: lane i = block i.
inline __m256i sum_per_block(const __m256i (&p)[8]) {
    const __m256i a =
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i b =
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    // a = [blocks 0-3, low lanes | blocks 0-3, high lanes], b likewise for blocks 4-7.
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

// Block scales and offset factors of 8 consecutive blocks from b (simd_unpack.h's scale[0] and
// off[0] of each), as vectors. Types with one scale group per block only.
template <GgmlType kType>
struct Scales8;

// 32-element blocks: the fp16 scale (and min) sit at the start of every block; one gather.
template <GgmlType kType, size_t kBlockBytes, bool kAffine, int kBias>
struct LegacyScales8 {
    static void get(const uint8_t* row, int64_t b, __m256& d8, __m256& o8) {
        constexpr int bs = static_cast<int>(kBlockBytes);
        const __m256i index =
            _mm256_setr_epi32(0, bs, 2 * bs, 3 * bs, 4 * bs, 5 * bs, 6 * bs, 7 * bs);
        const __m256i fields = _mm256_i32gather_epi32(
            reinterpret_cast<const int*>(row + b * static_cast<int64_t>(kBlockBytes)), index, 1);
        d8 = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(fields));  // low half: d
        if constexpr (kAffine) {
            o8 = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(fields, 16)));  // m
        } else {
            o8 = _mm256_mul_ps(d8, _mm256_set1_ps(-static_cast<float>(kBias)));
        }
    }
};
template <>
struct Scales8<GgmlType::Q4_0> : LegacyScales8<GgmlType::Q4_0, sizeof(BlockQ4_0), false, 8> {};
template <>
struct Scales8<GgmlType::Q4_1> : LegacyScales8<GgmlType::Q4_1, sizeof(BlockQ4_1), true, 0> {};
template <>
struct Scales8<GgmlType::Q5_0> : LegacyScales8<GgmlType::Q5_0, sizeof(BlockQ5_0), false, 16> {};
template <>
struct Scales8<GgmlType::Q5_1> : LegacyScales8<GgmlType::Q5_1, sizeof(BlockQ5_1), true, 0> {};
template <>
struct Scales8<GgmlType::Q8_0> : LegacyScales8<GgmlType::Q8_0, sizeof(BlockQ8_0), false, 128> {};
template <>
struct Scales8<GgmlType::IQ4_NL>
    : LegacyScales8<GgmlType::IQ4_NL, sizeof(BlockIQ4_NL), false, 128> {};

// Super-blocks: blocks b .. b + 7 are the 8 sub-blocks of super-block b / 8.
template <typename Block>
struct KAffineScales8 {  // Q4_K, Q5_K: d * scale_j, -dmin * min_j
    static void get(const uint8_t* row, int64_t b, __m256& d8, __m256& o8) {
        const auto* blk = reinterpret_cast<const Block*>(row) + b / 8;
        alignas(32) int32_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) blocks::k_scale_min(blk->scales, j, sc[j], m[j]);
        d8 = _mm256_mul_ps(
            _mm256_set1_ps(simd::half_at(&blk->d)),
            _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sc))));
        o8 = _mm256_mul_ps(
            _mm256_set1_ps(-simd::half_at(&blk->dmin)),
            _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(m))));
    }
};
template <>
struct Scales8<GgmlType::Q4_K> : KAffineScales8<BlockQ4_K> {};
template <>
struct Scales8<GgmlType::Q5_K> : KAffineScales8<BlockQ5_K> {};
template <>
struct Scales8<GgmlType::IQ4_XS> {  // d * (ls_j - 32); the levels are stored + 128
    static void get(const uint8_t* row, int64_t b, __m256& d8, __m256& o8) {
        const auto* blk = reinterpret_cast<const BlockIQ4_XS*>(row) + b / 8;
        alignas(32) int32_t ls[8];
        for (int j = 0; j < 8; ++j) ls[j] = blocks::iq4_xs_scale(*blk, j);
        d8 = _mm256_mul_ps(
            _mm256_set1_ps(simd::half_at(&blk->d)),
            _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ls))));
        o8 = _mm256_mul_ps(d8, _mm256_set1_ps(-128.0f));
    }
};

// One block of one row against the token (scale and offset folded in), for blocks that do not
// make a group of 8 and for the types with two scale groups per block.
template <GgmlType kType>
inline void gemv_block(const uint8_t* row, int64_t b, const TokenView& x, __m256& acc,
                       float& off_acc) {
    constexpr int G = simd::Unpack<kType>::kGroups;
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
    const float dx = x.d[b >> x.xd_shift];
    float s[2], o[2];
    const __m256i u = simd::Unpack<kType>::block(row, b, s, o);
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xv);
    __m256 scale;
    if constexpr (G == 1) {
        scale = _mm256_set1_ps(s[0] * dx);
        off_acc += o[0] * x.off[b];
    } else {  // lanes 0-3: elements 0-15 (group 0), lanes 4-7: group 1
        scale = _mm256_set_m128(_mm_set1_ps(s[1] * dx), _mm_set1_ps(s[0] * dx));
        off_acc += o[0] * x.off[2 * b] + o[1] * x.off[2 * b + 1];
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc);
}

// One row against the token. Types with one scale group per block go 8 blocks at a time with
// lanes = blocks: 8 vpdpbusd, one horizontal reduction to the 8 block sums, then one convert and
// two FMAs with the 8 blocks' scales (a gather of the fp16 fields) and offsets, instead of
// scalar scale arithmetic per block. The others go block by block, two accumulators.
template <GgmlType kType>
float gemv_row(const uint8_t* row, size_t block_bytes, const TokenView& x, int64_t nb) {
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    float off_acc[2] = {0.0f, 0.0f};
    int64_t b = 0;
    if constexpr (simd::Unpack<kType>::kGroups == 1) {
        __m256 off8 = _mm256_setzero_ps();
        for (; b + 8 <= nb; b += 8) {
            const uint8_t* next = row + b * static_cast<int64_t>(block_bytes) + kPrefetchBytes;
            for (size_t line = 0; line < 8 * block_bytes; line += 64)
                _mm_prefetch(reinterpret_cast<const char*>(next + line), _MM_HINT_T0);
            __m256i p[8];
            SPARKV_UNROLL
            for (int i = 0; i < 8; ++i) {
                const __m256i xv =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * (b + i)));
                p[i] = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                           simd::unpack_quants<kType>(row, b + i), xv);
            }
            __m256 d8, o8;
            Scales8<kType>::get(row, b, d8, o8);
            const __m256 dx8 =
                x.xd_shift == 0 ? _mm256_loadu_ps(x.d + b) : _mm256_set1_ps(x.d[b >> x.xd_shift]);
            acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_per_block(p)), _mm256_mul_ps(d8, dx8),
                                     acc[0]);
            off8 = _mm256_fmadd_ps(o8, _mm256_loadu_ps(x.off + b), off8);
        }
        acc[1] = off8;
    } else {
        for (; b + 2 <= nb; b += 2) {
            _mm_prefetch(reinterpret_cast<const char*>(row + b * block_bytes + kPrefetchBytes),
                         _MM_HINT_T0);
            gemv_block<kType>(row, b, x, acc[0], off_acc[0]);
            gemv_block<kType>(row, b + 1, x, acc[1], off_acc[1]);
        }
    }
    for (; b < nb; ++b) gemv_block<kType>(row, b, x, acc[0], off_acc[0]);
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
