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
// position are never visited, nor (block-sparse tasks) the key blocks the mask dropped.
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
inline void scores_block(const float* kf, int hd, const float* qt, int64_t mp, float* s, int j0,
                         int v0) {
    __m256 acc[KJ][NV];
    SPARKV_UNROLL
    for (int j = 0; j < KJ; ++j) {
        SPARKV_UNROLL
        for (int v = 0; v < NV; ++v) acc[j][v] = _mm256_setzero_ps();
    }
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
    for (int j = 0; j < KJ; ++j) {
        SPARKV_UNROLL
        for (int v = 0; v < NV; ++v) _mm256_store_ps(s + (j0 + j) * mp + 8 * (v0 + v), acc[j][v]);
    }
}

// O[m][d0..d0+8*DV] = O * alpha[m] + sum_j P[j][m] * V[j][d0..] for RM query vectors from m0.
template <int RM, int DV>
inline void output_block(const float* p, int64_t mp, const float* vf, int hd, int nk,
                         const float* alpha, float* o, int m0, int d0) {
    __m256 acc[RM][DV];
    SPARKV_UNROLL
    for (int r = 0; r < RM; ++r) {
        const __m256 a = _mm256_broadcast_ss(alpha + m0 + r);
        SPARKV_UNROLL
        for (int v = 0; v < DV; ++v)
            acc[r][v] = _mm256_mul_ps(a, _mm256_load_ps(o + (m0 + r) * hd + d0 + 8 * v));
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
    for (int r = 0; r < RM; ++r) {
        SPARKV_UNROLL
        for (int v = 0; v < DV; ++v) _mm256_store_ps(o + (m0 + r) * hd + d0 + 8 * v, acc[r][v]);
    }
}

template <int DV>
void output_rows(const float* p, int64_t mp, const float* vf, int hd, int nk, const float* alpha,
                 float* o, int r0, int r1, int d0) {
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

// A query element as the kernels use it: optionally rounded to fp16 (as ggml), then scaled.
inline float query_element(const AttentionShape& s, float q) {
    if (s.round_q_to_fp16) q = _cvtsh_ss(_cvtss_sh(q, _MM_FROUND_TO_NEAREST_INT));
    return q * s.scale;
}

// Writes query vector r's result: normalised into out, or the raw state into partial.
void write_row(const AttentionTask& task, int group, int r, float max, float sum, const float* o) {
    const int hd = task.shape->head_dim;
    if (task.partial) {
        float* part = task.partial + int64_t(r) * (hd + 2);
        part[0] = max;
        part[1] = sum;
        std::copy(o, o + hd, part + 2);
        return;
    }
    const int64_t row = task.q0 + r / group;
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    float* out = task.out + row * task.ldo + (int64_t(task.kv_head) * group + r % group) * hd;
    for (int d = 0; d < hd; d += 8)
        _mm256_storeu_ps(out + d, _mm256_mul_ps(inv, _mm256_load_ps(o + d)));
}

// Sums each of 8 vectors: lane j of the result is the sum of v[j]'s lanes.
inline __m256 sum8(const __m256 (&v)[8]) {
    const __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

// o[8 dv .. 8 (dv + DV)) = o * alpha + sum_j p[j] * V[j][same dims].
template <int DV>
inline void few_output(const float* p, int nk, const float* vf, int hd, float alpha, float* o,
                       int dv) {
    const __m256 a = _mm256_set1_ps(alpha);
    __m256 acc[DV];
    SPARKV_UNROLL
    for (int k = 0; k < DV; ++k) acc[k] = _mm256_mul_ps(a, _mm256_load_ps(o + 8 * (dv + k)));
    for (int j = 0; j < nk; ++j) {
        const __m256 pj = _mm256_broadcast_ss(p + j);
        SPARKV_UNROLL
        for (int k = 0; k < DV; ++k)
            acc[k] = _mm256_fmadd_ps(pj, _mm256_load_ps(vf + j * hd + 8 * (dv + k)), acc[k]);
    }
    SPARKV_UNROLL
    for (int k = 0; k < DV; ++k) _mm256_store_ps(o + 8 * (dv + k), acc[k]);
}

constexpr int kFewKeys = 32;  // keys per step of the few-query kernel

// Few query vectors (decode: one row x the group's heads). With under 8 of them the tiled
// kernel would leave most SIMD lanes idle; here the keys are in the lanes: scores are dot
// products reduced 8 keys at a time, and each query's output stays in registers for P.V.
void attention_few(const AttentionTask& task, int group, int m) {
    const AttentionShape& s = *task.shape;
    const int hd = s.head_dim;
    const int nd = hd / 8;
    float* q = align32(task.scratch);         // [m][hd], scaled
    float* o = align32(q + 8 * hd);           // [m][hd]
    float* kf = align32(o + 8 * hd);          // [kFewKeys][hd]
    float* vf = align32(kf + kFewKeys * hd);  // [kFewKeys][hd]
    float row_max[8], row_sum[8], pos[8];
    alignas(32) float p[8][kFewKeys];
    int32_t max_pos = -1;
    for (int r = 0; r < m; ++r) {
        const int64_t row = task.q0 + r / group;
        const float* qv =
            task.q + row * task.ldq + (int64_t(task.kv_head) * group + r % group) * hd;
        for (int d = 0; d < hd; ++d) q[r * hd + d] = query_element(s, qv[d]);
        std::fill(o + r * hd, o + (r + 1) * hd, 0.0f);
        row_max[r] = -std::numeric_limits<float>::infinity();
        row_sum[r] = 0.0f;
        pos[r] = static_cast<float>(task.q_pos[row]);
        max_pos = std::max(max_pos, task.q_pos[row]);
    }
    const uint16_t* kh = task.k + int64_t(task.kv_head) * s.kv_capacity * hd;
    const uint16_t* vh = task.v + int64_t(task.kv_head) * s.kv_capacity * hd;
    const int64_t key_end = std::min<int64_t>(task.k1, int64_t(max_pos) + 1);
    const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);

    int64_t cursor = 0;
    for (KeyTile tile; next_key_tile(task, key_end, kFewKeys, cursor, tile);) {
        const int64_t kb = tile.begin;
        const int nk = static_cast<int>(tile.n);
        const int nk_pad = (nk + 7) / 8 * 8;
        convert_tile(kh + kb * hd, nk, nk_pad, hd, kf);
        convert_tile(vh + kb * hd, nk, nk, hd, vf);
        for (int r = 0; r < m; ++r) {
            // Scores of 8 keys per vector, masked past the query's position and the block.
            __m256 mx = neg_inf;
            for (int j0 = 0; j0 < nk_pad; j0 += 8) {
                __m256 part[8];
                SPARKV_UNROLL
                for (int j = 0; j < 8; ++j) part[j] = _mm256_setzero_ps();
                for (int dv = 0; dv < nd; ++dv) {
                    const __m256 qv = _mm256_load_ps(q + r * hd + 8 * dv);
                    SPARKV_UNROLL
                    for (int j = 0; j < 8; ++j)
                        part[j] = _mm256_fmadd_ps(qv, _mm256_load_ps(kf + (j0 + j) * hd + 8 * dv),
                                                  part[j]);
                }
                const __m256 key = _mm256_add_ps(_mm256_set1_ps(static_cast<float>(kb + j0)), lane);
                const __m256 limit =
                    _mm256_set1_ps(std::min(pos[r], static_cast<float>(kb + nk - 1)));
                const __m256 sc =
                    _mm256_blendv_ps(sum8(part), neg_inf, _mm256_cmp_ps(key, limit, _CMP_GT_OQ));
                _mm256_store_ps(p[r] + j0, sc);
                mx = _mm256_max_ps(mx, sc);
            }
            const float new_max = std::max(row_max[r], hmax(mx));
            if (new_max == -std::numeric_limits<float>::infinity())
                continue;  // nothing visible yet
            const float alpha = std::exp(row_max[r] - new_max);
            __m256 sum = _mm256_setzero_ps();
            for (int j0 = 0; j0 < nk_pad; j0 += 8) {
                const __m256 e = exp_nonpositive_ps(
                    _mm256_sub_ps(_mm256_load_ps(p[r] + j0), _mm256_set1_ps(new_max)));
                _mm256_store_ps(p[r] + j0, e);
                sum = _mm256_add_ps(sum, e);
            }
            row_sum[r] = row_sum[r] * alpha + hsum(sum);
            row_max[r] = new_max;
            // O = O * alpha + P V, 32 dims at a time with the keys' weights broadcast.
            int dv = 0;
            for (; dv + 4 <= nd; dv += 4) few_output<4>(p[r], nk, vf, hd, alpha, o + r * hd, dv);
            for (; dv < nd; ++dv) few_output<1>(p[r], nk, vf, hd, alpha, o + r * hd, dv);
        }
    }
    for (int r = 0; r < m; ++r) write_row(task, group, r, row_max[r], row_sum[r], o + r * hd);
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
    const int m = nq * group;  // query vectors, row-major by (row, head)
    if (m <= 4) {
        attention_few(task, group, m);
        return;
    }
    const int64_t mp = (m + 7) / 8 * 8;  // padded to whole vectors
    const int nv = static_cast<int>(mp / 8);

    float* qt = align32(task.scratch);            // [hd][mp]
    float* o = align32(qt + hd * mp);             // [m][hd]
    float* kf = align32(o + mp * hd);             // [kAttnKeyTile][hd]
    float* vf = align32(kf + kAttnKeyTile * hd);  // [kAttnKeyTile][hd]
    float* sc = align32(vf + kAttnKeyTile * hd);  // [kAttnKeyTile][mp]
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
            const float* qv = task.q + (task.q0 + r / group) * task.ldq +
                              (int64_t(task.kv_head) * group + r % group) * hd;
            qt[d * mp + r] = real ? query_element(s, qv[d]) : 0.0f;
        }
    }
    std::fill(o, o + mp * hd, 0.0f);

    const uint16_t* kh = task.k + int64_t(task.kv_head) * s.kv_capacity * hd;
    const uint16_t* vh = task.v + int64_t(task.kv_head) * s.kv_capacity * hd;
    const int64_t key_end = std::min<int64_t>(task.k1, int64_t(max_pos) + 1);
    const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());

    int64_t cursor = 0;
    for (KeyTile tile; next_key_tile(task, key_end, kAttnKeyTile, cursor, tile);) {
        const int64_t kb = tile.begin;
        const int nk = static_cast<int>(tile.n);
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
            const bool needs_mask =
                static_cast<float>(kb + nk - 1) > chunk_min_pos || r1 < 8 * (v0 + nvc);
            for (int j = needs_mask ? 0 : nk; j < nk_pad; ++j) {
                const bool pad = j >= nk;
                const __m256 key = _mm256_set1_ps(static_cast<float>(kb + j));
                for (int v = v0; v < v0 + nvc; ++v) {
                    float* row = sc + j * mp + 8 * v;
                    const __m256 hidden =
                        pad ? _mm256_castsi256_ps(_mm256_set1_epi32(-1))
                            : _mm256_cmp_ps(key, _mm256_load_ps(row_pos + 8 * v), _CMP_GT_OQ);
                    _mm256_store_ps(row, _mm256_blendv_ps(_mm256_load_ps(row), neg_inf, hidden));
                }
            }

            // Online softmax across query vectors (lanes): new max, rescale factor, probabilities.
            for (int v = v0; v < v0 + nvc; ++v) {
                __m256 mx = neg_inf;
                for (int j = 0; j < nk; ++j)
                    mx = _mm256_max_ps(mx, _mm256_load_ps(sc + j * mp + 8 * v));
                const __m256 old_max = _mm256_load_ps(row_max + 8 * v);
                const __m256 new_max = _mm256_max_ps(old_max, mx);
                // A query vector with no visible key yet keeps max -inf; subtract 0 there instead,
                // so that exp(-inf - 0) = 0 rather than exp(NaN).
                const __m256 safe_max = _mm256_blendv_ps(
                    new_max, _mm256_setzero_ps(), _mm256_cmp_ps(new_max, neg_inf, _CMP_EQ_OQ));
                const __m256 a = exp_nonpositive_ps(_mm256_sub_ps(old_max, safe_max));
                __m256 sum = _mm256_setzero_ps();
                for (int j = 0; j < nk; ++j) {
                    float* row = sc + j * mp + 8 * v;
                    const __m256 p =
                        exp_nonpositive_ps(_mm256_sub_ps(_mm256_load_ps(row), safe_max));
                    _mm256_store_ps(row, p);
                    sum = _mm256_add_ps(sum, p);
                }
                _mm256_store_ps(row_sum + 8 * v,
                                _mm256_fmadd_ps(_mm256_load_ps(row_sum + 8 * v), a, sum));
                _mm256_store_ps(row_max + 8 * v, new_max);
                _mm256_store_ps(alpha + 8 * v, a);
            }

            // O = O * alpha + P V for the chunk's query vectors.
            int d = 0;
            for (; d + 32 <= hd; d += 32) output_rows<4>(sc, mp, vf, hd, nk, alpha, o, r0, r1, d);
            for (; d < hd; d += 8) output_rows<1>(sc, mp, vf, hd, nk, alpha, o, r0, r1, d);
        }
    }

    for (int r = 0; r < m; ++r) write_row(task, group, r, row_max[r], row_sum[r], o + r * hd);
}

}  // namespace sparkv::kernels::detail::avx2
