// Reference dot products, matmul, normalisation, rotary embedding and attention.
#include "engine/kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/reference_blocks.h"

namespace sparkv::kernels::ref {

namespace {

using blocks::k_scale_min;

// 32-element blocks paired with Q8_0 whose element j is value(w, j) * d.
template <typename Block, typename ValueFn>
double dot_symmetric(const Block* w, const BlockQ8_0* a, int64_t nb, ValueFn value) {
    double sum = 0.0;
    for (int64_t i = 0; i < nb; ++i) {
        int isum = 0;
        for (int j = 0; j < kQK; ++j) isum += value(w[i], j) * a[i].qs[j];
        sum += double(fp16_to_fp32(w[i].d)) * fp16_to_fp32(a[i].d) * isum;
    }
    return sum;
}

// 32-element blocks paired with Q8_1 whose element j is quant(w, j) * d + m.
template <typename Block, typename QuantFn>
double dot_affine(const Block* w, const BlockQ8_1* a, int64_t nb, QuantFn quant) {
    double sum = 0.0;
    for (int64_t i = 0; i < nb; ++i) {
        int isum = 0;
        for (int j = 0; j < kQK; ++j) isum += quant(w[i], j) * a[i].qs[j];
        sum += double(fp16_to_fp32(w[i].d)) * fp16_to_fp32(a[i].d) * isum;
        sum += double(fp16_to_fp32(w[i].m)) * fp16_to_fp32(a[i].s);
    }
    return sum;
}

int q8_0_value(const BlockQ8_0& b, int j) {
    return b.qs[j];
}

// Q4_K and Q5_K: element e has quant q(e) in 0..nmax, sub-block j = e / 32.
template <typename Block, typename QuantFn>
double dot_k_affine(const Block* w, const BlockQ8_K* a, int64_t nb, QuantFn quant) {
    double sum = 0.0;
    for (int64_t i = 0; i < nb; ++i) {
        int64_t scaled = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
            int isum = 0;
            for (int l = 0; l < 32; ++l) isum += quant(w[i], 32 * j + l) * a[i].qs[32 * j + l];
            int scale, min;
            k_scale_min(w[i].scales, j, scale, min);
            scaled += int64_t(scale) * isum;
            mins += int64_t(min) * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        sum += double(fp16_to_fp32(w[i].d)) * a[i].d * double(scaled);
        sum -= double(fp16_to_fp32(w[i].dmin)) * a[i].d * double(mins);
    }
    return sum;
}

// Super-block types without mins: element e is value(w, e) * d * scale(w, e / sub), summed as
// integers per sub-block of `sub` elements.
template <int kSub, typename Block, typename ValueFn, typename ScaleFn>
double dot_k_symmetric(const Block* w, const BlockQ8_K* a, int64_t nb, ValueFn value,
                       ScaleFn scale) {
    double sum = 0.0;
    for (int64_t i = 0; i < nb; ++i) {
        int64_t scaled = 0;
        for (int j = 0; j < kQKK / kSub; ++j) {
            int isum = 0;
            for (int l = 0; l < kSub; ++l)
                isum += value(w[i], kSub * j + l) * a[i].qs[kSub * j + l];
            scaled += int64_t(scale(w[i], j)) * isum;
        }
        sum += double(fp16_to_fp32(w[i].d)) * a[i].d * double(scaled);
    }
    return sum;
}

double dot_q2_k(const BlockQ2_K* w, const BlockQ8_K* a, int64_t nb) {
    double sum = 0.0;
    for (int64_t i = 0; i < nb; ++i) {
        int64_t scaled = 0, mins = 0;
        for (int j = 0; j < 16; ++j) {
            int isum = 0;
            for (int l = 0; l < 16; ++l)
                isum += blocks::q2_k_quant(w[i], 16 * j + l) * a[i].qs[16 * j + l];
            scaled += int64_t(blocks::q2_k_scale(w[i], j)) * isum;
            mins += int64_t(blocks::q2_k_min(w[i], j)) * a[i].bsums[j];
        }
        sum += double(fp16_to_fp32(w[i].d)) * a[i].d * double(scaled);
        sum -= double(fp16_to_fp32(w[i].dmin)) * a[i].d * double(mins);
    }
    return sum;
}

int q6_k_scale(const BlockQ6_K& b, int j) {
    return b.scales[j];
}

template <typename T, typename Convert>
double dot_float(const T* w, const T* a, int64_t n, Convert to_float) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(to_float(w[i])) * double(to_float(a[i]));
    return sum;
}

}  // namespace

