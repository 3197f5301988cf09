// Run-time choice of the instruction set the kernels use.
#pragma once

namespace sparkv::kernels {

// Ordered: a higher level can run everything a lower one can.
enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);

// The best level this CPU (and OS) supports: avx2 needs AVX2+FMA+F16C, avx512 additionally
// AVX-512 F/BW/VL/DQ and VNNI (the flags its files are compiled with).
Isa cpu_isa();

// Applies a SPARKV_ISA value ("portable", "avx2", "avx512"; null or empty = no override) to the
// CPU's level. An override can only lower the level; asking for more than the CPU has gives the
// CPU's level. Throws sparkv::Error for an unknown name.
Isa resolve_isa(const char* override_name, Isa cpu);

// cpu_isa() with the SPARKV_ISA environment variable applied, decided once per process.
Isa selected_isa();

}  // namespace sparkv::kernels
