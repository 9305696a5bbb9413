// The CPU backend's kernels for one instruction set, as one struct of function
// pointers picked once at compile time of a model (ORT's MLAS and XNNPACK do
// the same): the GEMM microkernel and its tile, and the row kernels that the
// fused ops call (activations, depthwise convolution, softmax, layernorm).
// Sets: kernels_portable.cpp (plain C++), kernels_avx2.cpp (AVX2+FMA),
// kernels_avx512.cpp (AVX-512). Every set is tested against the reference
// backend in tests/unit/test_cpu_kernels.cpp.
#pragma once
#include <cstdint>

#include "backends/cpu/cpu_info.h"

namespace kiln::cpu {

// Activation applied in an epilogue, as the ONNX op of that name computes it.
enum class Act : uint8_t { kNone, kRelu, kClip, kHardSwish, kSigmoid, kGelu, kGeluTanh, kLeakyRelu };

// One depthwise-convolution channel: `in` is the input plane [ih, iw] (not
// padded), `out` the output plane [oh, ow]; y = act(sum w * x + bias) over
// the plane zero-padded to [hp, wp] (pt rows on top, pl columns on the left).
// The kernel first copies the plane, padded, into `scratch`
// (depthwise_scratch_floats() floats, private to the calling thread), with
// its columns split into sw phases (column x at phase x % sw, index x / sw)
// so that every tap of every stride reads consecutive floats.
struct DepthwiseArgs {
  const float* in;
  float* out;
  const float* w;  // [kh, kw]
  float bias;
  int64_t ih, iw, pt, pl, hp, wp, oh, ow, kh, kw, sh, sw, dh, dw;
  Act act;
  float alpha, beta;
  float* scratch;
};

// Floats per phase row of the split padded plane: wide enough that every
// output block of 8 reads whole vectors (ow rounded up to 8 plus the largest
// tap offset), and that every padded column has a place.
// Rounded up to 8, so that the kernel clears and fills rows a vector at a time.
inline int64_t depthwise_phase_width(const DepthwiseArgs& a) {
  const int64_t span = (a.kw - 1) * a.dw, reads = (a.ow + 7) / 8 * 8 + (a.sw == 1 ? span : span / a.sw);
  const int64_t cover = a.sw == 1 ? a.wp : (a.wp + a.sw - 1) / a.sw;
  return ((reads > cover ? reads : cover) + 7) / 8 * 8;
}
inline int64_t depthwise_scratch_floats(const DepthwiseArgs& a) { return a.hp * a.sw * depthwise_phase_width(a); }

// Eight depthwise channels at once, channel-interleaved inside the kernel
// (NCHW8c): lane c of every vector is channel c, so a plane of 7x7 costs as
// much per output as one of 112x112 (the per-plane kernel above pays its
// row setup and tails once per channel: 5-7x ONNX Runtime's time on
// MobileNet-v2's 14x14 and 7x7 layers). The kernel transposes the eight
// planes, zero-padded, into `scratch` [hp][wp][8], runs the taps over it
// and transposes each output row back into the eight output planes.
// Square kernels of 3 or 5, stride 1 or 2, no dilation (depthwise8_takes).
struct Depthwise8Args {
  const float* in;  // channel c's plane [ih, iw] at in + c * in_plane
  float* out;       // channel c's plane [oh, ow] at out + c * out_plane
  int64_t in_plane, out_plane;
  const float* w;     // [k * k][8]: tap-major, channel in the lane
  const float* bias;  // [8]
  int64_t ih, iw, pt, pl, hp, wp, oh, ow, k, s;
  Act act;  // kNone, kRelu or kClip(alpha, beta); the caller applies others
  float alpha, beta;
  float* scratch;  // depthwise8_scratch_floats() floats, private to the calling thread
};
inline bool depthwise8_takes(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dw) {
  return kh == kw && (kh == 3 || kh == 5) && sh == sw && (sh == 1 || sh == 2) && dh == 1 && dw == 1;
}
inline int64_t depthwise8_scratch_floats(const Depthwise8Args& a) { return (a.hp * a.wp + a.ow + 8) * 8; }

// What the GEMM microkernel applies to a full tile as it stores it, after the
// last k block: + bias (per row or per column of the tile), + residual
// (row stride ldr), then Relu or Clip(lo, hi) in registers. Other
// activations (act = kNone here) run afterwards through activate().
struct TileEpilogue {
  const float* bias_row = nullptr;  // mr values
  const float* bias_col = nullptr;  // nr values
  const float* residual = nullptr;
  int64_t ldr = 0;
  Act act = Act::kNone;  // kNone, kRelu or kClip only
  float lo = 0, hi = 0;
};

// One call of KernelSet::conv_chunk: a tile of conv_chunk_px output pixels
// x conv_chunk_oc output channels over one chunk of the taps (the caller
// walks the chunks in order, so that a chunk's weights stay in L1 across
// many tiles). Pixel i's window starts at px[i] (entries past pv repeat
// px[0]); tap t reads px[i][koff[t]] and weights w[t * conv_chunk_oc + j].
// acc ([px][oc]) holds the partial sums between chunks: zero at `first`,
// read otherwise. At `last` with out not null the sums + bias[j] (+ res[j *
// plane + i]), then Relu/Clip(lo, hi), go to out + j * plane + i for j <
// ocv, i < pv; otherwise (a tile across images at `last` too) they stay in
// acc.
struct ConvChunkArgs {
  int64_t k;
  const float* w;
  const int64_t* koff;
  const float* const* px;
  float* acc;
  bool first, last;
  float* out;
  const float* res;
  int64_t plane;
  int ocv, pv;
  const float* bias;
  Act act;
  float lo, hi;
  const float* prefetch;  // lines to fetch into L1 on the way, one per tap (for the next chunk)
  int64_t prefetch_lines;
};

struct KernelSet {
  Isa isa;
  const char* gemm_name;  // e.g. "gemm_f32_avx2_6x16"
  int mr, nr;             // GEMM register tile: mr rows of A x nr columns of B
  // c[mr x nr] (row stride ldc) (+)= a-panel [kc][mr] x b [kc][nr] (row
  // stride ldb: nr for a packed panel, the matrix's row stride when read in
  // place), then the epilogue when e != nullptr. Only c's first `rows`
  // (1..mr) rows are read and written (the tile at the bottom edge of C,
  // whose A panel is zero-padded).
  void (*gemm_ukernel)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                       bool accumulate, const TileEpilogue* e, int rows);
  // The same over the first nr/2 columns of the b-panel (still nr floats
  // per k) into c[mr x nr/2], no epilogue: the last panel of a matrix with
  // nr/2 columns left or fewer (a 7x7 image's 49 = 3 x 16 + 1 columns).
  void (*gemm_ukernel_half)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
  // c[rows x cols] (+)= a-panel [kc][mr] x the first `cols` floats of each
  // b row (row stride ldb), written straight into C, no epilogue: the last
  // panel of a matrix with 1..narrow_cols columns left. A vector runs down
  // the tile's rows, one accumulator (and k phase) per column, so one column
  // costs one FMA per k where the half-width tile paid mr (a 7x7 image's
  // 49th column took 17% of a 512 -> 2048 1x1 convolution's time).
  void (*gemm_ukernel_narrow)(int64_t kc, const float* a, const float* b, int64_t ldb, int cols, float* c,
                              int64_t ldc, bool accumulate, int rows);
  int narrow_cols;  // 0: none
  // x[0..n) = act(x) in place.
  void (*activate)(Act act, float alpha, float beta, float* x, int64_t n);
  void (*depthwise)(const DepthwiseArgs& a);
  void (*depthwise8)(const Depthwise8Args& a);
  // Each of `rows` rows of n floats, in place: softmax.
  void (*softmax_rows)(float* x, int64_t rows, int64_t n);
  // y = (x - mean) / sqrt(var + eps) * gamma + beta over each row of n floats.
  void (*layernorm_rows)(const float* x, float* y, int64_t rows, int64_t n, const float* gamma, const float* beta,
                         float eps);
  // Winograd F(4x4, 3x3) and F(2x2, 3x3) ([0] and [1]) over one panel of nr
  // tiles, a tile per lane (kernels_impl.inc, ops_winograd.cpp): input
  // patches -> the 36 (16) B panels; one output channel's product rows ->
  // its 4x4 (2x2) outputs + bias. The input image needs 16 floats of slack after it.
  void (*winograd_input_panel[2])(const float* img, int64_t plane, int64_t wp, const int64_t* tile_off, int count,
                                  int64_t c, float* v, int64_t xs);
  void (*winograd_output_panel[2])(const float* m, int64_t ms, int i, float bias, float* y);
  // Optional (nullptr: the caller scatters): the whole 4x4 tiles j < count
  // with whole[j] of y[16][nr] (F(4x4) outputs) to out_plane + at[j] (row
  // stride ow), + the residual at the same place, then Relu / Clip(lo, hi).
  void (*winograd_store4)(const float* y, int count, const int64_t* at, const bool* whole, const float* res,
                          float* out, int64_t ow, Act act, float lo, float hi);
  // Optional (nullptr: not in this set): a direct convolution tile of
  // conv_px output pixels x conv_oc output channels, for strided
  // convolutions (ops_conv.cpp), read without packing: out[pixel i][oc j] =
  // bias[j] + sum over taps t < k of px[i][koff[t]] * w[t * conv_oc + j]
  // (+ res[j * plane + i] when res is not null), then Relu/Clip (act, lo,
  // hi), stored to out + j * plane + i for j < ocv, i < pv. px has conv_px
  // entries (those past pv repeat px[0]). With raw not null the sums alone
  // go to raw[i * conv_oc + j] instead (for pixels of several images: the
  // caller finishes them).
  void (*conv_direct)(int64_t k, const float* w, const int64_t* koff, const float* const* px, float* out,
                      const float* res, int64_t plane, int ocv, int pv, const float* bias, Act act, float lo,
                      float hi, float* raw);
  int conv_px, conv_oc;
  // Optional: the direct tile for layers with many input channels, run a
  // chunk of taps at a time (ConvChunkArgs).
  void (*conv_chunk)(const ConvChunkArgs& a);
  int conv_chunk_px, conv_chunk_oc;
  // Whether the direct tile also beats the implicit GEMM on layers with
  // many input channels (strided, and stride-1 kernels larger than 1x1 that
  // Winograd does not take), not only on stems of at most 4 channels.
  bool conv_direct_wide;
};

// The set for `isa` (which must be available on this CPU).
const KernelSet& kernel_set(Isa isa);

// Defined in the per-ISA files.
const KernelSet& kernel_set_portable();
const KernelSet& kernel_set_avx2();
const KernelSet& kernel_set_avx512();
// The AVX-512 set under Isa::kAvx512Amx (its int8 GEMM is AMX's: qkernels.h).
const KernelSet& kernel_set_avx512_amx();

}  // namespace kiln::cpu