GgmlType activation_type(GgmlType weight) {
    switch (weight) {
        case GgmlType::Q4_0:
        case GgmlType::Q5_0:
        case GgmlType::Q8_0:
        case GgmlType::IQ4_NL:
            return GgmlType::Q8_0;
        case GgmlType::Q4_1:
        case GgmlType::Q5_1:
            return GgmlType::Q8_1;
        case GgmlType::Q2_K:
        case GgmlType::Q3_K:
        case GgmlType::Q4_K:
        case GgmlType::Q5_K:
        case GgmlType::Q6_K:
        case GgmlType::IQ4_XS:
            return GgmlType::Q8_K;
        case GgmlType::F16:
            return GgmlType::F16;
        case GgmlType::BF16:
            return GgmlType::BF16;
        case GgmlType::F32:
            return GgmlType::F32;
        default:
            break;
    }
    fail("matmul with weights of type {} is not supported by SparKV's kernels",
         ggml_type_name(static_cast<uint32_t>(weight)));
}

double vec_dot(GgmlType weight_type, const void* w, const void* a, int64_t n) {
    const auto* a8_0 = static_cast<const BlockQ8_0*>(a);
    const auto* a8_1 = static_cast<const BlockQ8_1*>(a);
    const auto* a8_k = static_cast<const BlockQ8_K*>(a);
    switch (weight_type) {
        case GgmlType::Q4_0:
            return dot_symmetric(static_cast<const BlockQ4_0*>(w), a8_0, n / kQK,
                                 blocks::q4_0_value);
        case GgmlType::Q5_0:
            return dot_symmetric(static_cast<const BlockQ5_0*>(w), a8_0, n / kQK,
                                 blocks::q5_0_value);
        case GgmlType::Q8_0:
            return dot_symmetric(static_cast<const BlockQ8_0*>(w), a8_0, n / kQK, q8_0_value);
        case GgmlType::IQ4_NL:
            return dot_symmetric(static_cast<const BlockIQ4_NL*>(w), a8_0, n / kQK,
                                 blocks::iq4_nl_value);
        case GgmlType::Q4_1:
            return dot_affine(static_cast<const BlockQ4_1*>(w), a8_1, n / kQK, blocks::q4_1_quant);
        case GgmlType::Q5_1:
            return dot_affine(static_cast<const BlockQ5_1*>(w), a8_1, n / kQK, blocks::q5_1_quant);
        case GgmlType::Q2_K:
            return dot_q2_k(static_cast<const BlockQ2_K*>(w), a8_k, n / kQKK);
        case GgmlType::Q3_K:
            return dot_k_symmetric<16>(static_cast<const BlockQ3_K*>(w), a8_k, n / kQKK,
                                       blocks::q3_k_value, blocks::q3_k_scale);
        case GgmlType::Q4_K:
            return dot_k_affine(static_cast<const BlockQ4_K*>(w), a8_k, n / kQKK,
                                blocks::q4_k_quant);
        case GgmlType::Q5_K:
            return dot_k_affine(static_cast<const BlockQ5_K*>(w), a8_k, n / kQKK,
                                blocks::q5_k_quant);
        case GgmlType::Q6_K:
            return dot_k_symmetric<16>(static_cast<const BlockQ6_K*>(w), a8_k, n / kQKK,
                                       blocks::q6_k_value, q6_k_scale);
        case GgmlType::IQ4_XS:
            return dot_k_symmetric<32>(static_cast<const BlockIQ4_XS*>(w), a8_k, n / kQKK,
                                       blocks::iq4_xs_value, blocks::iq4_xs_scale);
        case GgmlType::F16:
            return dot_float(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n,
                             fp16_to_fp32);
        case GgmlType::BF16:
            return dot_float(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n,
                             bf16_to_fp32);
        case GgmlType::F32:
            return dot_float(static_cast<const float*>(w), static_cast<const float*>(a), n,
                             [](float f) { return f; });
        default:
            break;
    }
    fail("matmul with weights of type {} is not supported by SparKV's kernels",
         ggml_type_name(static_cast<uint32_t>(weight_type)));
}

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy) {
    const GgmlType act = activation_type(w.type);
    std::vector<uint8_t> encoded(ggml_row_bytes(act, w.cols));
    for (int64_t t = 0; t < n_tokens; ++t) {
        quantize_row(act, x + t * ldx, encoded.data(), w.cols);
        for (int64_t r = 0; r < w.rows; ++r) {
            const double d = vec_dot(w.type, w.data + r * w.row_bytes, encoded.data(), w.cols);
            y[t * ldy + r] = static_cast<float>(d);
        }
    }
}

