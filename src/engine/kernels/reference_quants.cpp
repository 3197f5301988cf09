// Reference (de)quantisation of the GGML block formats. Decoding reproduces ggml exactly;
// activation encoders (Q8_0, Q8_1, Q8_K) reproduce ggml's x86 CPU recipe, because the engine is
// compared with llama.cpp token for token; weight encoders are a plain min/max fit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/reference.h"

namespace sparkv::kernels::ref {

namespace {

// Round half to even, as vroundps/cvtps2dq do in the default rounding mode.
inline int round_even(float v) {
    return static_cast<int>(std::nearbyint(v));
}

inline int clamp_int(int v, int lo, int hi) {
    return std::min(hi, std::max(lo, v));
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
inline void k_scale_min(const uint8_t* s, int j, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

inline void k_pack_scales(const int* scale, const int* min, uint8_t* s) {
    for (int j = 0; j < 4; ++j) {
        s[j] = static_cast<uint8_t>((scale[j] & 63) | ((scale[j + 4] >> 4) << 6));
        s[j + 4] = static_cast<uint8_t>((min[j] & 63) | ((min[j + 4] >> 4) << 6));
        s[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0x0f) | ((min[j + 4] & 0x0f) << 4));
    }
}

// ---- decoders ----

void dequantize_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + kQK / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
            y[j + kQK / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void dequantize_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

void dequantize_q8_1(const BlockQ8_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

void dequantize_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int c = 0; c < 4; ++c) {  // 64 elements per chunk: low nibbles, then high
            int sc0, m0, sc1, m1;
            k_scale_min(b[i].scales, 2 * c, sc0, m0);
            k_scale_min(b[i].scales, 2 * c + 1, sc1, m1);
            const float d0 = d * static_cast<float>(sc0), mm0 = dmin * static_cast<float>(m0);
            const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
            const uint8_t* q = b[i].qs + 32 * c;
            for (int l = 0; l < 32; ++l) *y++ = d0 * static_cast<float>(q[l] & 0x0f) - mm0;
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] >> 4) - mm1;
        }
    }
}

void dequantize_q5_k(const BlockQ5_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int c = 0; c < 4; ++c) {
            int sc0, m0, sc1, m1;
            k_scale_min(b[i].scales, 2 * c, sc0, m0);
            k_scale_min(b[i].scales, 2 * c + 1, sc1, m1);
            const float d0 = d * static_cast<float>(sc0), mm0 = dmin * static_cast<float>(m0);
            const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
            const uint8_t* q = b[i].qs + 32 * c;
            const uint8_t* qh = b[i].qh;
            for (int l = 0; l < 32; ++l) {
                const int hi = (qh[l] >> (2 * c)) & 1;
                *y++ = d0 * static_cast<float>((q[l] & 0x0f) | (hi << 4)) - mm0;
            }
            for (int l = 0; l < 32; ++l) {
                const int hi = (qh[l] >> (2 * c + 1)) & 1;
                *y++ = d1 * static_cast<float>((q[l] >> 4) | (hi << 4)) - mm1;
            }
        }
    }
}

// Q6_K element e of a super-block as a signed 6-bit value (-32..31).
inline int q6_k_value(const BlockQ6_K& b, int e) {
    const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t ql = b.ql[64 * half + l + (quarter & 1) * 32];
    const int low = (quarter < 2) ? (ql & 0x0f) : (ql >> 4);
    const int high = (b.qh[32 * half + l] >> (2 * quarter)) & 3;
    return (low | (high << 4)) - 32;
}

void dequantize_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int e = 0; e < kQKK; ++e) {
            y[e] = d * static_cast<float>(b[i].scales[e / 16]) *
                   static_cast<float>(q6_k_value(b[i], e));
        }
    }
}

void dequantize_q8_k(const BlockQ8_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK)
        for (int j = 0; j < kQKK; ++j) y[j] = b[i].d * static_cast<float>(b[i].qs[j]);
}

// ---- activation encoders (ggml's x86 recipe) ----

float abs_max(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    return amax;
}

// Returns the integer sum of the quants.
int quantize_q8_block(const float* x, uint16_t& d_out, int8_t* qs) {
    const float amax = abs_max(x, kQK);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    d_out = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
        const int q = round_even(x[j] * id);
        sum += q;
        qs[j] = static_cast<int8_t>(clamp_int(q, -128, 127));
    }
    return sum;
}

