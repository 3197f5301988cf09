// Reference (de)quantisation of the GGML block formats. Decoding reproduces ggml exactly (the same
// float operations in the same order); activation encoders (Q8_0, Q8_1, Q8_K) reproduce ggml's
// x86 CPU recipe, because the engine is compared with llama.cpp token for token; weight encoders
// are a plain min/max fit. This file holds the 32-element block types and the entry points; the
// 256-element super-block types live in reference_kquants.cpp.
#include "engine/kernels/reference_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/reference.h"
#include "engine/kernels/reference_blocks.h"

namespace sparkv::kernels::ref {

namespace {

using detail::clamp_int;
using detail::round_even;
using detail::signed_max;

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

void dequantize_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(blocks::q5_0_value(b[i], j)) * d;
    }
}

void dequantize_q5_1(const BlockQ5_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < kQK; ++j)
            y[j] = static_cast<float>(blocks::q5_1_quant(b[i], j)) * d + m;
    }
}

void dequantize_iq4_nl(const BlockIQ4_NL* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(blocks::iq4_nl_value(b[i], j));
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

// ---- weight encoders (simple min/max fits) ----

void quantize_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float max = signed_max(x, kQK);
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

void set_q5_high_bit(uint8_t* qh, int j, int q) {
    qh[j / 8] = static_cast<uint8_t>(qh[j / 8] | ((q >> 4) << (j % 8)));
}

void quantize_q5_0(const float* x, BlockQ5_0* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        b[i].d = fp32_to_fp16(signed_max(x, kQK) / -16.0f);  // the extreme value maps to -16
        const float d = fp16_to_fp32(b[i].d);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        std::memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(round_even(x[j] * id) + 16, 0, 31);
            const int q1 = clamp_int(round_even(x[j + kQK / 2] * id) + 16, 0, 31);
            b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            set_q5_high_bit(b[i].qh, j, q0);
            set_q5_high_bit(b[i].qh, j + kQK / 2, q1);
        }
    }
}

void quantize_q5_1(const float* x, BlockQ5_1* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float lo = *std::min_element(x, x + kQK);
        const float hi = *std::max_element(x, x + kQK);
        b[i].d = fp32_to_fp16((hi - lo) / 31.0f);
        b[i].m = fp32_to_fp16(lo);
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        std::memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(round_even((x[j] - m) * id), 0, 31);
            const int q1 = clamp_int(round_even((x[j + kQK / 2] - m) * id), 0, 31);
            b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            set_q5_high_bit(b[i].qh, j, q0);
            set_q5_high_bit(b[i].qh, j + kQK / 2, q1);
        }
    }
}

// IQ4_NL: the extreme value maps to the level -127, every other to the nearest level.
void quantize_iq4_nl(const float* x, BlockIQ4_NL* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        b[i].d = fp32_to_fp16(signed_max(x, kQK) / -127.0f);
        const float d = fp16_to_fp32(b[i].d);
        auto nearest = [&](float v) {
            if (d == 0.0f) return 8;  // the level 1, closest to 0
            int best = 0;
            for (int k = 1; k < 16; ++k)
                if (std::fabs(v / d - kIq4nlValues[k]) < std::fabs(v / d - kIq4nlValues[best]))
                    best = k;
            return best;
        };
        for (int j = 0; j < kQK / 2; ++j)
            b[i].qs[j] = static_cast<uint8_t>(nearest(x[j]) | (nearest(x[j + kQK / 2]) << 4));
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
        case GgmlType::Q5_0:
            dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, n / kQK);
            return;
        case GgmlType::Q5_1:
            dequantize_q5_1(static_cast<const BlockQ5_1*>(src), dst, n / kQK);
            return;
        case GgmlType::IQ4_NL:
            dequantize_iq4_nl(static_cast<const BlockIQ4_NL*>(src), dst, n / kQK);
            return;
        default:
            if (detail::dequantize_super_blocks(type, src, dst, n / kQKK)) return;
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
        case GgmlType::Q5_0:
            quantize_q5_0(src, static_cast<BlockQ5_0*>(dst), n / kQK);
            return;
        case GgmlType::Q5_1:
            quantize_q5_1(src, static_cast<BlockQ5_1*>(dst), n / kQK);
            return;
        case GgmlType::IQ4_NL:
            quantize_iq4_nl(src, static_cast<BlockIQ4_NL*>(dst), n / kQK);
            return;
        default:
            if (detail::quantize_super_blocks(type, src, dst, n / kQKK)) return;
            break;
    }
    fail("cannot quantize to tensor type {}: not supported by SparKV's kernels",
         ggml_type_name(static_cast<uint32_t>(type)));
}

}  // namespace sparkv::kernels::ref
