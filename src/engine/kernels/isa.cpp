#include "engine/kernels/isa.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

namespace sparkv::kernels {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512:
            return "avx512";
        case Isa::avx2:
            return "avx2";
        case Isa::portable:
            break;
    }
    return "portable";
}

#if defined(__x86_64__) && defined(__GNUC__)
namespace {

// The CPU's feature bits, read with cpuid directly: clang 14 and 16 reject
// __builtin_cpu_supports("f16c"), and cpuid also tells whether the OS saves the wide registers.
struct CpuFeatures {
    bool avx2 = false;    // AVX2 + FMA + F16C, with the OS saving YMM state
    bool avx512 = false;  // F, BW, VL, DQ, VNNI, with the OS saving ZMM state
};

uint64_t read_xcr0() {
    uint32_t eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures read_cpu_features() {
    CpuFeatures f;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
    const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28),
               f16c = ecx & (1u << 29);
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_saved = (xcr0 & 0x6) == 0x6;    // SSE and AVX state
    const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;  // plus opmask and ZMM state
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
    const bool avx2 = ebx & (1u << 5), avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17),
               avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31),
               avx512vnni = ecx & (1u << 11);
    f.avx2 = ymm_saved && avx2 && fma && f16c;
    f.avx512 = f.avx2 && zmm_saved && avx512f && avx512bw && avx512vl && avx512dq && avx512vnni;
    return f;
}

}  // namespace
#endif

Isa cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
    const CpuFeatures f = read_cpu_features();
    if (f.avx512) return Isa::avx512;
    if (f.avx2) return Isa::avx2;
#endif
    return Isa::portable;
}

Isa resolve_isa(const char* override_name, Isa cpu) {
    if (override_name == nullptr || *override_name == '\0') return cpu;
    const std::string_view name(override_name);
    Isa wanted;
    if (name == "portable") {
        wanted = Isa::portable;
    } else if (name == "avx2") {
        wanted = Isa::avx2;
    } else if (name == "avx512") {
        wanted = Isa::avx512;
    } else {
        fail(
            "SPARKV_ISA={} is not an instruction set the kernels know; use portable, avx2 or "
            "avx512 (or unset it)",
            name);
    }
    return static_cast<int>(wanted) < static_cast<int>(cpu) ? wanted : cpu;
}

Isa selected_isa() {
    static const Isa isa = resolve_isa(std::getenv("SPARKV_ISA"), cpu_isa());
    return isa;
}

}  // namespace sparkv::kernels
