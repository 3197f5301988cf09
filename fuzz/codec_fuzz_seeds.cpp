// Writes small valid units of every level into a directory: a seed corpus for codec_fuzz.
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "common/fp16.h"

int main(int argc, char** argv) {
    using namespace sparkv::codec;
    if (argc != 2) {
        std::fprintf(stderr, "usage: codec_fuzz_seeds DIR\n");
        return 2;
    }
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const UnitShape shapes[] = {{1, 1, 1}, {4, 2, 8}, {16, 3, 16}, {0, 1, 4}};
    int count = 0;
    for (const UnitShape& s : shapes) {
        std::vector<uint16_t> k(s.elements()), v(s.elements());
        for (auto& x : k) x = sparkv::fp32_to_fp16(3.0f * normal(rng));
        for (auto& x : v) x = sparkv::fp32_to_fp16(normal(rng));
        for (const LevelInfo& info : all_levels()) {
            const auto bytes = encode_unit({7, 1, 2}, s, contiguous(k.data(), s),
                                           contiguous(v.data(), s), info.level);
            std::ofstream(std::string(argv[1]) + "/seed" + std::to_string(count++),
                          std::ios::binary)
                .write(reinterpret_cast<const char*>(bytes.data()),
                       static_cast<std::streamsize>(bytes.size()));
        }
    }
    return 0;
}
