// Writes small valid GGUF files into a directory: a seed corpus for gguf_fuzz. One file per
// weight type SparKV computes with (a 4 x 256 matrix of random weights), one file mixing the
// types of a llama.cpp Q4_K_M file, and one with a type SparKV cannot compute with.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/gguf_writer.h"
#include "engine/kernels/kernels.h"

namespace {

using namespace sparkv;

std::vector<uint8_t> random_matrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 0.05f);
    std::vector<float> values(static_cast<size_t>(rows * cols));
    for (auto& v : values) v = normal(rng);
    const size_t row_bytes = ggml_row_bytes(type, cols);
    std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
        kernels::quantize_row(type, values.data() + r * cols, out.data() + r * row_bytes, cols);
    return out;
}

GgufWriter base() {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);
    return w;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: gguf_fuzz_seeds DIR\n");
        return 2;
    }
    const std::string dir = argv[1];
    std::mt19937 rng(1);
    int count = 0;
    for (uint32_t id = 0; id < 64; ++id) {
        const auto traits = ggml_type_traits(id);
        if (!traits || !traits->computable) continue;
        const auto type = static_cast<GgmlType>(id);
        GgufWriter w = base();
        w.add_tensor("blk.0.ffn_down.weight", type, {256, 4}, random_matrix(type, 4, 256, rng));
        w.write(dir + "/type-" + std::string(traits->name) + ".gguf");
        ++count;
    }
    {
        GgufWriter w = base();
        w.add_tensor("token_embd.weight", GgmlType::Q8_0, {96, 8},
                     random_matrix(GgmlType::Q8_0, 8, 96, rng));
        w.add_tensor("blk.0.attn_q.weight", GgmlType::Q5_0, {96, 96},
                     random_matrix(GgmlType::Q5_0, 96, 96, rng));
        w.add_tensor("blk.0.ffn_down.weight", GgmlType::Q4_K, {256, 96},
                     random_matrix(GgmlType::Q4_K, 96, 256, rng));
        w.add_tensor("blk.0.attn_v.weight", GgmlType::Q6_K, {256, 32},
                     random_matrix(GgmlType::Q6_K, 32, 256, rng));
        w.write(dir + "/mixed-q4_k_m.gguf");
        ++count;
    }
    {
        GgufWriter w = base();  // IQ2_XXS (66 bytes per 256): parsed, never computed
        w.add_tensor("blk.0.attn_q.weight", static_cast<GgmlType>(16), {256, 2},
                     std::vector<uint8_t>(132, 0x11));
        w.write(dir + "/unsupported-iq2_xxs.gguf");
        ++count;
    }
    std::printf("wrote %d seeds to %s\n", count, dir.c_str());
    return 0;
}
