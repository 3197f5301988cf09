// Tensor element types as numbered by the GGUF format, and the block layouts of the quantised ones.
// Each block type is described once here; its reference (de)quantisation lives in
// kernels/reference_quants.cpp, its fast dot products in kernels/avx2_*.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sparkv {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ4_NL = 20,
    IQ4_XS = 23,
    BF16 = 30,
};

struct GgmlTypeTraits {
    std::string_view name;
    int64_t block_elements;  // elements per block (1 for float types)
    size_t block_bytes;      // bytes per block
    bool computable;         // the engine has kernels for it
};

// Traits of a known type; nullopt for a type number the file format defines but SparKV does not
// know (the loader reports those as unsupported rather than guessing their size).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);
const GgmlTypeTraits& ggml_traits(GgmlType type);  // for a known enum value
std::string_view ggml_type_name(uint32_t type);

// Parses "f32", "q4_1", ... (case-insensitive); throws on an unknown name.
GgmlType ggml_type_from_name(const std::string& name);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t ggml_row_bytes(GgmlType type, int64_t n) {
    const auto& t = ggml_traits(type);
    return static_cast<size_t>(n / t.block_elements) * t.block_bytes;
}

constexpr int kQK = 32;    // elements per block of the legacy quant types
constexpr int kQKK = 256;  // elements per super-block of the K quants
constexpr int kKScaleBytes = 12;

// Legacy blocks: 32 weights, scale d (and min m) as fp16.
struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK / 2];  // element j in low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK];
};
// Activation block paired with Q4_1: s = d * sum(qs).
struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[kQK];
};

// K-quant super-blocks of 256 weights.
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];  // 8 sub-block scales and mins, 6 bits each
    uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];
    uint8_t qh[kQKK / 8];
    uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
    uint8_t ql[kQKK / 2];
    uint8_t qh[kQKK / 4];
    int8_t scales[kQKK / 16];
    uint16_t d;
};
// Q2_K: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4) over 16-element sub-blocks j,
// q 2 bits: element e sits in qs[32 * (e / 128) + e % 32] at bit 2 * ((e % 128) / 32).
struct BlockQ2_K {
    uint8_t scales[kQKK / 16];
    uint8_t qs[kQKK / 4];
    uint16_t d;
    uint16_t dmin;
};
// Q3_K: x = d * (scale_j - 32) * (q - 4 * !hbit) over 16-element sub-blocks, q 2 low bits laid
// out as Q2_K's, the high bit of element e in hmask[e % 32] bit e / 32; 6-bit scales packed in
// 12 bytes (low nibbles in bytes 0..7, top 2 bits in bytes 8..11).
struct BlockQ3_K {
    uint8_t hmask[kQKK / 8];
    uint8_t qs[kQKK / 4];
    uint8_t scales[12];
    uint16_t d;
};
// IQ4_NL: Q4_0's layout, but each nibble indexes the non-linear table kIq4nlValues.
struct BlockIQ4_NL {
    uint16_t d;
    uint8_t qs[kQK / 2];
};
// IQ4_XS: IQ4_NL values in 32-element sub-blocks of a 256 super-block, each with a 6-bit scale
// (minus 32): low 4 bits in scales_l (two per byte), high 2 bits in scales_h (two per sub-block).
struct BlockIQ4_XS {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[kQKK / 64];
    uint8_t qs[kQKK / 2];
};
// The 16 levels of IQ4_NL / IQ4_XS.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Activation block paired with the K quants.
struct BlockQ8_K {
    float d;
    int8_t qs[kQKK];
    int16_t bsums[kQKK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace sparkv
