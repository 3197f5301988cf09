#include "engine/kernels/isa.h"

#include <cstdlib>
#include <string_view>

#include "common/error.h"

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

Isa cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    if (avx512) return Isa::avx512;
    if (avx2) return Isa::avx2;
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