void quantize_q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) quantize_q8_block(x, b[i].d, b[i].qs);
}

void quantize_q8_1(const float* x, BlockQ8_1* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const int sum = quantize_q8_block(x, b[i].d, b[i].qs);
        const float d = abs_max(x, kQK) / 127.0f;
        b[i].s = fp32_to_fp16(d * static_cast<float>(sum));
    }
}

void quantize_q8_k(const float* x, BlockQ8_K* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        float amax = 0.0f, max = 0.0f;  // the first element of largest magnitude, signed
        for (int j = 0; j < kQKK; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        std::memset(b[i].qs, 0, sizeof b[i].qs);
        std::memset(b[i].bsums, 0, sizeof b[i].bsums);
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < kQKK; ++j) {
            b[i].qs[j] = static_cast<int8_t>(std::min(127, round_even(iscale * x[j])));
        }
        for (int g = 0; g < kQKK / 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
            b[i].bsums[g] = static_cast<int16_t>(sum);
        }
        b[i].d = 1.0f / iscale;
    }
}

// ---- weight encoders (simple min/max fits) ----

void quantize_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQK; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        b[i].d = fp32_to_fp16(max / -8.0f);  // the extreme value maps to -8
        const float d = fp16_to_fp32(b[i].d);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(round_even(x[j] * id) + 8, 0, 15);
            const int q1 = clamp_int(round_even(x[j + kQK / 2] * id) + 8, 0, 15);
            b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

