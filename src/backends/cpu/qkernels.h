// The CPU backend's integer (int8) kernels for one instruction set, picked
// once like the fp32 KernelSet (kernel_set.h): the int8 GEMM microkernel, the
// fixed-point requantization of its int32 sums, and QuantizeLinear /
// DequantizeLinear rows. Every result is bit-identical to the reference
// backend's integer execution (backends/reference/quant_kiln.cpp,
// quant.cpp): sums are exact int32 (wrapping), requantization is the integer
// rounding of quant/quant_params.h, and the float conversions round exactly
// as the reference does.
//
// Two GEMM operand forms (QKernels::kg, the k elements one lane sums):
// - kg 2, int16 pairs (x86 pmaddwd: two int16 products summed into one int32
//   lane): activations minus their zero point and int8 weights both fit
//   int16, and a pair's sum (at most 2 * 255 * 128) cannot saturate, so the
//   products are exact. (pmaddubsw, twice as fast on u8 x s8, saturates its
//   16-bit pair sums: not exact.)
// - kg 4, byte quads (AVX-512 VNNI vpdpbusd: four u8 x s8 products summed
//   into one int32 lane, no intermediate saturation): the activations are
//   packed as raw unsigned bytes (int8 ones with their sign bit flipped, i.e.
//   plus 128), so the sums carry zp' * sum(w) too (zp' the zero point in that
//   unsigned form); fold_x_zero_point() (qgemm.h) takes it out of each output
//   channel's bias once at build time. Exact mod 2^32 like the reference.
// Quad sets take the same packed B panels; where the A (weight) panel keeps
// each row's k contiguous for gb groups (QKernels::gb, 16 for AMX tiles),
// the GEMM's groups are padded to a multiple of gb (zero weights).
// Sets: qkernels_portable.cpp (plain C++, pairs), qkernels_avx2.cpp (AVX2,
// pairs; also the AVX-512 set on CPUs without VNNI), qkernels_avx512.cpp
// (AVX-512 VNNI quads in zmm registers, and AMX tiles: Isa::kAvx512Amx).
// Tested in tests/unit/test_cpu_quant.cpp.
#pragma once
#include <cstdint>

#include "backends/cpu/cpu_info.h"

namespace kiln::cpu {

// Requantization of one output channel (quant/quant_params.h): y =
// clamp(rshift_round_half_even((acc + bias) * multiplier, shift) + zero_point, lo, hi).
struct QRow {
  int32_t bias = 0;
  int32_t multiplier = 0;  // 0: every output is zero_point (clamped)
  int shift = 1;           // 1..62
  int32_t zero_point = 0;
  int32_t lo = 0, hi = 255;
  double scale = 0;  // multiplier * 2^-shift (set_requant), for kernels that requantize in double
  void set_requant(int32_t m, int s) {
    multiplier = m;
    shift = m == 0 ? 1 : s;
    scale = m == 0 ? 0.0 : double(m) / double(int64_t(1) << s);
  }
};

struct QKernels {
  const char* qgemm_name;  // e.g. "qgemm_s16_avx2_6x16"
  int mr, nr;              // register tile: mr output channels x nr columns
  int kg;                  // 2: int16 pairs, 4: u8 x s8 byte quads (above)
  int esize;               // bytes of one packed element: 2 (pairs) or 1 (quads)
  int gb;                  // a-panel group block: 1, or 16 (AMX: whole 64-byte tile rows)
  // c[mr][nr] = a-panel [g / gb][mr][gb][kg] . b-panel [g][nr][kg] over g
  // groups of kg (g a multiple of gb).
  void (*qgemm_ukernel)(int64_t g, const void* a, const void* b, int32_t* c);
  // The same product requantized: row i (output channel) with rows[i] into
  // nr bytes at out + i * ld_out (a whole tile only).
  void (*qgemm_requant_ukernel)(int64_t g, const void* a, const void* b, const QRow* rows, uint8_t* out,
                                int64_t ld_out, bool is_signed);
  // n int32 sums of one channel -> requantized n bytes (int8 if is_signed, else uint8).
  void (*requant_row)(const int32_t* acc, int64_t n, const QRow& r, void* out, bool is_signed);
  // Packs one B panel. Pairs: column j of pair p is (src[k_off[2p] +
  // col_off[j]] - zp, src[k_off[2p+1] + col_off[j]] - zp) as int16 for j <
  // valid, zero past it. Quads: column j of quad q is the four bytes
  // src[k_off[4q + e] + col_off[j]] (sign bit flipped if is_signed; zp
  // unused). k past the end packs 0. `step` 1 or 2: col_off[j] = col_off[0]
  // + step * j for all nr columns (0: no such step).
  void (*pack_b_panel)(const void* src, bool is_signed, int32_t zp, const int64_t* k_off, int64_t k,
                       const int64_t* col_off, int valid, int step, void* dst);
  // y = saturate(round_half_even(x / scale) + zp) into [lo, hi], NaN -> lo.
  void (*quantize_row)(const float* x, int64_t n, float scale, int32_t zp, int32_t lo, int32_t hi, void* out,
                       bool is_signed);
  // y = float(x - zp) * scale.
  void (*dequantize_row)(const void* x, bool is_signed, int64_t n, int32_t zp, float scale, float* out);
  // Integer Winograd F(2x2, 3x3) over one panel of nr tiles (qkernels_impl.inc):
  // the input transform into the 16 packed B panels, the output transform of
  // one output channel's row of the 16 result tiles. Pair sets only (null
  // in quad sets: see qkernels_pairs()).
  void (*wino_input)(const uint8_t* img, int64_t plane, int64_t wp, const int64_t* tile_off, int count, int64_t c,
                     bool is_signed, int32_t zp, int16_t* v, int64_t xs);
  void (*wino_output)(const int32_t* m, int64_t ms, int i, int32_t* y);
};

// The set for `isa` (which must be available on this CPU): for AVX-512 the
// VNNI quad set where the CPU has AVX-512 VNNI, else the AVX2 pair set; for
// avx512-amx the AMX tile set.
const QKernels& qkernels(Isa isa);
// The int16 pair set for `isa` (the integer Winograd kernel's GEMM: its
// transformed operands are int16).
const QKernels& qkernels_pairs(Isa isa);
const QKernels& qkernels_portable();
const QKernels& qkernels_avx2();
const QKernels& qkernels_avx512_vnni();
const QKernels& qkernels_avx512_amx();

}  // namespace kiln::cpu
