#include "backends/cpu/cpu_info.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace kiln::cpu {
namespace {

#if defined(__x86_64__) || defined(__i386__)
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}
uint64_t xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}
#endif

int64_t sysconf_or(int name, int64_t fallback) {
  long v = sysconf(name);
  return v > 0 ? int64_t(v) : fallback;
}

CpuInfo detect() {
  CpuInfo info;
  info.logical_cpus = int(std::thread::hardware_concurrency());
#if defined(__x86_64__) || defined(__i386__)
  Regs v = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  info.vendor = vendor;
  unsigned max_leaf = v.a;
  Regs l1 = cpuid(1);
  bool osxsave = (l1.c >> 27) & 1;
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  bool ymm_os = (xcr0 & 0x6) == 0x6;       // SSE and AVX state
  bool zmm_os = (xcr0 & 0xe6) == 0xe6;     // + opmask, ZMM_Hi256, Hi16_ZMM
  info.fma = ymm_os && ((l1.c >> 12) & 1);
  info.f16c = ymm_os && ((l1.c >> 29) & 1);
  if (max_leaf >= 7) {
    Regs l7 = cpuid(7, 0);
    info.avx2 = ymm_os && ((l7.b >> 5) & 1);
    info.avx512f = zmm_os && ((l7.b >> 16) & 1);
    info.avx512dq = zmm_os && ((l7.b >> 17) & 1);
    info.avx512bw = zmm_os && ((l7.b >> 30) & 1);
    info.avx512vl = zmm_os && ((l7.b >> 31) & 1);
    info.avx512_vnni = zmm_os && ((l7.c >> 11) & 1);
    Regs l71 = cpuid(7, 1);
    info.avx_vnni = ymm_os && ((l71.a >> 4) & 1);
    // AMX-TILE (edx bit 24) and AMX-INT8 (bit 25); XCR0 bits 17-18: the OS
    // saves XTILECFG and XTILEDATA. Linux also wants each process to ask for
    // the tile data (ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18):
    // without it the first tile instruction faults.
    const bool tiles_os = (xcr0 & (uint64_t(3) << 17)) == (uint64_t(3) << 17);
    if (tiles_os && ((l7.d >> 24) & 1) && ((l7.d >> 25) & 1)) {
#if defined(__linux__) && defined(SYS_arch_prctl)
      info.amx_int8 = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#endif
    }
  }
  Regs ext = cpuid(0x80000000);
  if (ext.a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    info.brand = brand;
    while (!info.brand.empty() && info.brand.back() == ' ') info.brand.pop_back();
    while (!info.brand.empty() && info.brand.front() == ' ') info.brand.erase(0, 1);
  }
#endif
  info.l1d_bytes = sysconf_or(_SC_LEVEL1_DCACHE_SIZE, info.l1d_bytes);
  info.l2_bytes = sysconf_or(_SC_LEVEL2_CACHE_SIZE, info.l2_bytes);
  info.l3_bytes = sysconf_or(_SC_LEVEL3_CACHE_SIZE, info.l3_bytes);
  return info;
}

std::string kib(int64_t b) {
  if (b >= (1 << 20) && b % (1 << 20) == 0) return std::to_string(b >> 20) + " MiB";
  return std::to_string(b >> 10) + " KiB";
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Amx: return "avx512-amx";
  }
  return "?";
}

bool isa_available(Isa isa, const CpuInfo& info) {
  switch (isa) {
    case Isa::kPortable: return true;
    case Isa::kAvx2: return info.avx2 && info.fma;
    case Isa::kAvx512: return info.avx2 && info.fma && info.avx512f && info.avx512bw && info.avx512vl && info.avx512dq;
    case Isa::kAvx512Amx: return isa_available(Isa::kAvx512, info) && info.avx512_vnni && info.amx_int8;
  }
  return false;
}

Isa best_isa(const CpuInfo& info) {
  if (isa_available(Isa::kAvx512Amx, info)) return Isa::kAvx512Amx;
  if (isa_available(Isa::kAvx512, info)) return Isa::kAvx512;
  if (isa_available(Isa::kAvx2, info)) return Isa::kAvx2;
  return Isa::kPortable;
}

bool parse_isa(std::string_view name, Isa* out) {
  if (name == "auto") *out = best_isa();
  else if (name == "portable") *out = Isa::kPortable;
  else if (name == "avx2") *out = Isa::kAvx2;
  else if (name == "avx512") *out = Isa::kAvx512;
  else if (name == "avx512-amx") *out = Isa::kAvx512Amx;
  else return false;
  return true;
}

std::string describe(const CpuInfo& info) {
  std::string s = info.brand.empty() ? info.vendor : info.brand;
  s += ",";
  auto flag = [&](bool on, const char* n) {
    if (on) s += std::string(" ") + n;
  };
  flag(info.avx2, "avx2");
  flag(info.fma, "fma");
  flag(info.avx512f, "avx512f");
  flag(info.avx512bw, "avx512bw");
  flag(info.avx512vl, "avx512vl");
  flag(info.avx512_vnni, "avx512_vnni");
  flag(info.avx_vnni, "avx_vnni");
  flag(info.amx_int8, "amx_int8");
  s += ", L1d " + kib(info.l1d_bytes) + ", L2 " + kib(info.l2_bytes) + ", L3 " + kib(info.l3_bytes);
  s += ", " + std::to_string(info.logical_cpus) + " logical CPUs";
  return s;
}

}  // namespace kiln::cpu
