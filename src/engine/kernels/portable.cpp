// Portable kernels: plain C++ on the same data layouts as the SIMD paths, for CPUs without
// AVX2 and as a second implementation the tests check against the reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/reference.h"
#include "engine/kernels/reference_blocks.h"

namespace sparkv::kernels::detail {

namespace {

// ---- activation encoding (same recipe as ref::quantize_row) ----

void pack_q8_blocks(const float* x, int64_t cols, bool q8_1, int8_t* qs, float* d, float* off) {
    for (int64_t b = 0; b < cols / 32; ++b) {
        const float* xb = x + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float scale = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            const int q = std::clamp(static_cast<int>(std::nearbyint(xb[j] * id)), -128, 127);
            qs[32 * b + j] = static_cast<int8_t>(q);
            sum += q;
        }
        d[b] = fp16_to_fp32(fp32_to_fp16(scale));
        off[b] = q8_1 ? fp16_to_fp32(fp32_to_fp16(scale * static_cast<float>(sum)))
                      : d[b] * static_cast<float>(sum);
    }
}

void pack_q8_k(const float* x, int64_t cols, int8_t* qs, float* d, float* off32, float* off16) {
    for (int64_t sb = 0; sb < cols / 256; ++sb) {
        BlockQ8_K block;
        ref::quantize_row(GgmlType::Q8_K, x + 256 * sb, &block, 256);
        std::memcpy(qs + 256 * sb, block.qs, 256);
        d[sb] = block.d;
        for (int j = 0; j < 16; ++j) off16[16 * sb + j] = block.d * block.bsums[j];
        for (int j = 0; j < 8; ++j)
            off32[8 * sb + j] =
                block.d * static_cast<float>(block.bsums[2 * j] + block.bsums[2 * j + 1]);
    }
}

void pack_activations(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                      const PackedActivations& a) {
    for (int64_t t = t0; t < t1; ++t) {
        const float* xt = x + t * ldx;
        switch (a.type) {
            case GgmlType::Q8_0:
            case GgmlType::Q8_1:
                pack_q8_blocks(xt, a.cols, a.type == GgmlType::Q8_1, a.qs + t * a.cols,
                               a.d + t * a.d_stride, a.off + t * a.off_stride);
                break;
            case GgmlType::Q8_K:
                pack_q8_k(xt, a.cols, a.qs + t * a.cols, a.d + t * a.d_stride,
                          a.off + t * a.off_stride, a.off16 + t * a.off16_stride);
                break;
            case GgmlType::F16:
                for (int64_t c = 0; c < a.cols; ++c)
                    a.values[t * a.cols + c] = fp16_to_fp32(fp32_to_fp16(xt[c]));
                break;
            case GgmlType::BF16:
                for (int64_t c = 0; c < a.cols; ++c)
                    a.values[t * a.cols + c] = bf16_to_fp32(fp32_to_bf16(xt[c]));
                break;
            default:
                std::memcpy(a.values + t * a.cols, xt, sizeof(float) * a.cols);
                break;
        }
    }
}

// ---- dot products of one weight row with one packed token ----

// 32-element blocks paired with Q8_0: element j is value(block, j) * d.
template <typename Block, typename ValueFn>
float dot_symmetric(const uint8_t* row, const PackedActivations& a, int64_t t, ValueFn value) {
    const int8_t* q = a.qs + t * a.cols;
    const float* d = a.d + t * a.d_stride;
    float sum = 0.0f;
    for (int64_t b = 0; b < a.cols / 32; ++b, q += 32) {
        const auto& blk = reinterpret_cast<const Block*>(row)[b];
        int isum = 0;
        for (int j = 0; j < 32; ++j) isum += value(blk, j) * q[j];
        sum += fp16_to_fp32(blk.d) * d[b] * static_cast<float>(isum);
    }
    return sum;
}

// 32-element blocks paired with Q8_1: element j is quant(block, j) * d + m.
template <typename Block, typename QuantFn>
float dot_affine(const uint8_t* row, const PackedActivations& a, int64_t t, QuantFn quant) {
    const int8_t* q = a.qs + t * a.cols;
    const float* d = a.d + t * a.d_stride;
    const float* off = a.off + t * a.off_stride;
    float sum = 0.0f;
    for (int64_t b = 0; b < a.cols / 32; ++b, q += 32) {
        const auto& blk = reinterpret_cast<const Block*>(row)[b];
        int isum = 0;
        for (int j = 0; j < 32; ++j) isum += quant(blk, j) * q[j];
        sum += fp16_to_fp32(blk.d) * d[b] * static_cast<float>(isum) + fp16_to_fp32(blk.m) * off[b];
    }
    return sum;
}

int q8_0_value(const BlockQ8_0& b, int j) {
    return b.qs[j];
}

// Q4_K / Q5_K: x = d * scale_j * q - dmin * min_j over 32-element sub-blocks.
template <typename Block, typename QuantFn>
float dot_k_affine(const uint8_t* row, const PackedActivations& a, int64_t t, QuantFn quant) {
    const int8_t* q = a.qs + t * a.cols;
    float sum = 0.0f;
    for (int64_t sb = 0; sb < a.cols / 256; ++sb, q += 256) {
        const auto& blk = reinterpret_cast<const Block*>(row)[sb];
        int isum = 0;
        float mins = 0.0f;
        for (int j = 0; j < 8; ++j) {
            int s = 0;
            for (int l = 0; l < 32; ++l) s += quant(blk, 32 * j + l) * q[32 * j + l];
            int scale, min;
            blocks::k_scale_min(blk.scales, j, scale, min);
            isum += scale * s;
            mins += static_cast<float>(min) * a.off[t * a.off_stride + 8 * sb + j];
        }
        const float da = a.d[t * a.d_stride + sb];
        sum += fp16_to_fp32(blk.d) * da * static_cast<float>(isum) - fp16_to_fp32(blk.dmin) * mins;
    }
    return sum;
}

// Q2_K: x = d * scale_j * q - dmin * min_j over 16-element sub-blocks.
float dot_q2_k(const uint8_t* row, const PackedActivations& a, int64_t t) {
    const int8_t* q = a.qs + t * a.cols;
    float sum = 0.0f;
    for (int64_t sb = 0; sb < a.cols / 256; ++sb, q += 256) {
        const auto& blk = reinterpret_cast<const BlockQ2_K*>(row)[sb];
        int isum = 0;
        float mins = 0.0f;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += blocks::q2_k_quant(blk, 16 * j + l) * q[16 * j + l];
            isum += blocks::q2_k_scale(blk, j) * s;
            mins += static_cast<float>(blocks::q2_k_min(blk, j)) *
                    a.off16[t * a.off16_stride + 16 * sb + j];
        }
        const float da = a.d[t * a.d_stride + sb];
        sum += fp16_to_fp32(blk.d) * da * static_cast<float>(isum) - fp16_to_fp32(blk.dmin) * mins;
    }
    return sum;
}

