// Reference (de)quantisation of the 256-element super-block formats (K quants, IQ4_XS) and of
// Q8_K, the activation encoding they pair with. Decoders reproduce ggml's arithmetic exactly (the
// same float operations in the same order); the Q8_K encoder is ggml's recipe bit for bit; the
// weight encoders are plain min/max fits that produce valid blocks.
#include <cstring>

#include "common/fp16.h"
#include "engine/kernels/reference_blocks.h"
#include "engine/kernels/reference_quants.h"

namespace sparkv::kernels::ref::detail {

namespace {

// ---- decoders ----

void dequantize_q2_k(const BlockQ2_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int j = 0; j < kQKK / 16; ++j) {
            const float dl = d * static_cast<float>(blocks::q2_k_scale(b[i], j));
            const float ml = dmin * static_cast<float>(blocks::q2_k_min(b[i], j));
            for (int l = 0; l < 16; ++l)
                y[16 * j + l] = dl * static_cast<float>(blocks::q2_k_quant(b[i], 16 * j + l)) - ml;
        }
    }
}

void dequantize_q3_k(const BlockQ3_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQKK / 16; ++j) {
            const float dl = d * static_cast<float>(blocks::q3_k_scale(b[i], j));
            for (int l = 0; l < 16; ++l)
                y[16 * j + l] = dl * static_cast<float>(blocks::q3_k_value(b[i], 16 * j + l));
        }
    }
}

void dequantize_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int c = 0; c < 4; ++c) {  // 64 elements per chunk: low nibbles, then high
            int sc0, m0, sc1, m1;
            blocks::k_scale_min(b[i].scales, 2 * c, sc0, m0);
            blocks::k_scale_min(b[i].scales, 2 * c + 1, sc1, m1);
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
            blocks::k_scale_min(b[i].scales, 2 * c, sc0, m0);
            blocks::k_scale_min(b[i].scales, 2 * c + 1, sc1, m1);
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

void dequantize_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int e = 0; e < kQKK; ++e) {
            y[e] = d * static_cast<float>(b[i].scales[e / 16]) *
                   static_cast<float>(blocks::q6_k_value(b[i], e));
        }
    }
}

void dequantize_iq4_xs(const BlockIQ4_XS* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQKK / 32; ++j) {
            const float dl = d * static_cast<float>(blocks::iq4_xs_scale(b[i], j));
            for (int l = 0; l < 32; ++l)
                y[32 * j + l] = dl * static_cast<float>(blocks::iq4_xs_value(b[i], 32 * j + l));
        }
    }
}

void dequantize_q8_k(const BlockQ8_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQKK)
        for (int j = 0; j < kQKK; ++j) y[j] = b[i].d * static_cast<float>(b[i].qs[j]);
}

// ---- Q8_K activations (ggml's recipe) ----

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

// ---- weight encoders (simple fits) ----

inline void k_pack_scales(const int* scale, const int* min, uint8_t* s) {
    for (int j = 0; j < 4; ++j) {
        s[j] = static_cast<uint8_t>((scale[j] & 63) | ((scale[j + 4] >> 4) << 6));
        s[j + 4] = static_cast<uint8_t>((min[j] & 63) | ((min[j + 4] >> 4) << 6));
        s[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0x0f) | ((min[j + 4] & 0x0f) << 4));
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

// Q2_K: each 16-element sub-block j fitted as d * sc_j * q - dmin * m_j, q in 0..3 and sc_j, m_j
// 4-bit.
void quantize_q2_k(const float* x, BlockQ2_K* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        float sub_scale[16], sub_min[16], max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 16; ++j) {
            const float* s = x + 16 * j;
            const float lo = std::min(0.0f, *std::min_element(s, s + 16));
            const float hi = *std::max_element(s, s + 16);
            sub_scale[j] = std::max(0.0f, hi - lo) / 3.0f;
            sub_min[j] = -lo;
            max_scale = std::max(max_scale, sub_scale[j]);
            max_min = std::max(max_min, sub_min[j]);
        }
        b[i].d = fp32_to_fp16(max_scale / 15.0f);
        b[i].dmin = fp32_to_fp16(max_min / 15.0f);
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        std::memset(b[i].qs, 0, sizeof b[i].qs);
        for (int j = 0; j < 16; ++j) {
            const int sc = d > 0.0f ? clamp_int(round_even(sub_scale[j] / d), 0, 15) : 0;
            const int m = dmin > 0.0f ? clamp_int(round_even(sub_min[j] / dmin), 0, 15) : 0;
            b[i].scales[j] = static_cast<uint8_t>(sc | (m << 4));
            const float step = d * static_cast<float>(sc), offset = dmin * static_cast<float>(m);
            for (int l = 0; l < 16; ++l) {
                const int e = 16 * j + l;
                const int q = step > 0.0f ? clamp_int(round_even((x[e] + offset) / step), 0, 3) : 0;
                b[i].qs[32 * (e / 128) + e % 32] |=
                    static_cast<uint8_t>(q << (2 * ((e % 128) / 32)));
            }
        }
    }
}