void quantize_q4_1(const float* x, BlockQ4_1* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float lo = *std::min_element(x, x + kQK);
        const float hi = *std::max_element(x, x + kQK);
        b[i].d = fp32_to_fp16((hi - lo) / 15.0f);
        b[i].m = fp32_to_fp16(lo);
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(round_even((x[j] - m) * id), 0, 15);
            const int q1 = clamp_int(round_even((x[j + kQK / 2] - m) * id), 0, 15);
            b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

// Fits the eight 32-element sub-blocks of a Q4_K / Q5_K super-block with levels 0..nmax:
// x ~ d*scale[j]*q - dmin*min[j]. Returns the quants in q (256 values).
void fit_k_superblock(const float* x, int nmax, uint16_t& d16, uint16_t& dmin16, int* scale,
                      int* min, int* q) {
    float sub_scale[8], sub_min[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
        const float* s = x + 32 * j;
        const float lo = std::min(0.0f, *std::min_element(s, s + 32));
        const float hi = *std::max_element(s, s + 32);
        sub_scale[j] = std::max(0.0f, hi - lo) / static_cast<float>(nmax);
        sub_min[j] = -lo;
        max_scale = std::max(max_scale, sub_scale[j]);
        max_min = std::max(max_min, sub_min[j]);
    }
    d16 = fp32_to_fp16(max_scale / 63.0f);
    dmin16 = fp32_to_fp16(max_min / 63.0f);
    const float d = fp16_to_fp32(d16), dmin = fp16_to_fp32(dmin16);
    for (int j = 0; j < 8; ++j) {
        scale[j] = d > 0.0f ? clamp_int(round_even(sub_scale[j] / d), 0, 63) : 0;
        min[j] = dmin > 0.0f ? clamp_int(round_even(sub_min[j] / dmin), 0, 63) : 0;
        const float step = d * static_cast<float>(scale[j]);
        const float offset = dmin * static_cast<float>(min[j]);
        for (int l = 0; l < 32; ++l) {
            const float v = x[32 * j + l] + offset;
            q[32 * j + l] = step > 0.0f ? clamp_int(round_even(v / step), 0, nmax) : 0;
        }
    }
}

void quantize_q4_k(const float* x, BlockQ4_K* b, int64_t nb) {
    int scale[8], min[8], q[kQKK];
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        fit_k_superblock(x, 15, b[i].d, b[i].dmin, scale, min, q);
        k_pack_scales(scale, min, b[i].scales);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                b[i].qs[32 * c + l] =
                    static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
}

void quantize_q5_k(const float* x, BlockQ5_K* b, int64_t nb) {
    int scale[8], min[8], q[kQKK];
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        fit_k_superblock(x, 31, b[i].d, b[i].dmin, scale, min, q);
        k_pack_scales(scale, min, b[i].scales);
        std::memset(b[i].qh, 0, sizeof b[i].qh);
        for (int c = 0; c < 4; ++c) {
            for (int l = 0; l < 32; ++l) {
                const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
                b[i].qh[l] |=
                    static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

void quantize_q6_k(const float* x, BlockQ6_K* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        float sub_scale[16], max_abs_scale = 0.0f;
        for (int j = 0; j < 16; ++j) {  // the extreme value of each 16 maps to -32
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; ++l) {
                if (std::fabs(x[16 * j + l]) > amax) {
                    amax = std::fabs(x[16 * j + l]);
                    max = x[16 * j + l];
                }
            }
            sub_scale[j] = max / -32.0f;
            max_abs_scale = std::max(max_abs_scale, amax / 32.0f);
        }
        b[i].d = fp32_to_fp16(max_abs_scale / 127.0f);
        const float d = fp16_to_fp32(b[i].d);
        std::memset(b[i].ql, 0, sizeof b[i].ql);
        std::memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < 16; ++j) {
            const int sc = d > 0.0f ? clamp_int(round_even(sub_scale[j] / d), -127, 127) : 0;
            b[i].scales[j] = static_cast<int8_t>(sc);
            const float step = d * static_cast<float>(sc);
            for (int l = 0; l < 16; ++l) {
                const int e = 16 * j + l;
                const int q = (step != 0.0f ? clamp_int(round_even(x[e] / step), -32, 31) : 0) + 32;
                const int half = e / 128, r = e % 128, quarter = r / 32, pos = r % 32;
                uint8_t& ql = b[i].ql[64 * half + pos + (quarter & 1) * 32];
                ql |= static_cast<uint8_t>((q & 0x0f) << (quarter < 2 ? 0 : 4));
                b[i].qh[32 * half + pos] |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
            }
        }
    }
}

void check_row_length(GgmlType type, int64_t n) {
    const int64_t block = ggml_traits(type).block_elements;
    if (n % block != 0) {
        fail("row of {} elements is not a whole number of {} blocks ({} elements each)", n,
             ggml_traits(type).name, block);
    }
}

}  // namespace

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    check_row_length(type, n);
    switch (type) {
        case GgmlType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return;
        case GgmlType::F16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
            return;
        }
        case GgmlType::BF16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
            return;
        }
        case GgmlType::Q4_0:
            dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, n / kQK);
            return;
        case GgmlType::Q4_1:
            dequantize_q4_1(static_cast<const BlockQ4_1*>(src), dst, n / kQK);
            return;
        case GgmlType::Q8_0:
            dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, n / kQK);
            return;
        case GgmlType::Q8_1:
            dequantize_q8_1(static_cast<const BlockQ8_1*>(src), dst, n / kQK);
            return;
        case GgmlType::Q4_K:
            dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, n / kQKK);
            return;
        case GgmlType::Q5_K:
            dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, n / kQKK);
            return;
        case GgmlType::Q6_K:
            dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, n / kQKK);
            return;
        case GgmlType::Q8_K:
            dequantize_q8_k(static_cast<const BlockQ8_K*>(src), dst, n / kQKK);
            return;
        default:
            break;
    }
    fail("cannot dequantize tensor type {}: not supported by SparKV's kernels",
         ggml_type_name(static_cast<uint32_t>(type)));
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    check_row_length(type, n);
    switch (type) {
        case GgmlType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return;
        case GgmlType::F16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
            return;
        }
        case GgmlType::BF16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
            return;
        }
        case GgmlType::Q4_0:
            quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n / kQK);
            return;
        case GgmlType::Q4_1:
            quantize_q4_1(src, static_cast<BlockQ4_1*>(dst), n / kQK);
            return;
        case GgmlType::Q8_0:
            quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n / kQK);
            return;
        case GgmlType::Q8_1:
            quantize_q8_1(src, static_cast<BlockQ8_1*>(dst), n / kQK);
            return;
        case GgmlType::Q4_K:
            quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n / kQKK);
            return;
        case GgmlType::Q5_K:
            quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n / kQKK);
            return;
        case GgmlType::Q6_K:
            quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n / kQKK);
            return;
        case GgmlType::Q8_K:
            quantize_q8_k(src, static_cast<BlockQ8_K*>(dst), n / kQKK);
            return;
        default:
            break;
    }
    fail("cannot quantize to tensor type {}: not supported by SparKV's kernels",
         ggml_type_name(static_cast<uint32_t>(type)));
}

}  // namespace sparkv::kernels::ref