// Super-blocks without mins (Q3_K, Q6_K, IQ4_XS): x = d * scale_j * value over kSub elements.
template <int kSub, typename Block, typename ValueFn, typename ScaleFn>
float dot_k_symmetric(const uint8_t* row, const PackedActivations& a, int64_t t, ValueFn value,
                      ScaleFn scale) {
    const int8_t* q = a.qs + t * a.cols;
    float sum = 0.0f;
    for (int64_t sb = 0; sb < a.cols / 256; ++sb, q += 256) {
        const auto& blk = reinterpret_cast<const Block*>(row)[sb];
        int isum = 0;
        for (int j = 0; j < 256 / kSub; ++j) {
            int s = 0;
            for (int l = 0; l < kSub; ++l) s += value(blk, kSub * j + l) * q[kSub * j + l];
            isum += scale(blk, j) * s;
        }
        sum += fp16_to_fp32(blk.d) * a.d[t * a.d_stride + sb] * static_cast<float>(isum);
    }
    return sum;
}

int q6_k_scale(const BlockQ6_K& b, int j) {
    return b.scales[j];
}

float dot_float(GgmlType type, const uint8_t* row, const PackedActivations& a, int64_t t) {
    const float* x = a.values + t * a.cols;
    float sum = 0.0f;
    if (type == GgmlType::F32) {
        const auto* w = reinterpret_cast<const float*>(row);
        for (int64_t c = 0; c < a.cols; ++c) sum += w[c] * x[c];
    } else {
        const auto* w = reinterpret_cast<const uint16_t*>(row);
        const bool half = type == GgmlType::F16;
        for (int64_t c = 0; c < a.cols; ++c)
            sum += (half ? fp16_to_fp32(w[c]) : bf16_to_fp32(w[c])) * x[c];
    }
    return sum;
}

float dot(GgmlType type, const uint8_t* row, const PackedActivations& a, int64_t t) {
    switch (type) {
        case GgmlType::Q4_0:
            return dot_symmetric<BlockQ4_0>(row, a, t, blocks::q4_0_value);
        case GgmlType::Q5_0:
            return dot_symmetric<BlockQ5_0>(row, a, t, blocks::q5_0_value);
        case GgmlType::Q8_0:
            return dot_symmetric<BlockQ8_0>(row, a, t, q8_0_value);
        case GgmlType::IQ4_NL:
            return dot_symmetric<BlockIQ4_NL>(row, a, t, blocks::iq4_nl_value);
        case GgmlType::Q4_1:
            return dot_affine<BlockQ4_1>(row, a, t, blocks::q4_1_quant);
        case GgmlType::Q5_1:
            return dot_affine<BlockQ5_1>(row, a, t, blocks::q5_1_quant);
        case GgmlType::Q2_K:
            return dot_q2_k(row, a, t);
        case GgmlType::Q3_K:
            return dot_k_symmetric<16, BlockQ3_K>(row, a, t, blocks::q3_k_value,
                                                  blocks::q3_k_scale);
        case GgmlType::Q4_K:
            return dot_k_affine<BlockQ4_K>(row, a, t, blocks::q4_k_quant);
        case GgmlType::Q5_K:
            return dot_k_affine<BlockQ5_K>(row, a, t, blocks::q5_k_quant);
        case GgmlType::Q6_K:
            return dot_k_symmetric<16, BlockQ6_K>(row, a, t, blocks::q6_k_value, q6_k_scale);
        case GgmlType::IQ4_XS:
            return dot_k_symmetric<32, BlockIQ4_XS>(row, a, t, blocks::iq4_xs_value,
                                                    blocks::iq4_xs_scale);
        default:
            return dot_float(type, row, a, t);
    }
}