void matmul_exact(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                  int64_t ldy) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = 0; r < w.rows; ++r) {
        dequantize_row(w.type, w.data + r * w.row_bytes, row.data(), w.cols);
        for (int64_t t = 0; t < n_tokens; ++t) {
            double sum = 0.0;
            for (int64_t c = 0; c < w.cols; ++c) sum += double(row[c]) * x[t * ldx + c];
            y[t * ldy + r] = static_cast<float>(sum);
        }
    }
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
    const double scale = 1.0 / std::sqrt(sum / double(n) + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i] * scale * weight[i]);
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const RopeParams& p) {
    const int half = p.n_rot / 2;
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int h = 0; h < n_heads; ++h) {
            float* v = x + (t * n_heads + h) * head_dim;
            for (int i = 0; i < half; ++i) {
                double theta = double(positions[t]) * p.freq_scale *
                               std::pow(double(p.freq_base), -2.0 * i / p.n_rot);
                if (p.freq_factors) theta /= p.freq_factors[i];
                const int a = p.neox ? i : 2 * i;
                const int b = p.neox ? i + half : 2 * i + 1;
                const double x0 = v[a], x1 = v[b];
                v[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
                v[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
            }
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const double g = gate[i];
        out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
    }
}

namespace {

// Naive attention of each query over the keys `visible(i, h, j)` allows (j <= q_pos[i] always).
template <typename Visible>
void attention_where(const AttentionShape& s, const float* q, int64_t ldq, int64_t n_q,
                     const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out,
                     int64_t ldo, Visible visible) {
    const int group = s.n_head / s.n_kv_head;
    std::vector<double> score;
    std::vector<double> acc(static_cast<size_t>(s.head_dim));
    for (int64_t i = 0; i < n_q; ++i) {
        const int64_t n_keys = int64_t(q_pos[i]) + 1;
        score.assign(static_cast<size_t>(n_keys), 0.0);
        for (int h = 0; h < s.n_head; ++h) {
            const int g = h / group;
            const float* qh = q + i * ldq + int64_t(h) * s.head_dim;
            const uint16_t* kh = k + int64_t(g) * s.kv_capacity * s.head_dim;
            const uint16_t* vh = v + int64_t(g) * s.kv_capacity * s.head_dim;
            double max = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < n_keys; ++j) {
                score[j] = -std::numeric_limits<double>::infinity();
                if (!visible(i, g, j)) continue;
                double dot = 0.0;
                for (int d = 0; d < s.head_dim; ++d) {
                    const float qd = s.round_q_to_fp16 ? fp16_to_fp32(fp32_to_fp16(qh[d])) : qh[d];
                    dot += double(qd) * fp16_to_fp32(kh[j * s.head_dim + d]);
                }
                score[j] = dot * s.scale;
                max = std::max(max, score[j]);
            }
            double total = 0.0;
            for (int64_t j = 0; j < n_keys; ++j) {
                score[j] = std::exp(score[j] - max);
                total += score[j];
            }
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t j = 0; j < n_keys; ++j) {
                if (score[j] == 0.0) continue;  // hidden (or underflowed): never read its value
                for (int d = 0; d < s.head_dim; ++d)
                    acc[d] += score[j] * fp16_to_fp32(vh[j * s.head_dim + d]);
            }
            float* o = out + i * ldo + int64_t(h) * s.head_dim;
            for (int d = 0; d < s.head_dim; ++d) o[d] = static_cast<float>(acc[d] / total);
        }
    }
}

}  // namespace

void attention(const AttentionShape& s, const float* q, int64_t ldq, int64_t n_q,
               const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out,
               int64_t ldo) {
    attention_where(s, q, ldq, n_q, q_pos, k, v, out, ldo,
                    [](int64_t, int, int64_t) { return true; });
}

void masked_attention(const AttentionShape& s, const float* q, int64_t ldq, int64_t n_q,
                      const int32_t* q_pos, const uint16_t* k, const uint16_t* v, float* out,
                      int64_t ldo, const SparseMask& mask) {
    attention_where(s, q, ldq, n_q, q_pos, k, v, out, ldo, [&](int64_t i, int g, int64_t j) {
        const int64_t qb = q_pos[i] / mask.block - mask.first_block;
        if (qb < 0 || qb >= mask.n_query_blocks) return false;
        const auto row = static_cast<size_t>(g * mask.n_query_blocks + qb);
        const auto first = mask.keys.begin() + mask.offsets[row];
        const auto last = mask.keys.begin() + mask.offsets[row + 1];
        return std::binary_search(first, last, static_cast<int32_t>(j / mask.block));
    });
}

void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

}  // namespace sparkv::kernels::ref