// Q3_K: each 16-element sub-block j fitted as d * sc_j * v, v in -4..3 (the extreme value maps
// to -4) and sc_j a 6-bit signed scale.
void quantize_q3_k(const float* x, BlockQ3_K* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        float sub_scale[16], max_abs_scale = 0.0f;
        for (int j = 0; j < 16; ++j) {
            sub_scale[j] = signed_max(x + 16 * j, 16) / -4.0f;
            max_abs_scale = std::max(max_abs_scale, std::fabs(sub_scale[j]));
        }
        b[i].d = fp32_to_fp16(max_abs_scale / 32.0f);
        const float d = fp16_to_fp32(b[i].d);
        std::memset(b[i].hmask, 0, sizeof b[i].hmask);
        std::memset(b[i].qs, 0, sizeof b[i].qs);
        std::memset(b[i].scales, 0, sizeof b[i].scales);
        for (int j = 0; j < 16; ++j) {
            const int sc = d > 0.0f ? clamp_int(round_even(sub_scale[j] / d), -32, 31) : 0;
            const int s = sc + 32;  // stored unsigned
            b[i].scales[j % 8] |= static_cast<uint8_t>((s & 0x0f) << (j < 8 ? 0 : 4));
            b[i].scales[8 + j % 4] |= static_cast<uint8_t>((s >> 4) << (2 * (j / 4)));
            const float step = d * static_cast<float>(sc);
            for (int l = 0; l < 16; ++l) {
                const int e = 16 * j + l;
                const int v = step != 0.0f ? clamp_int(round_even(x[e] / step), -4, 3) : 0;
                const int u = v + 4;  // low 2 bits in qs, the third in hmask
                b[i].qs[32 * (e / 128) + e % 32] |=
                    static_cast<uint8_t>((u & 3) << (2 * ((e % 128) / 32)));
                b[i].hmask[e % 32] |= static_cast<uint8_t>((u >> 2) << (e / 32));
            }
        }
    }
}

// The level of kIq4nlValues nearest to v.
int nearest_iq4nl(float v) {
    int best = 0;
    for (int k = 1; k < 16; ++k)
        if (std::fabs(v - kIq4nlValues[k]) < std::fabs(v - kIq4nlValues[best])) best = k;
    return best;
}

// IQ4_XS: each 32-element sub-block j with scale d * (ls_j - 32), the extreme value mapping to
// the level -127.
void quantize_iq4_xs(const float* x, BlockIQ4_XS* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQKK) {
        float sub_scale[8], max_abs_scale = 0.0f;
        for (int j = 0; j < 8; ++j) {
            sub_scale[j] = signed_max(x + 32 * j, 32) / -127.0f;
            max_abs_scale = std::max(max_abs_scale, std::fabs(sub_scale[j]));
        }
        b[i].d = fp32_to_fp16(max_abs_scale / 32.0f);
        const float d = fp16_to_fp32(b[i].d);
        b[i].scales_h = 0;
        std::memset(b[i].scales_l, 0, sizeof b[i].scales_l);
        for (int j = 0; j < 8; ++j) {
            const int sc = d > 0.0f ? clamp_int(round_even(sub_scale[j] / d), -32, 31) : 0;
            const int s = sc + 32;
            b[i].scales_l[j / 2] |= static_cast<uint8_t>((s & 0x0f) << (4 * (j % 2)));
            b[i].scales_h = static_cast<uint16_t>(b[i].scales_h | ((s >> 4) << (2 * j)));
            const float step = d * static_cast<float>(sc);
            uint8_t* qs = b[i].qs + 16 * j;
            for (int l = 0; l < 16; ++l) {
                const int lo = step != 0.0f ? nearest_iq4nl(x[32 * j + l] / step) : 8;
                const int hi = step != 0.0f ? nearest_iq4nl(x[32 * j + l + 16] / step) : 8;
                qs[l] = static_cast<uint8_t>(lo | (hi << 4));
            }
        }
    }
}

}  // namespace

bool dequantize_super_blocks(GgmlType type, const void* src, float* dst, int64_t nb) {
    switch (type) {
        case GgmlType::Q2_K:
            dequantize_q2_k(static_cast<const BlockQ2_K*>(src), dst, nb);
            return true;
        case GgmlType::Q3_K:
            dequantize_q3_k(static_cast<const BlockQ3_K*>(src), dst, nb);
            return true;
        case GgmlType::Q4_K:
            dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
            return true;
        case GgmlType::Q5_K:
            dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
            return true;
        case GgmlType::Q6_K:
            dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
            return true;
        case GgmlType::IQ4_XS:
            dequantize_iq4_xs(static_cast<const BlockIQ4_XS*>(src), dst, nb);
            return true;
        case GgmlType::Q8_K:
            dequantize_q8_k(static_cast<const BlockQ8_K*>(src), dst, nb);
            return true;
        default:
            return false;
    }
}

bool quantize_super_blocks(GgmlType type, const float* src, void* dst, int64_t nb) {
    switch (type) {
        case GgmlType::Q2_K:
            quantize_q2_k(src, static_cast<BlockQ2_K*>(dst), nb);
            return true;
        case GgmlType::Q3_K:
            quantize_q3_k(src, static_cast<BlockQ3_K*>(dst), nb);
            return true;
        case GgmlType::Q4_K:
            quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), nb);
            return true;
        case GgmlType::Q5_K:
            quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), nb);
            return true;
        case GgmlType::Q6_K:
            quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), nb);
            return true;
        case GgmlType::IQ4_XS:
            quantize_iq4_xs(src, static_cast<BlockIQ4_XS*>(dst), nb);
            return true;
        case GgmlType::Q8_K:
            quantize_q8_k(src, static_cast<BlockQ8_K*>(dst), nb);
            return true;
        default:
            return false;
    }
}

}  // namespace sparkv::kernels::ref::detail