void gemm(const GemmTask& task) {
    const Matrix& w = *task.w;
    for (int64_t r = task.r0; r < task.r1; ++r) {
        const uint8_t* row = w.data + r * w.row_bytes;
        for (int64_t t = task.t0; t < task.t1; ++t)
            task.y[t * task.ldy + r] = dot(w.type, row, *task.a, t);
    }
}

// ---- attention: online softmax per query row and head ----

void attention(const AttentionTask& task) {
    const AttentionShape& s = *task.shape;
    const int group = s.n_head / s.n_kv_head;
    const int hd = s.head_dim;
    const uint16_t* kh = task.k + int64_t(task.kv_head) * s.kv_capacity * hd;
    const uint16_t* vh = task.v + int64_t(task.kv_head) * s.kv_capacity * hd;
    float* acc = task.scratch;
    for (int64_t i = task.q0; i < task.q1; ++i) {
        const int64_t end = std::min<int64_t>(task.k1, int64_t(task.q_pos[i]) + 1);
        for (int hg = 0; hg < group; ++hg) {
            const int h = task.kv_head * group + hg;
            const float* qv = task.q + i * task.ldq + int64_t(h) * hd;
            float max = -std::numeric_limits<float>::infinity(), total = 0.0f;
            std::fill(acc, acc + hd, 0.0f);
            int64_t cursor = 0;
            for (KeyTile tile; next_key_tile(task, end, kAttnKeyTile, cursor, tile);) {
                for (int64_t j = tile.begin; j < tile.begin + tile.n; ++j) {
                    float score = 0.0f;
                    for (int d = 0; d < hd; ++d) {
                        const float qd =
                            s.round_q_to_fp16 ? fp16_to_fp32(fp32_to_fp16(qv[d])) : qv[d];
                        score += qd * fp16_to_fp32(kh[j * hd + d]);
                    }
                    score *= s.scale;
                    if (score > max) {
                        const float rescale = std::exp(max - score);
                        total *= rescale;
                        for (int d = 0; d < hd; ++d) acc[d] *= rescale;
                        max = score;
                    }
                    const float p = std::exp(score - max);
                    total += p;
                    for (int d = 0; d < hd; ++d) acc[d] += p * fp16_to_fp32(vh[j * hd + d]);
                }
            }
            if (task.partial) {
                float* part = task.partial + ((i - task.q0) * group + hg) * (hd + 2);
                part[0] = max;
                part[1] = total;
                std::copy(acc, acc + hd, part + 2);
            } else {
                float* o = task.out + i * task.ldo + int64_t(h) * hd;
                for (int d = 0; d < hd; ++d) o[d] = acc[d] / total;
            }
        }
    }
}

// ---- element-wise kernels (ggml's formulas) ----

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    const float mean = static_cast<float>(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& p) {
    float cache[kMaxRopeDims];
    const int half = p.n_rot / 2;
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    for (int64_t t = 0; t < n_tokens; ++t) {
        rope_cache(positions[t], p, theta_scale, cache);
        for (int h = 0; h < n_heads; ++h) {
            float* v = x + (t * n_heads + h) * head_dim;
            for (int i = 0; i < half; ++i) {
                const int a = p.neox ? i : 2 * i;
                const int b = p.neox ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * cache[2 * i] - x1 * cache[2 * i + 1];
                v[b] = x0 * cache[2 * i + 1] + x1 * cache[2 * i];
            }
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void to_fp16(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}
void from_fp16(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

constexpr KernelTable kTable = {Isa::portable, pack_activations, gemm,    attention, rms_norm,
                                rope,          swiglu,           to_fp16, from_fp16};

}  // namespace

void rope_cache(int32_t position, const RopeParams& p, float theta_scale, float* cache) {
    // ggml's recurrence: theta_i = position * theta_scale^i in float, then / factor * scale.
    float theta = static_cast<float>(position);
    for (int i = 0; i < p.n_rot / 2; ++i) {
        const float factor = p.freq_factors ? p.freq_factors[i] : 1.0f;
        const float angle = p.freq_scale * (theta / factor);
        cache[2 * i] = std::cos(angle);
        cache[2 * i + 1] = std::sin(angle);
        theta *= theta_scale;
    }
}

const KernelTable& portable_kernels() {
    return kTable;
}

}  // namespace sparkv::kernels::detail
