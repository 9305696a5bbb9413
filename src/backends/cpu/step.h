// A compiled step of the CPU backend: one node (or a fused group) bound to a
// kernel, with its operands resolved to arena addresses at run time through
// the value table. Steps are built per input-shape specialization by the
// builders in kernel_table.cpp; a node no builder takes runs on the reference
// kernels (a FallbackStep), and the plan says so with the reason.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_set.h"
#include "backends/cpu/qkernels.h"
#include "core/thread_pool.h"
#include "ir/graph.h"

namespace kiln::cpu {

struct RunCtx {
  std::vector<void*>& addr;  // by ValueId: where the value's bytes are this run
  ThreadPool* pool;
  const KernelSet& ks;
  float* f(ir::ValueId id) const { return static_cast<float*>(addr[size_t(id)]); }
};

class Step {
 public:
  virtual ~Step() = default;
  virtual Result<void> run(RunCtx& c) = 0;
  std::string kernel;  // what runs, for the printed plan: "conv2d_f32_implicit_gemm(avx2 6x16) 3x3s1"
};

// What a builder sees: the node in a graph with static shapes and the kernel set.
struct BuildCtx {
  const ir::Graph& g;
  const ir::Node& n;
  const KernelSet& ks;
  int threads;
  // Zero-filled operands of this node in a scratch arena, for builders that
  // time candidate kernels on the real shapes (nullptr: do not measure).
  RunCtx* probe = nullptr;
  // 3x3 stride-1 convolutions: "auto" (time both, keep the faster),
  // "direct" or "winograd" (map::Plan::conv3x3).
  std::string conv3x3 = "auto";
  const ir::ValueType& in_type(size_t i) const { return g.value(n.inputs[i]).type; }
  const ir::ValueType& out_type(size_t i = 0) const { return g.value(n.outputs[i]).type; }
  bool has(size_t i) const { return i < n.inputs.size() && n.inputs[i] != ir::kNoValue; }
  const Tensor* constant(size_t i) const {
    if (!has(i)) return nullptr;
    const ir::Value& v = g.value(n.inputs[i]);
    return v.is_constant() ? &v.constant : nullptr;
  }
};

// A builder returns a step, or nullptr with *why set to the reason the CPU
// kernels do not take this node (the node then runs on the reference kernels).
inline Result<std::unique_ptr<Step>> decline(std::string* why, std::string reason) {
  *why = std::move(reason);
  return std::unique_ptr<Step>();
}
using StepBuilder = Result<std::unique_ptr<Step>> (*)(const BuildCtx& b, std::string* why);
StepBuilder find_builder(ir::OpKind op);

// Builders, by family (ops_conv.cpp, ops_linalg.cpp, ops_elementwise.cpp, ops_misc.cpp).
Result<std::unique_ptr<Step>> build_conv(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_gemm(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_matmul(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_attention(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_binary(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_unary(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_pool(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_global_pool(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_view(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_transpose(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_slice(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_softmax(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_layernorm(const BuildCtx& b, std::string* why);
// Integer ops (ops_quant.cpp).
Result<std::unique_ptr<Step>> build_qconv(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_qgemm(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_qadd(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_quantize(const BuildCtx& b, std::string* why);
Result<std::unique_ptr<Step>> build_dequantize(const BuildCtx& b, std::string* why);

// An inverted residual block run as one step (ops_conv_block.cpp): an
// expansion 1x1 conv (stride 1, no pads, ungrouped), the depthwise conv that
// reads it and, where it pays (project_pays), the projection 1x1 that reads
// that (with its residual); or a depthwise conv and its
// projection alone. All f32 with constant weights, activations none / Relu /
// Clip; the depthwise 3x3 or 5x5, stride 1 or 2, over a multiple of 8
// channels; each value between the stages read by the next stage alone.
struct ConvBlockMatch {
  int nodes = 0;                    // 0: no block starts here; else 2 or 3 consecutive nodes
  std::vector<ir::ValueId> elide;   // the values between the stages (never written)
  ir::ValueId input = ir::kNoValue; // the block's input, read until its last node
};
// readers[v]: how many node inputs read value v, plus one if it is a graph output.
std::vector<int32_t> count_readers(const ir::Graph& g);
ConvBlockMatch match_conv_block(const ir::Graph& g, size_t i, const std::vector<int32_t>& readers, int mr,
                                int threads);
// The step for the block of `count` nodes starting at b.n (as matched).
Result<std::unique_ptr<Step>> build_conv_block(const BuildCtx& b, int count);
// The block's shape: n images of c channels, h x w; e middle channels; the
// depthwise k x k stride s to oh x ow; p projection outputs (0: none).
struct ConvBlockShape {
  int64_t n, c, e, h, w, oh, ow, k, s;
  bool expand;
  int64_t p;
};
// How its work is cut: `chunk` middle channels (a multiple of 8 and of the
// GEMM's mr where there are that many; all of them without an expansion)
// by `band` output rows per piece; each (image, band) splits its chunks over
// `groups` tasks (1 with a projection). The buffers and a band's input rows
// fit in budget_bytes, whole planes first (no rows computed twice); at least
// 4 tasks per thread where the shape allows.
struct ConvBlockTiling {
  int64_t chunk, band, groups;
};
ConvBlockTiling conv_block_tiling(const ConvBlockShape& b, int mr, int threads, int64_t budget_bytes);
// Whether a block with a projection (b.p > 0) had better run it in the step.
bool project_pays(const ConvBlockShape& b, int mr, int threads);

// A 3x3 stride-1 dilation-1 ungrouped convolution for ops_winograd.cpp.
struct WinogradConvDesc {
  int64_t n, c, h, w, m, pt, pl, oh, ow;
  const float* weights;  // [m, c, 3, 3], alive as long as the graph
  std::vector<float> bias;
  ir::ValueId x, z, y;
  Act act;
  float alpha, beta;
};
// The Winograd output tile (4: F(4x4, 3x3), 2: F(2x2, 3x3)) whose padded GEMM
// work (tiles padded to the microkernel's nr) is the smaller, if it is
// clearly below the direct implicit GEMM's; 0 if neither pays.
int winograd_tile(int64_t batch, int64_t oh, int64_t ow, int nr);
// That smaller padded GEMM work over the direct kernel's.
double winograd_work_ratio(int64_t batch, int64_t oh, int64_t ow, int nr);
// The smaller-work tile, whether or not it pays (--conv3x3 winograd).
int winograd_tile_forced(int64_t batch, int64_t oh, int64_t ow, int nr);
// How a batch's Winograd GEMMs are cut into tasks when its tiles are
// numbered across the images: blocks of `panels` column panels (nr tiles
// each) by row_blocks even shares of the row panels (mr output channels
// each), for c input channels and pts transform points, a task computing
// at most budget_bytes of products at a time. Chosen by a cost model of the
// multiply-adds, the memory traffic of each cut and the threads' balance.
struct WinogradBlocking {
  int64_t panels, row_blocks;
};
WinogradBlocking winograd_blocking(int64_t col_panels, int64_t row_panels, int64_t c, int pts, int mr, int nr,
                                   int threads, int64_t budget_bytes);
std::unique_ptr<Step> make_winograd_conv(const WinogradConvDesc& d, const KernelSet& ks, int tile, int threads);

// An int8 3x3 stride-1 dilation-1 ungrouped QConv for ops_qwinograd.cpp.
struct QWinogradDesc {
  int64_t n, c, h, w, m, pt, pl, oh, ow;
  const int8_t* weights;  // [m, c, 3, 3], alive as long as the graph
  std::vector<QRow> rows;
  ir::ValueId x, y;
  bool x_signed, y_signed;
  int32_t x_zp;
};
// Whether the integer Winograd result is exact: 4 * the largest possible sum
// over 9 * channels products fits an int32.
bool qwinograd_exact(int64_t channels, int64_t max_abs_x, int64_t max_abs_w);
std::unique_ptr<Step> make_qwinograd_conv(const QWinogradDesc& d, const QKernels& qk);

// Median-free probe: the best of `reps` timed runs of the step (after one
// untimed run), in milliseconds.
double time_step(Step& s, RunCtx& c, int reps = 3);

// Splits [0, n) into about `parts` ranges and runs fn(begin, end) on the pool.
// Whether a batch of n images shares out evenly over `threads` as one task
// per image (conv kernels that pad each image into a per-thread buffer).
inline bool images_share_evenly(int64_t n, int threads) {
  return n >= 2 && n >= threads && (n % threads == 0 || n >= 4 * threads);
}

template <class F>
void parallel_ranges(ThreadPool* pool, int64_t n, int64_t min_per_task, F&& fn) {
  int threads = pool ? pool->size() : 1;
  int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(int64_t(threads) * 4, n / std::max<int64_t>(1, min_per_task)));
  if (tasks == 1 || !pool) {
    fn(int64_t(0), n);
    return;
  }
  int64_t per = (n + tasks - 1) / tasks;
  pool->parallel_for(tasks, [&](int64_t t, int) {
    int64_t b = t * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  });
}

}  // namespace kiln::cpu

namespace kiln::ir {
enum class FusedActivation;
}
namespace kiln::cpu {
// The epilogue activation of a kiln FusedConv / FusedGemm.
Act act_of(ir::FusedActivation a);
}  // namespace kiln::cpu
