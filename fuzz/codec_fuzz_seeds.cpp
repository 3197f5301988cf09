// Writes small valid units of every level into a directory: a seed corpus for codec_fuzz. The
// calibrated levels come with and without salient rows (unit format versions 2 and 3).
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/profile.h"
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
    CodecProfile profile;
    profile.model_fingerprint = 7;
    profile.n_layers = 3;
    profile.sink_tokens = 1;
    CodecProfile::LevelTable table;
    table.level = Level::c5;
    table.bits.assign(3, BitWidths{4, 3});
    profile.levels.push_back(table);
    int count = 0;
    const auto write = [&](const std::vector<uint8_t>& bytes) {
        std::ofstream(std::string(argv[1]) + "/seed" + std::to_string(count++), std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()));
    };
    for (const UnitShape& s : shapes) {
        std::vector<uint16_t> k(s.elements()), v(s.elements());
        for (auto& x : k) x = sparkv::fp32_to_fp16(3.0f * normal(rng));
        for (auto& x : v) x = sparkv::fp32_to_fp16(normal(rng));
        for (const LevelInfo& info : all_levels()) {
            write(encode_unit({7, 1, 2}, s, contiguous(k.data(), s), contiguous(v.data(), s),
                              info.level));
        }
        const std::vector<uint32_t> rows = {0, s.n_tokens / 2, s.n_tokens - 1};
        for (uint32_t chunk : {0u, 1u})
            for (bool salient : {false, true}) {
                EncodeOptions o(Level::c5);
                o.profile = &profile;
                if (salient && s.n_tokens >= 3) o.salient_rows = rows;
                write(encode_unit({7, chunk, 2}, s, contiguous(k.data(), s),
                                  contiguous(v.data(), s), o));
            }
    }
    return 0;
}
