// Shared helpers for the kernel tests: deterministic random data and encoded weight matrices.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/isa.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/reference.h"

namespace sparkv::kernels::testing {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float stddev = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// A weight matrix encoded with the reference quantiser, owning its bytes.
struct OwnedMatrix {
    std::vector<uint8_t> bytes;
    Matrix m;
};

inline OwnedMatrix make_matrix(GgmlType type, int64_t rows, int64_t cols, uint32_t seed,
                               float stddev = 0.05f) {
    OwnedMatrix out;
    const size_t row_bytes = ggml_row_bytes(type, cols);
    out.bytes.resize(row_bytes * static_cast<size_t>(rows));
    const auto values = random_floats(static_cast<size_t>(rows * cols), seed, stddev);
    for (int64_t r = 0; r < rows; ++r) {
        ref::quantize_row(type, values.data() + r * cols, out.bytes.data() + r * row_bytes, cols);
    }
    out.m = Matrix{type, out.bytes.data(), rows, cols, row_bytes};
    return out;
}

inline constexpr GgmlType kWeightTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,   GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q2_K,
    GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,   GgmlType::IQ4_XS};

// Every ISA level this CPU can run (and this build has kernels for), lowest first.
inline std::vector<Isa> runnable_isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
        if (static_cast<int>(isa) > static_cast<int>(cpu_isa())) break;
        out.push_back(isa);
    }
    return out;
}

inline std::string isa_param_name(const ::testing::TestParamInfo<Isa>& param_info) {
    return isa_name(param_info.param);
}

}  // namespace sparkv::kernels::testing
