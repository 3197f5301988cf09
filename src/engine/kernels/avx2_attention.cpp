// AVX2 flash attention for one (KV head, query tile, key range) task.
//
// The group's query heads are processed together (M = rows x heads query vectors) against one
// K/V tile converted from fp16 once. Queries are transposed once per task (Qt[d][m], pre-scaled),
// so scores come out transposed too, S[j][m]: the K tile stays in its natural [key][dim] layout,
// and the online softmax (max, exp, sum per query vector) runs across query vectors in SIMD
// lanes. Both products are register-blocked FMA micro-kernels:
//   S[j][m..m+8k] = sum_d K[j][d] * Qt[d][m..]      (4 keys x 3 vectors of query vectors)
//   O[m][d..d+32] += sum_j S[j][m] * V[j][d..]      (3 query vectors x 32 dims)
// Only key tiles that reach the causal diagonal pay for masking; tiles beyond every query's
// position are never visited.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/kernels/avx2_common.h"
#include "engine/kernels/avx2_kernels.h"

namespace sparkv::kernels::detail::avx2 {

namespace {

float* align32(float* p) {
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 31) & ~uintptr_t{31});
}

// S[j][v*8..] for KJ keys starting at j0 and NV query vectors starting at vector v0.
template <int KJ, int NV>
inline void scores_block(const float* kf, int hd, const float* qt, int64_t mp, float* s, int j0, int v0) {
    __m256 acc[KJ][NV];
    SPARKV_UNROLL
    for (int j = 0; j < KJ; ++j)
        SPARKV_UNROLL
        for (int v = 0; v < NV; ++v) acc[j][v] = _mm256_setzero_ps();
    for (int d = 0; d < hd; ++d) {
        __m256 q[NV];
        SPARKV_UNROLL
        for (int v = 0; v < NV; ++v) q[v] = _mm256_load_ps(qt + d * mp + 8 * (v0 + v));
        SPARKV_UNROLL
        for (int j = 0; j < KJ; ++j) {
            const __m256 k = _mm256_broadcast_ss(kf + (j0 + j) * hd + d);
            SPARKV_UNROLL
            for (int v = 0; v < NV; ++v) acc[j][v] = _mm256_fmadd_ps(k, q[v], acc[j][v]);
        }
    }
    SPARKV_UNROLL
    for (int j = 0; j < KJ; ++j)
        SPARKV_UNROLL
        for (int v = 0; v < NV; ++v) _mm256_store_ps(s + (j0 + j) * mp + 8 * (v0 + v), acc[j][v]);
}

// O[m][d0..d0+8*DV] = O * alpha[m] + sum_j P[j][m] * V[j][d0..] for RM query vectors from m0.
template <int RM, int DV>
inline void output_block(const float* p, int64_t mp, const float* vf, int hd, int nk, const float* alpha,
                         float* o, int m0, int d0) {
    __m256 acc[RM][DV];
    SPARKV_UNROLL
    for (int r = 0; r < RM; ++r) {
        const __m256 a = _mm256_broadcast_ss(alpha + m0 + r);
        SPARKV_UNROLL
        for (int v = 0; v < DV; ++v) acc[r][v] = _mm256_mul_ps(a, _mm256_load_ps(o + (m0 + r) * hd + d0 + 8 * v));
    }
    for (int j = 0; j < nk; ++j) {
        __m256 vv[DV];
        SPARKV_UNROLL
        for (int v = 0; v < DV; ++v) vv[v] = _mm256_load_ps(vf + j * hd + d0 + 8 * v);
        SPARKV_UNROLL
        for (int r = 0; r < RM; ++r) {
            const __m256 pj = _mm256_broadcast_ss(p + j * mp + m0 + r);
            SPARKV_UNROLL
            for (int v = 0; v < DV; ++v) acc[r][v] = _mm256_fmadd_ps(pj, vv[v], acc[r][v]);
        }
    }
    SPARKV_UNROLL
    for (int r = 0; r < RM; ++r)
        SPARKV_UNROLL
        for (int v = 0; v < DV; ++v) _mm256_store_ps(o + (m0 + r) * hd + d0 + 8 * v, acc[r][v]);
}

