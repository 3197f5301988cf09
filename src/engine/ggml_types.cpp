#include "engine/ggml_types.h"

#include "common/error.h"

namespace sparkv {

namespace {

struct Entry {
    uint32_t id;
    GgmlTypeTraits traits;
};

// Sizes of types SparKV cannot compute with are still listed so that the loader can validate
// a file that contains them and name the type in its error.
constexpr Entry kTypes[] = {
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, sizeof(BlockQ4_0), true}},
    {3, {"Q4_1", 32, sizeof(BlockQ4_1), true}},
    {6, {"Q5_0", 32, sizeof(BlockQ5_0), false}},
    {7, {"Q5_1", 32, sizeof(BlockQ5_1), false}},
    {8, {"Q8_0", 32, sizeof(BlockQ8_0), true}},
    {9, {"Q8_1", 32, sizeof(BlockQ8_1), false}},
    {10, {"Q2_K", 256, 84, false}},
    {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, sizeof(BlockQ4_K), true}},
    {13, {"Q5_K", 256, sizeof(BlockQ5_K), true}},
    {14, {"Q6_K", 256, sizeof(BlockQ6_K), true}},
    {15, {"Q8_K", 256, sizeof(BlockQ8_K), false}},
    {30, {"BF16", 1, 2, true}},
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

std::string_view ggml_type_name(uint32_t type) {
    for (const auto& e : kTypes)
        if (e.id == type) return e.traits.name;
    return "unknown";
}

}  // namespace sparkv
