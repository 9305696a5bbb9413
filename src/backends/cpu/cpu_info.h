// What this x86 CPU can do, read once with cpuid/xgetbv (the OS must save the
// wide registers too), plus its cache sizes: the CPU backend picks its kernel
// set (Isa) and its GEMM block sizes from this at start. Printed by
// `kiln info --cpu` and in the CPU plan. Tested in tests/unit/test_cpu_backend.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::cpu {

struct CpuInfo {
  std::string vendor, brand;
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx_vnni = false;
  // AMX tiles with int8 dot products, usable: the CPU has them, the OS saves
  // the tile state, and Linux granted this process the tile data
  // (arch_prctl ARCH_REQ_XCOMP_PERM, asked once here).
  bool amx_int8 = false;
  int64_t l1d_bytes = 32 << 10, l2_bytes = 512 << 10, l3_bytes = 8 << 20;  // per core (L3: shared)
  int logical_cpus = 1;
};

const CpuInfo& cpu_info();

// Kernel sets, best last. kAvx2 needs AVX2+FMA; kAvx512 needs F, BW, VL, DQ;
// kAvx512Amx ("avx512-amx") is the AVX-512 set whose int8 GEMM runs on AMX
// tiles (needs amx_int8 and AVX-512 VNNI; fp32 is the AVX-512 set's).
enum class Isa { kPortable, kAvx2, kAvx512, kAvx512Amx };
std::string_view isa_name(Isa isa);
Isa best_isa(const CpuInfo& info = cpu_info());
bool isa_available(Isa isa, const CpuInfo& info = cpu_info());
// "portable" | "avx2" | "avx512" | "avx512-amx" | "auto" -> Isa (auto: best_isa()).
bool parse_isa(std::string_view name, Isa* out);

// One line: "AMD EPYC, avx2 fma, L1d 32 KiB, L2 512 KiB, L3 32 MiB".
std::string describe(const CpuInfo& info = cpu_info());

}  // namespace kiln::cpu