template <int DV>
void output_rows(const float* p, int64_t mp, const float* vf, int hd, int nk, const float* alpha, float* o,
                 int r0, int r1, int d0) {
    int r = r0;
    for (; r + 3 <= r1; r += 3) output_block<3, DV>(p, mp, vf, hd, nk, alpha, o, r, d0);
    if (r1 - r == 2) output_block<2, DV>(p, mp, vf, hd, nk, alpha, o, r, d0);
    if (r1 - r == 1) output_block<1, DV>(p, mp, vf, hd, nk, alpha, o, r, d0);
}

void convert_tile(const uint16_t* src, int64_t n_keys, int64_t n_pad, int hd, float* dst) {
    for (int64_t j = 0; j < n_keys; ++j) {
        for (int d = 0; d < hd; d += 8) {
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j * hd + d));
            _mm256_store_ps(dst + j * hd + d, _mm256_cvtph_ps(h));
        }
    }
    for (int64_t j = n_keys; j < n_pad; ++j)
        for (int d = 0; d < hd; d += 8) _mm256_store_ps(dst + j * hd + d, _mm256_setzero_ps());
}

}  // namespace

void attention(const AttentionTask& task) {
    const AttentionShape& s = *task.shape;
    const int hd = s.head_dim;
    if (hd % 8 != 0) {  // the SIMD layout needs whole vectors per head
        portable_kernels().attention(task);
        return;
    }
    const int group = s.n_head / s.n_kv_head;
    const int nq = static_cast<int>(task.q1 - task.q0);
    const int m = nq * group;              // query vectors, row-major by (row, head)
    const int64_t mp = (m + 7) / 8 * 8;    // padded to whole vectors
    const int nv = static_cast<int>(mp / 8);

    float* qt = align32(task.scratch);              // [hd][mp]
    float* o = align32(qt + hd * mp);               // [m][hd]
    float* kf = align32(o + mp * hd);               // [kAttnKeyTile][hd]
    float* vf = align32(kf + kAttnKeyTile * hd);    // [kAttnKeyTile][hd]
    float* sc = align32(vf + kAttnKeyTile * hd);    // [kAttnKeyTile][mp]
    float* row_max = align32(sc + kAttnKeyTile * mp);
    float* row_sum = align32(row_max + mp);
    float* row_pos = align32(row_sum + mp);  // position of each query vector, as float
    float* alpha = align32(row_pos + mp);    // rescale factor of the current key tile

    int32_t max_pos = -1;
    for (int i = 0; i < nq; ++i) max_pos = std::max(max_pos, task.q_pos[task.q0 + i]);
    for (int64_t r = 0; r < mp; ++r) {
        const bool real = r < m;
        row_pos[r] = real ? static_cast<float>(task.q_pos[task.q0 + r / group]) : -1.0f;
        row_max[r] = -std::numeric_limits<float>::infinity();
        row_sum[r] = 0.0f;
        for (int d = 0; d < hd; ++d) {
            const float* qv = task.q + (task.q0 + r / group) * task.ldq + (int64_t(task.kv_head) * group + r % group) * hd;
            qt[d * mp + r] = real ? qv[d] * s.scale : 0.0f;
        }
    }
    std::fill(o, o + mp * hd, 0.0f);

    const uint16_t* kh = task.k + int64_t(task.kv_head) * s.kv_capacity * hd;
    const uint16_t* vh = task.v + int64_t(task.kv_head) * s.kv_capacity * hd;
    const int64_t key_end = std::min<int64_t>(task.k1, int64_t(max_pos) + 1);
    const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());

    for (int64_t kb = task.k0; kb < key_end; kb += kAttnKeyTile) {
        const int nk = static_cast<int>(std::min<int64_t>(kAttnKeyTile, key_end - kb));
        const int nk_pad = (nk + 7) / 8 * 8;
        convert_tile(kh + kb * hd, nk, nk_pad, hd, kf);
        convert_tile(vh + kb * hd, nk, nk, hd, vf);

        // Chunks of up to 24 query vectors go through scores, mask, softmax and P.V while their
        // scores, queries and outputs are in L1.
        for (int v0 = 0; v0 < nv; v0 += 3) {
            const int nvc = std::min(3, nv - v0);
            if (nvc == 3) {
                for (int j = 0; j < nk_pad; j += 4) scores_block<4, 3>(kf, hd, qt, mp, sc, j, v0);
            } else if (nvc == 2) {
                for (int j = 0; j < nk_pad; j += 4) scores_block<4, 2>(kf, hd, qt, mp, sc, j, v0);
            } else {
                for (int j = 0; j < nk_pad; j += 8) scores_block<8, 1>(kf, hd, qt, mp, sc, j, v0);
            }
            const int r0 = 8 * v0, r1 = std::min(m, 8 * (v0 + nvc));

            // Causal mask where this tile reaches past some query's position, and on padding keys.
            float chunk_min_pos = row_pos[r0];
            for (int r = r0 + 1; r < r1; ++r) chunk_min_pos = std::min(chunk_min_pos, row_pos[r]);
            const bool needs_mask = static_cast<float>(kb + nk - 1) > chunk_min_pos || r1 < 8 * (v0 + nvc);
            for (int j = needs_mask ? 0 : nk; j < nk_pad; ++j) {
                const bool pad = j >= nk;
                const __m256 key = _mm256_set1_ps(static_cast<float>(kb + j));
                for (int v = v0; v < v0 + nvc; ++v) {
                    float* row = sc + j * mp + 8 * v;
                    const __m256 hidden = pad ? _mm256_castsi256_ps(_mm256_set1_epi32(-1))
                                              : _mm256_cmp_ps(key, _mm256_load_ps(row_pos + 8 * v), _CMP_GT_OQ);
                    _mm256_store_ps(row, _mm256_blendv_ps(_mm256_load_ps(row), neg_inf, hidden));
                }
            }

            // Online softmax across query vectors (lanes): new max, rescale factor, probabilities.
            for (int v = v0; v < v0 + nvc; ++v) {
                __m256 mx = neg_inf;
                for (int j = 0; j < nk; ++j) mx = _mm256_max_ps(mx, _mm256_load_ps(sc + j * mp + 8 * v));
                const __m256 old_max = _mm256_load_ps(row_max + 8 * v);
                const __m256 new_max = _mm256_max_ps(old_max, mx);
                // A query vector with no visible key yet keeps max -inf; subtract 0 there instead,
                // so that exp(-inf - 0) = 0 rather than exp(NaN).
                const __m256 safe_max = _mm256_blendv_ps(new_max, _mm256_setzero_ps(),
                                                         _mm256_cmp_ps(new_max, neg_inf, _CMP_EQ_OQ));
                const __m256 a = exp_nonpositive_ps(_mm256_sub_ps(old_max, safe_max));
                __m256 sum = _mm256_setzero_ps();
                for (int j = 0; j < nk; ++j) {
                    float* row = sc + j * mp + 8 * v;
                    const __m256 p = exp_nonpositive_ps(_mm256_sub_ps(_mm256_load_ps(row), safe_max));
                    _mm256_store_ps(row, p);
                    sum = _mm256_add_ps(sum, p);
                }
                _mm256_store_ps(row_sum + 8 * v, _mm256_fmadd_ps(_mm256_load_ps(row_sum + 8 * v), a, sum));
                _mm256_store_ps(row_max + 8 * v, new_max);
                _mm256_store_ps(alpha + 8 * v, a);
            }

            // O = O * alpha + P V for the chunk's query vectors.
            int d = 0;
            for (; d + 32 <= hd; d += 32) output_rows<4>(sc, mp, vf, hd, nk, alpha, o, r0, r1, d);
            for (; d < hd; d += 8) output_rows<1>(sc, mp, vf, hd, nk, alpha, o, r0, r1, d);
        }
    }

    for (int r = 0; r < m; ++r) {
        const int64_t row = task.q0 + r / group;
        const int hg = r % group;
        if (task.partial) {
            float* part = task.partial + int64_t(r) * (hd + 2);
            part[0] = row_max[r];
            part[1] = row_sum[r];
            std::copy(o + r * hd, o + r * hd + hd, part + 2);
        } else {
            const __m256 inv = _mm256_set1_ps(1.0f / row_sum[r]);
            float* out = task.out + row * task.ldo + (int64_t(task.kv_head) * group + hg) * hd;
            for (int dd = 0; dd < hd; dd += 8)
                _mm256_storeu_ps(out + dd, _mm256_mul_ps(inv, _mm256_load_ps(o + r * hd + dd)));
        }
    }
}

}  // namespace sparkv::kernels::detail::avx2
