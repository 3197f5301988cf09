#include "engine/ggml_types.h"

#include <cctype>

#include "common/error.h"

namespace sparkv {

namespace {

struct Entry {
    uint32_t id;
    GgmlTypeTraits traits;
};

// Sizes of types SparKV cannot compute with are still listed so that the loader can validate
// a file that contains them and name the type in its error.
// Q8_1 and Q8_K are activation encodings: the kernels produce and decode them, but no weight
// matrix may have them. Block sizes of the types without kernels follow ggml's
// (bench/ggml_format_check compares every entry with the peer's ggml).
constexpr Entry kTypes[] = {
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, sizeof(BlockQ4_0), true}},
    {3, {"Q4_1", 32, sizeof(BlockQ4_1), true}},
    {6, {"Q5_0", 32, sizeof(BlockQ5_0), true}},
    {7, {"Q5_1", 32, sizeof(BlockQ5_1), true}},
    {8, {"Q8_0", 32, sizeof(BlockQ8_0), true}},
    {9, {"Q8_1", 32, sizeof(BlockQ8_1), false}},
    {10, {"Q2_K", 256, sizeof(BlockQ2_K), true}},
    {11, {"Q3_K", 256, sizeof(BlockQ3_K), true}},
    {12, {"Q4_K", 256, sizeof(BlockQ4_K), true}},
    {13, {"Q5_K", 256, sizeof(BlockQ5_K), true}},
    {14, {"Q6_K", 256, sizeof(BlockQ6_K), true}},
    {15, {"Q8_K", 256, sizeof(BlockQ8_K), false}},
    {16, {"IQ2_XXS", 256, 66, false}},
    {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}},
    {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, sizeof(BlockIQ4_NL), true}},
    {21, {"IQ3_S", 256, 110, false}},
    {22, {"IQ2_S", 256, 82, false}},
    {23, {"IQ4_XS", 256, sizeof(BlockIQ4_XS), true}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},
    {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},
    {39, {"MXFP4", 32, 17, false}},
};

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
    for (const auto& e : kTypes)
        if (e.id == type) return e.traits;
    return std::nullopt;
}

const GgmlTypeTraits& ggml_traits(GgmlType type) {
    for (const auto& e : kTypes)
        if (e.id == static_cast<uint32_t>(type)) return e.traits;
    fail("internal error: ggml type {} has no traits", static_cast<uint32_t>(type));
}

GgmlType ggml_type_from_name(const std::string& name) {
    std::string upper;
    for (char ch : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    for (uint32_t id = 0; id < 64; ++id) {
        const auto traits = ggml_type_traits(id);
        if (traits && traits->name == upper) return static_cast<GgmlType>(id);
    }
    fail("unknown tensor type '{}'", name);
}

std::string_view ggml_type_name(uint32_t type) {
    for (const auto& e : kTypes)
        if (e.id == type) return e.traits.name;
    return "unknown";
}

}  // namespace sparkv
