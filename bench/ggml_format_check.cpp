// Checks SparKV's block formats against the llama.cpp peer's own ggml libraries (loaded with
// dlopen from the node-llama-cpp install, see bench/peer/install.sh): every GGUF type's block
// size and bytes equal ggml's, every weight type SparKV computes with decodes bit-identically,
// SparKV pairs it with the same activation type (vec_dot_type), the activation encoders (Q8_0,
// Q8_1, Q8_K) produce the same bytes as ggml's CPU backend, and the dot products agree. Not part
// of the product or the test suite, because the peer lives outside git.
//
//   ggml_format_check [peer_lib_dir]   (default: ~/.cache/sparkv/peer/.../bins/linux-x64; the
//                                       CPU backend variant is zen4 on AVX-512 VNNI CPUs, else
//                                       haswell)
#include <dlfcn.h>
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/reference.h"

namespace {

using namespace sparkv;

// The parts of ggml's type-trait tables we call (ggml.h / ggml-cpu.h of the peer's release).
using ToFloat = void (*)(const void*, float*, int64_t);
using FromFloat = void (*)(const float*, void*, int64_t);
using VecDot = void (*)(int, float*, size_t, const void*, size_t, const void*, size_t, int);
struct GgmlTypeTraits {
    const char* type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    ToFloat to_float;
    FromFloat from_float_ref;
};
struct GgmlTypeTraitsCpu {
    FromFloat from_float;
    VecDot vec_dot;
    int vec_dot_type;
    int64_t nrows;
};

struct Peer {
    const GgmlTypeTraits* (*traits)(int) = nullptr;
    const GgmlTypeTraitsCpu* (*traits_cpu)(int) = nullptr;
};

void* open_or_die(const std::string& path) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        fmt::print(stderr, "cannot load {}: {}\n", path, dlerror());
        std::exit(2);
    }
    return h;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float stddev) {
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Random bytes with every fp16 scale field replaced by a sane positive value, so that random
// quants exercise the whole layout without infinities.
std::vector<uint8_t> random_blocks(GgmlType type, int64_t n, std::mt19937& rng) {
    std::vector<uint8_t> bytes(ggml_row_bytes(type, n));
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    const size_t bs = ggml_traits(type).block_bytes;
    std::uniform_real_distribution<float> scale(0.001f, 0.1f);
    for (size_t off = 0; off < bytes.size(); off += bs) {
        auto put = [&](size_t at) {
            const uint16_t h = fp32_to_fp16(scale(rng));
            std::memcpy(&bytes[off + at], &h, 2);
        };
        switch (type) {
            case GgmlType::Q4_0:
            case GgmlType::Q5_0:
            case GgmlType::Q8_0:
            case GgmlType::IQ4_NL:
            case GgmlType::IQ4_XS:
                put(0);
                break;
            case GgmlType::Q4_1:
            case GgmlType::Q5_1:
            case GgmlType::Q4_K:
            case GgmlType::Q5_K:
                put(0);
                put(2);
                break;
            case GgmlType::Q2_K:
                put(offsetof(BlockQ2_K, d));
                put(offsetof(BlockQ2_K, dmin));
                break;
            case GgmlType::Q3_K:
                put(offsetof(BlockQ3_K, d));
                break;
            case GgmlType::Q6_K:
                put(offsetof(BlockQ6_K, d));
                break;
            case GgmlType::F16:
            case GgmlType::BF16:
                for (size_t i = 0; i < bytes.size(); i += 2) {
                    const uint16_t h =
                        type == GgmlType::F16 ? fp32_to_fp16(scale(rng)) : fp32_to_bf16(scale(rng));
                    std::memcpy(&bytes[i], &h, 2);
                }
                return bytes;
            default:
                break;
        }
    }
    return bytes;
}

int failures = 0;

void check(bool ok, const std::string& what) {
    fmt::print("{:<64} {}\n", what, ok ? "ok" : "MISMATCH");
    if (!ok) ++failures;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "";
    if (dir.empty()) {
        const char* home = std::getenv("HOME");
        dir = std::string(home ? home : "") +
              "/.cache/sparkv/peer/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64";
    }
    void* base = open_or_die(dir + "/libggml-base.so");
    __builtin_cpu_init();
    const char* variant = __builtin_cpu_supports("avx512vnni") ? "zen4" : "haswell";
    fmt::print("peer CPU backend: libggml-cpu-{}.so\n", variant);
    void* cpu = open_or_die(dir + "/libggml-cpu-" + variant + ".so");
    Peer peer;
    peer.traits = reinterpret_cast<decltype(peer.traits)>(dlsym(base, "ggml_get_type_traits"));
    peer.traits_cpu =
        reinterpret_cast<decltype(peer.traits_cpu)>(dlsym(cpu, "ggml_get_type_traits_cpu"));
    auto cpu_init = reinterpret_cast<void (*)()>(dlsym(cpu, "ggml_cpu_init"));
    if (!peer.traits || !peer.traits_cpu || !cpu_init) {
        fmt::print(stderr, "peer libraries lack the ggml type-trait functions\n");
        return 2;
    }
    cpu_init();

    // Every type id both sides know: same name (case aside: ggml writes "q4_0", "q4_K"), block
    // size and block bytes.
    for (uint32_t id = 0; id < 40; ++id) {
        const auto ours = ggml_type_traits(id);
        if (!ours) continue;
        const auto* theirs = peer.traits(static_cast<int>(id));
        const auto lower = [](std::string_view v) {
            std::string out(v);
            for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return out;
        };
        const bool same =
            theirs && theirs->type_name && lower(ours->name) == lower(theirs->type_name) &&
            theirs->blck_size == ours->block_elements && theirs->type_size == ours->block_bytes;
        check(same, fmt::format("type {} ({}): {} elements in {} bytes per block", id, ours->name,
                                ours->block_elements, ours->block_bytes));
    }

    std::mt19937 rng(1234);
    const int64_t n = 4096;
    const GgmlType weights[] = {GgmlType::Q4_0, GgmlType::Q4_1,   GgmlType::Q5_0, GgmlType::Q5_1,
                                GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K,
                                GgmlType::Q4_K, GgmlType::Q5_K,   GgmlType::Q6_K, GgmlType::IQ4_XS,
                                GgmlType::F16,  GgmlType::BF16};
    for (GgmlType type : weights) {
        const int id = static_cast<int>(type);
        const std::string name(ggml_traits(type).name);
        // 1. Arbitrary blocks decode to identical floats.
        const auto blocks = random_blocks(type, n, rng);
        std::vector<float> ours(n), theirs(n);
        kernels::dequantize_row(type, blocks.data(), ours.data(), n);
        peer.traits(id)->to_float(blocks.data(), theirs.data(), n);
        check(std::memcmp(ours.data(), theirs.data(), n * 4) == 0,
              name + ": random blocks decode identically");
        // 2. Blocks written by our encoder decode identically in ggml.
        const auto x = random_floats(n, rng, 0.05f);
        std::vector<uint8_t> enc(ggml_row_bytes(type, n));
        kernels::quantize_row(type, x.data(), enc.data(), n);
        kernels::dequantize_row(type, enc.data(), ours.data(), n);
        peer.traits(id)->to_float(enc.data(), theirs.data(), n);
        check(std::memcmp(ours.data(), theirs.data(), n * 4) == 0,
              name + ": our encoding decodes identically");
        // 3. Dot product with the paired activation, encoded by ggml's CPU backend.
        const auto* tc = peer.traits_cpu(id);
        const auto act = static_cast<GgmlType>(tc->vec_dot_type);
        check(act == kernels::ref::activation_type(type), name + ": same activation type as ggml");
        const auto a = random_floats(n, rng, 1.0f);
        std::vector<uint8_t> a_theirs(ggml_row_bytes(act, n)), a_ours(a_theirs.size());
        peer.traits_cpu(static_cast<int>(act))->from_float(a.data(), a_theirs.data(), n);
        kernels::quantize_row(act, a.data(), a_ours.data(), n);
        check(a_theirs == a_ours, name + ": activation encoding (" +
                                      std::string(ggml_traits(act).name) + ") byte-identical");
        float dot_theirs = 0;
        tc->vec_dot(static_cast<int>(n), &dot_theirs, 0, enc.data(), 0, a_theirs.data(), 0, 1);
        float dot_ours = 0;
        kernels::Matrix m{type, enc.data(), 1, n, enc.size()};
        ThreadPool pool(1);
        kernels::matmul(m, a.data(), n, 1, &dot_ours, 1, pool);
        // Relative to sum |w| |x| (the scale of the terms), since the dot product itself can
        // cancel to nearly nothing; the two differ only in fp32 summation order.
        double magnitude = 0;
        for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(double(ours[i]) * a[i]);
        const double rel = std::fabs(double(dot_ours) - dot_theirs) / magnitude;
        check(rel < 1e-6, fmt::format("{}: matmul equals ggml vec_dot ({:.7g} vs {:.7g})", name,
                                      dot_ours, dot_theirs));
    }
    // Activation encoders on tie-breaking inputs (x * 127 / amax exactly k + 0.5).
    std::vector<float> ties(256);
    for (int i = 0; i < 256; ++i) ties[i] = static_cast<float>(i % 64 - 32) + 0.5f;
    ties[0] = 127.0f;
    for (GgmlType act : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K}) {
        std::vector<uint8_t> a_theirs(ggml_row_bytes(act, 256)), a_ours(a_theirs.size());
        peer.traits_cpu(static_cast<int>(act))->from_float(ties.data(), a_theirs.data(), 256);
        kernels::quantize_row(act, ties.data(), a_ours.data(), 256);
        check(a_theirs == a_ours, std::string(ggml_traits(act).name) + ": ties round like ggml");
    }
    fmt::print("{}\n", failures == 0 ? "all formats agree with ggml" : "MISMATCHES FOUND");
    return failures == 0 ? 0 : 1;
}
