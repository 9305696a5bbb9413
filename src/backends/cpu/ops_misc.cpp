// The CPU backend's memory-bound ops (f32): elementwise binary with bias-like
// broadcasting, the fusable activations, pooling, views, transpose, slice, softmax
// and layer normalization. Each splits its rows or planes over the pool.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backends/cpu/step.h"
#include "ir/ops/conv_geometry.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/nn.h"
#include "ir/ops/shape_ops.h"

namespace kiln::cpu {
namespace {

int64_t numel(const Shape& s) {
  int64_t p = 1;
  for (int64_t d : s) p *= d;
  return p;
}

// --- binary: same shape, or the smaller operand repeats along leading dims
// (a bias [C] against [N, S, C]), or a per-channel [C, 1, 1] against NCHW.
enum class BinOp { kAdd, kSub, kMul, kDiv };

class BinaryStep final : public Step {
 public:
  ir::ValueId a, b, y;
  BinOp op;
  int64_t total, inner_b, outer_rep;  // b index for element i: (i / outer_rep) % inner_b ... see run
  bool b_full, b_scalar, b_per_channel, swap;
  int64_t channels, plane;

  Result<void> run(RunCtx& c) override {
    const float* x = c.f(a);
    const float* w = c.f(b);
    float* o = c.f(y);
    parallel_ranges(c.pool, total, 16384, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi;) {
        // Contiguous run of i over which b's index advances by one (or stays).
        int64_t j, run_end, step;
        if (b_full) {
          j = i;
          run_end = hi;
          step = 1;
        } else if (b_scalar) {
          j = 0;
          run_end = hi;
          step = 0;
        } else if (b_per_channel) {
          j = (i / plane) % channels;
          run_end = std::min(hi, (i / plane + 1) * plane);
          step = 0;
        } else {
          j = i % inner_b;
          run_end = std::min(hi, i - j + inner_b);
          step = 1;
        }
        const int64_t len = run_end - i;
        apply(x + i, w + j, step, o + i, len);
        i = run_end;
      }
    });
    return {};
  }

 private:
  void apply(const float* x, const float* w, int64_t step, float* o, int64_t len) const {
    if (step == 0) {
      const float v = *w;
      switch (op) {
        case BinOp::kAdd: for (int64_t t = 0; t < len; ++t) o[t] = x[t] + v; break;
        case BinOp::kSub: for (int64_t t = 0; t < len; ++t) o[t] = swap ? v - x[t] : x[t] - v; break;
        case BinOp::kMul: for (int64_t t = 0; t < len; ++t) o[t] = x[t] * v; break;
        case BinOp::kDiv: for (int64_t t = 0; t < len; ++t) o[t] = swap ? v / x[t] : x[t] / v; break;
      }
      return;
    }
    switch (op) {
      case BinOp::kAdd: for (int64_t t = 0; t < len; ++t) o[t] = x[t] + w[t]; break;
      case BinOp::kSub: for (int64_t t = 0; t < len; ++t) o[t] = swap ? w[t] - x[t] : x[t] - w[t]; break;
      case BinOp::kMul: for (int64_t t = 0; t < len; ++t) o[t] = x[t] * w[t]; break;
      case BinOp::kDiv: for (int64_t t = 0; t < len; ++t) o[t] = swap ? w[t] / x[t] : x[t] / w[t]; break;
    }
  }
};

class UnaryStep final : public Step {
 public:
  ir::ValueId x, y;
  int64_t total;
  Act act;
  float alpha = 0, beta = 0;
  Result<void> run(RunCtx& c) override {
    const float* in = c.f(x);
    float* out = c.f(y);
    parallel_ranges(c.pool, total, 16384, [&](int64_t lo, int64_t hi) {
      if (in != out) std::memcpy(out + lo, in + lo, sizeof(float) * size_t(hi - lo));
      c.ks.activate(act, alpha, beta, out + lo, hi - lo);
    });
    return {};
  }
};

class PoolStep final : public Step {
 public:
  ir::ValueId x, y;
  bool max;
  bool count_pad;
  DType dtype = DType::kF32;  // MaxPool also takes u8 / i8 (quantized graphs)
  int64_t planes, h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
  Result<void> run(RunCtx& c) override {
    if (dtype == DType::kU8) max_planes_8bit(c, 0);
    else if (dtype == DType::kI8) max_planes_8bit(c, 0x80);
    else if (max) max_planes<float>(c);
    else pool_planes<float>(c);
    return {};
  }

 private:
  // MaxPool, one output row at a time: the max down the window's rows that
  // fall inside the image (contiguous: vectorizes) into a row buffer whose
  // pad columns hold the type's lowest value, then the max across the window
  // (stride 2, the ResNet stem's 3x3 pool, with the column pairs formed
  // first). No bounds checks and, for 8-bit types, no float conversions.
  // As the reference: a window of only padding gives lowest(), NaN never
  // wins a comparison. (Padding the whole plane first, then the same loops,
  // was 2.7x ORT's time on ResNet-50's pool.)
  template <class T>
  void max_planes(RunCtx& c) const {
    const T* in = static_cast<const T*>(c.addr[size_t(x)]);
    T* out = static_cast<T*>(c.addr[size_t(y)]);
    const int64_t wpd = std::max(pl + w, (ow - 1) * sw + (kw - 1) * dw + 1);
    const bool pairs = sw == 2 && dw == 1 && kw == 3;
    parallel_ranges(c.pool, planes, 1, [&](int64_t lo, int64_t hi) {
      thread_local std::vector<T> colbuf, pairbuf;
      colbuf.assign(size_t(wpd + 1), std::numeric_limits<T>::lowest());  // pad columns stay lowest()
      pairbuf.resize(size_t(ow + 1));
      T* col = colbuf.data();
      T* mid = col + pl;  // the image's columns
      T* pm = pairbuf.data();
      for (int64_t p = lo; p < hi; ++p) {
        const T* src = in + p * h * w;
        T* dst = out + p * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy0 = oy * sh - pt;
          int64_t ky = 0, kend = 0;
          window_rows(iy0, &ky, &kend);
          T* row = dst + oy * ow;
          if (ky == kend) {
            std::fill(row, row + ow, std::numeric_limits<T>::lowest());
            continue;
          }
          std::memcpy(mid, src + (iy0 + ky * dh) * w, sizeof(T) * size_t(w));
          for (++ky; ky < kend; ++ky) {
            const T* r = src + (iy0 + ky * dh) * w;
            for (int64_t i = 0; i < w; ++i) mid[i] = mid[i] < r[i] ? r[i] : mid[i];
          }
          if (pairs) {
            // pm[i] = max(col[2i], col[2i+1]); out[o] = max(pm[o], col[2o+2]).
            for (int64_t i = 0; i < ow; ++i) pm[i] = col[2 * i] < col[2 * i + 1] ? col[2 * i + 1] : col[2 * i];
            for (int64_t o = 0; o < ow; ++o) row[o] = pm[o] < col[2 * o + 2] ? col[2 * o + 2] : pm[o];
          } else {
            for (int64_t ox = 0; ox < ow; ++ox) {
              T m = col[ox * sw];
              for (int64_t kx = 1; kx < kw; ++kx) m = m < col[ox * sw + kx * dw] ? col[ox * sw + kx * dw] : m;
              row[ox] = m;
            }
          }
        }
      }
    });
  }

  // The window rows [ky, kend) inside the image, for a window starting at input row iy0.
  void window_rows(int64_t iy0, int64_t* ky, int64_t* kend) const {
    *ky = 0;
    while (*ky < kh && iy0 + *ky * dh < 0) ++*ky;
    *kend = kh;
    while (*kend > *ky && iy0 + (*kend - 1) * dh >= h) --*kend;
  }

  // The same for 8-bit values, as unsigned bytes: int8 ones with the sign bit
  // flipped (order-preserving; lowest() becomes 0), so that one unsigned byte
  // max serves both (SSE2's pmaxub; this file is built for the baseline ISA,
  // where the generic loops above stayed scalar: the u8 pool took longer
  // than the f32 one). The stride-2 3x3 window reads the row as 16-bit words
  // (column 2i low, 2i + 1 high): max(word i, word i >> 8, word i + 1) holds
  // the output in its low byte.
  void max_planes_8bit(RunCtx& c, uint8_t flip) const {
    const uint8_t* in = static_cast<const uint8_t*>(c.addr[size_t(x)]);
    uint8_t* out = static_cast<uint8_t*>(c.addr[size_t(y)]);
    const int64_t wpd = std::max(pl + w, (ow - 1) * sw + (kw - 1) * dw + 1);
    const bool pairs = sw == 2 && dw == 1 && kw == 3;
    parallel_ranges(c.pool, planes, 1, [&](int64_t lo, int64_t hi) {
      thread_local std::vector<uint8_t> colbuf;
      colbuf.assign(size_t(wpd + 32), 0);  // pad columns stay 0 (lowest); slack for 16-byte loads
      uint8_t* col = colbuf.data();
      uint8_t* mid = col + pl;  // the image's columns
      for (int64_t p = lo; p < hi; ++p) {
        const uint8_t* src = in + p * h * w;
        uint8_t* dst = out + p * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy0 = oy * sh - pt;
          int64_t ky = 0, kend = 0;
          window_rows(iy0, &ky, &kend);
          uint8_t* row = dst + oy * ow;
          if (ky == kend) {
            std::fill(row, row + ow, flip);  // lowest(): 0 (u8) or -128 (i8)
            continue;
          }
          max_row_8bit(mid, src + (iy0 + ky * dh) * w, w, flip, true);
          for (++ky; ky < kend; ++ky) max_row_8bit(mid, src + (iy0 + ky * dh) * w, w, flip, false);
          int64_t o = 0;
          if (pairs) {
#if defined(__SSE2__)
            const __m128i lowb = _mm_set1_epi16(0xff), f = _mm_set1_epi8(char(flip));
            for (; o + 8 <= ow; o += 8) {  // reads col[2o .. 2o + 17] (slack above)
              const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + 2 * o));
              const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + 2 * o + 2));
              const __m128i m = _mm_and_si128(_mm_max_epu8(_mm_max_epu8(a, _mm_srli_epi16(a, 8)), b), lowb);
              _mm_storel_epi64(reinterpret_cast<__m128i*>(row + o), _mm_xor_si128(_mm_packus_epi16(m, m), f));
            }
#endif
            for (; o < ow; ++o) row[o] = uint8_t(std::max({col[2 * o], col[2 * o + 1], col[2 * o + 2]}) ^ flip);
          } else {
            for (; o < ow; ++o) {
              uint8_t m = col[o * sw];
              for (int64_t kx = 1; kx < kw; ++kx) m = std::max(m, col[o * sw + kx * dw]);
              row[o] = uint8_t(m ^ flip);
            }
          }
        }
      }
    });
  }
  // mid[i] = (first ? r[i] ^ flip : max(mid[i], r[i] ^ flip)) for i < n.
  static void max_row_8bit(uint8_t* mid, const uint8_t* r, int64_t n, uint8_t flip, bool first) {
    int64_t i = 0;
#if defined(__SSE2__)
    const __m128i f = _mm_set1_epi8(char(flip));
    for (; i + 16 <= n; i += 16) {
      __m128i v = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + i)), f);
      if (!first) v = _mm_max_epu8(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(mid + i)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(mid + i), v);
    }
#endif
    for (; i < n; ++i) mid[i] = first ? uint8_t(r[i] ^ flip) : std::max(mid[i], uint8_t(r[i] ^ flip));
  }

  template <class T>
  void pool_planes(RunCtx& c) const {
    const T* in = static_cast<const T*>(c.addr[size_t(x)]);
    T* out = static_cast<T*>(c.addr[size_t(y)]);
    parallel_ranges(c.pool, planes, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const T* src = in + p * h * w;
        T* dst = out + p * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            float acc = max ? -std::numeric_limits<float>::infinity() : 0.0f;
            int64_t cnt = 0;
            for (int64_t ky = 0; ky < kh; ++ky) {
              int64_t iy = oy * sh - pt + ky * dh;
              if (iy < 0 || iy >= h) continue;
              for (int64_t kx = 0; kx < kw; ++kx) {
                int64_t ix = ox * sw - pl + kx * dw;
                if (ix < 0 || ix >= w) continue;
                float v = float(src[iy * w + ix]);
                if (max) acc = v > acc ? v : acc;
                else acc += v;
                ++cnt;
              }
            }
            if (!max) acc /= float(count_pad ? kh * kw : std::max<int64_t>(cnt, 1));
            // A window entirely in the padding gives the type's lowest value, as the reference does.
            dst[oy * ow + ox] = cnt == 0 && max ? std::numeric_limits<T>::lowest() : T(acc);
          }
      }
    });
  }
};

class GlobalPoolStep final : public Step {
 public:
  ir::ValueId x, y;
  int64_t planes, size;
  Result<void> run(RunCtx& c) override {
    const float* in = c.f(x);
    float* out = c.f(y);
    parallel_ranges(c.pool, planes, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const float* s = in + p * size;
        float acc = 0;
        for (int64_t i = 0; i < size; ++i) acc += s[i];
        out[p] = acc / float(size);
      }
    });
    return {};
  }
};

class ViewStep final : public Step {
 public:
  ir::ValueId x, y;
  int64_t bytes;
  Result<void> run(RunCtx& c) override {
    if (c.addr[size_t(x)] != c.addr[size_t(y)]) std::memmove(c.addr[size_t(y)], c.addr[size_t(x)], size_t(bytes));
    return {};
  }
};

// Transpose and Slice of 4-byte elements: output element (o_0 .. o_r-1)
// comes from input element in_offset + sum o_d * in_stride[d] (a stride is
// negative for a Slice step below 0). Rows of the last axis are copied
// whole where that axis is contiguous in the input.
class StridedCopyStep final : public Step {
 public:
  ir::ValueId x, y;
  Shape out_shape;
  std::vector<int64_t> in_stride;  // input stride of each output axis
  int64_t in_offset = 0;
  Result<void> run(RunCtx& c) override {
    const uint32_t* in = static_cast<const uint32_t*>(c.addr[size_t(x)]) + in_offset;
    uint32_t* out = static_cast<uint32_t*>(c.addr[size_t(y)]);
    const size_t r = out_shape.size();
    const int64_t inner = out_shape[r - 1], inner_stride = in_stride[r - 1];
    const int64_t rows = numel(out_shape) / std::max<int64_t>(inner, 1);
    parallel_ranges(c.pool, rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t row = lo; row < hi; ++row) {
        int64_t rem = row, off = 0;
        for (size_t d = r - 1; d-- > 0;) {
          off += (rem % out_shape[d]) * in_stride[d];
          rem /= out_shape[d];
        }
        const uint32_t* src = in + off;
        uint32_t* dst = out + row * inner;
        if (inner_stride == 1) std::memcpy(dst, src, sizeof(uint32_t) * size_t(inner));
        else
          for (int64_t i = 0; i < inner; ++i) dst[i] = src[i * inner_stride];
      }
    });
    return {};
  }
};

class SoftmaxStep final : public Step {
 public:
  ir::ValueId x, y;
  int64_t rows, n;
  Result<void> run(RunCtx& c) override {
    const float* in = c.f(x);
    float* out = c.f(y);
    parallel_ranges(c.pool, rows, 8, [&](int64_t lo, int64_t hi) {
      if (in != out) std::memcpy(out + lo * n, in + lo * n, sizeof(float) * size_t((hi - lo) * n));
      c.ks.softmax_rows(out + lo * n, hi - lo, n);
    });
    return {};
  }
};

class LayerNormStep final : public Step {
 public:
  ir::ValueId x, y, gamma_v = ir::kNoValue, beta_v = ir::kNoValue;
  int64_t rows, n;
  float eps;
  Result<void> run(RunCtx& c) override {
    const float* in = c.f(x);
    float* out = c.f(y);
    const float* g = gamma_v == ir::kNoValue ? nullptr : c.f(gamma_v);
    const float* b = beta_v == ir::kNoValue ? nullptr : c.f(beta_v);
    parallel_ranges(c.pool, rows, 8,
                    [&](int64_t lo, int64_t hi) { c.ks.layernorm_rows(in + lo * n, out + lo * n, hi - lo, n, g, b, eps); });
    return {};
  }
};

bool all_f32(const BuildCtx& b) {
  for (size_t i = 0; i < b.n.inputs.size(); ++i)
    if (b.has(i) && b.in_type(i).dtype != DType::kF32) return false;
  return b.out_type().dtype == DType::kF32;
}

}  // namespace

Result<std::unique_ptr<Step>> build_binary(const BuildCtx& bc, std::string* why) {
  if (!all_f32(bc)) return decline(why, "dtype is not f32");
  const Shape& ys = bc.out_type().shape;
  auto s = std::make_unique<BinaryStep>();
  switch (bc.n.op) {
    case ir::OpKind::kAdd: s->op = BinOp::kAdd; break;
    case ir::OpKind::kSub: s->op = BinOp::kSub; break;
    case ir::OpKind::kMul: s->op = BinOp::kMul; break;
    default: s->op = BinOp::kDiv; break;
  }
  // The operand with the output's shape is `a`; swap when it is the second.
  size_t full = bc.in_type(0).shape == ys ? 0 : 1;
  if (bc.in_type(full).shape != ys) return decline(why, "neither operand has the output shape");
  s->swap = full == 1;
  s->a = bc.n.inputs[full];
  s->b = bc.n.inputs[1 - full];
  s->y = bc.n.outputs[0];
  s->total = numel(ys);
  const Shape& bs = bc.in_type(1 - full).shape;
  const int64_t bn = numel(bs);
  s->b_full = bs == ys;
  s->b_scalar = bn == 1;
  s->b_per_channel = false;
  s->inner_b = bn;
  // Trailing-suffix broadcast: bs (without leading 1s) equals ys's last dims.
  Shape tb = bs;
  while (!tb.empty() && tb.front() == 1) tb.erase(tb.begin());
  bool suffix = tb.size() <= ys.size() && std::equal(tb.begin(), tb.end(), ys.end() - int64_t(tb.size()));
  // Per-channel [C, 1, 1] (or [1, C, 1, 1]) against [N, C, H, W].
  if (!s->b_full && !s->b_scalar && !suffix) {
    // Only [C, 1, 1] after leading 1s: [N, 1, 1, 1] with N == C is per image.
    if (ys.size() == 4 && tb.size() == 3 && tb[0] == ys[1] && tb[1] == 1 && tb[2] == 1) {
      s->b_per_channel = true;
      s->channels = ys[1];
      s->plane = ys[2] * ys[3];
    } else {
      return decline(why, "broadcast pattern not handled");
    }
  }
  s->kernel = std::string("binary_f32 ") + std::string(ir::op_name(bc.n.op)) +
              (s->b_full ? "" : s->b_scalar ? " scalar" : s->b_per_channel ? " per-channel" : " row-broadcast");
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_unary(const BuildCtx& bc, std::string* why) {
  if (bc.in_type(0).dtype != DType::kF32) return decline(why, "dtype is not f32");
  auto s = std::make_unique<UnaryStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->total = numel(bc.out_type().shape);
  switch (bc.n.op) {
    case ir::OpKind::kRelu: s->act = Act::kRelu; break;
    case ir::OpKind::kSigmoid: s->act = Act::kSigmoid; break;
    case ir::OpKind::kHardSwish: s->act = Act::kHardSwish; break;
    case ir::OpKind::kGelu:
      s->act = bc.n.attr<ir::GeluAttrs>().approximate == ir::GeluApprox::kTanh ? Act::kGeluTanh : Act::kGelu;
      break;
    case ir::OpKind::kLeakyRelu:
      s->act = Act::kLeakyRelu;
      s->alpha = bc.n.attr<ir::LeakyReluAttrs>().alpha;
      break;
    case ir::OpKind::kClip: {
      s->act = Act::kClip;
      s->alpha = -std::numeric_limits<float>::infinity();
      s->beta = std::numeric_limits<float>::infinity();
      for (size_t i = 1; i < 3; ++i) {
        if (!bc.has(i)) continue;
        const Tensor* t = bc.constant(i);
        if (!t || t->numel() != 1) return decline(why, "Clip bounds are not constants");
        (i == 1 ? s->alpha : s->beta) = float(t->as_double(0));
      }
      break;
    }
    default: return decline(why, "not an activation");
  }
  s->kernel = "activation_f32 " + std::string(ir::op_name(bc.n.op)) + "(" + std::string(isa_name(bc.ks.isa)) + ")";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_pool(const BuildCtx& bc, std::string* why) {
  const DType dt = bc.in_type(0).dtype;
  const bool int8_max = bc.n.op == ir::OpKind::kMaxPool && (dt == DType::kU8 || dt == DType::kI8) &&
                        bc.out_type().dtype == dt;
  if (!all_f32(bc) && !int8_max) return decline(why, "dtype is not f32 (or 8-bit for MaxPool)");
  if (bc.n.outputs.size() > 1 && bc.n.outputs[1] != ir::kNoValue) return decline(why, "MaxPool indices output");
  const Shape& xs = bc.in_type(0).shape;
  if (xs.size() != 4) return decline(why, "not a 2-D pool");
  const bool max = bc.n.op == ir::OpKind::kMaxPool;
  const ir::PoolWindow& win = max ? static_cast<const ir::PoolWindow&>(bc.n.attr<ir::MaxPoolAttrs>())
                                  : static_cast<const ir::PoolWindow&>(bc.n.attr<ir::AveragePoolAttrs>());
  KILN_ASSIGN(auto geo, ir::pool_geometry(win, xs));
  auto s = std::make_unique<PoolStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->max = max;
  s->dtype = dt;
  s->count_pad = !max && bc.n.attr<ir::AveragePoolAttrs>().count_include_pad != 0;
  s->planes = xs[0] * xs[1];
  s->h = xs[2];
  s->w = xs[3];
  s->oh = geo.out[0];
  s->ow = geo.out[1];
  s->kh = geo.kernel[0];
  s->kw = geo.kernel[1];
  s->sh = geo.strides[0];
  s->sw = geo.strides[1];
  s->dh = geo.dilations[0];
  s->dw = geo.dilations[1];
  s->pt = geo.pads_begin[0];
  s->pl = geo.pads_begin[1];
  if (s->count_pad) {
    // count_include_pad counts the pads but not windows that run past them (ceil_mode).
    if (win.ceil_mode) return decline(why, "count_include_pad with ceil_mode");
  }
  s->kernel = std::string(max ? "maxpool2d_" : "avgpool2d_") + (dt == DType::kF32 ? "f32 " : dt == DType::kU8 ? "u8 " : "s8 ") + std::to_string(s->kh) + "x" +
              std::to_string(s->kw) + "s" + std::to_string(s->sh);
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_global_pool(const BuildCtx& bc, std::string* why) {
  if (!all_f32(bc)) return decline(why, "dtype is not f32");
  const Shape& xs = bc.in_type(0).shape;
  if (xs.size() < 3) return decline(why, "rank < 3");
  auto s = std::make_unique<GlobalPoolStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->planes = xs[0] * xs[1];
  s->size = numel(xs) / s->planes;
  s->kernel = "global_avgpool_f32";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_view(const BuildCtx& bc, std::string* why) {
  const auto& it = bc.in_type(0);
  const auto& ot = bc.out_type();
  if (it.dtype != ot.dtype || numel(it.shape) != numel(ot.shape)) return decline(why, "not a pure view");
  auto s = std::make_unique<ViewStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->bytes = dtype_bytes(ot.dtype, numel(ot.shape));
  s->kernel = "view (no copy when planned in place)";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_transpose(const BuildCtx& bc, std::string* why) {
  const auto& it = bc.in_type(0);
  if (dtype_bytes(it.dtype, 1) != 4) return decline(why, "element size is not 4 bytes");
  const Shape& xs = it.shape;
  if (xs.empty()) return decline(why, "scalar");
  std::vector<int64_t> perm = bc.n.attr<ir::TransposeAttrs>().perm;
  if (perm.empty())
    for (size_t i = xs.size(); i-- > 0;) perm.push_back(int64_t(i));
  auto s = std::make_unique<StridedCopyStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->out_shape = bc.out_type().shape;
  Shape st(xs.size(), 1);
  for (size_t i = xs.size() - 1; i-- > 0;) st[i] = st[i + 1] * xs[i + 1];
  for (int64_t p : perm) s->in_stride.push_back(st[size_t(p)]);
  s->kernel = "transpose_32bit";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_slice(const BuildCtx& bc, std::string* why) {
  const auto& it = bc.in_type(0);
  if (dtype_bytes(it.dtype, 1) != 4) return decline(why, "element size is not 4 bytes");
  const Shape& xs = it.shape;
  const Shape& ys = bc.out_type().shape;
  if (xs.empty() || ys.size() != xs.size()) return decline(why, "scalar or rank-changing slice");
  const Tensor* starts = bc.constant(1);
  const Tensor* axes = bc.constant(3);
  const Tensor* steps = bc.constant(4);
  if (!starts || !bc.constant(2) || (bc.has(3) && !axes) || (bc.has(4) && !steps))
    return decline(why, "starts, ends, axes or steps are not constants");
  const int64_t r = int64_t(xs.size()), n = starts->numel();
  if ((axes && axes->numel() != n) || (steps && steps->numel() != n)) return decline(why, "operand lengths differ");
  auto s = std::make_unique<StridedCopyStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->out_shape = ys;
  std::vector<int64_t> stride(size_t(r), 1);
  for (int64_t i = r - 1; i-- > 0;) stride[size_t(i)] = stride[size_t(i + 1)] * xs[size_t(i + 1)];
  s->in_stride = stride;
  // Per sliced axis: the first element taken (ir::slice_start) and the step.
  for (int64_t i = 0; i < n; ++i) {
    int64_t ax = axes ? axes->as_int(i) : i;
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return decline(why, "axis out of range");
    const int64_t d = xs[size_t(ax)], st = steps ? steps->as_int(i) : 1;
    if (st == 0) return decline(why, "step 0");
    if (d == 0 || ys[size_t(ax)] == 0) continue;
    s->in_offset += ir::slice_start(d, starts->as_int(i), st) * stride[size_t(ax)];
    s->in_stride[size_t(ax)] = st * stride[size_t(ax)];
  }
  s->kernel = "slice_32bit";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_softmax(const BuildCtx& bc, std::string* why) {
  if (!all_f32(bc)) return decline(why, "dtype is not f32");
  const Shape& xs = bc.in_type(0).shape;
  int64_t axis = bc.n.attr<ir::SoftmaxAttrs>().axis;
  if (axis < 0) axis += int64_t(xs.size());
  if (xs.empty() || axis != int64_t(xs.size()) - 1) return decline(why, "axis is not the last");
  auto s = std::make_unique<SoftmaxStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  s->n = xs.back();
  s->rows = numel(xs) / std::max<int64_t>(s->n, 1);
  s->kernel = "softmax_f32(" + std::string(isa_name(bc.ks.isa)) + ")";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_layernorm(const BuildCtx& bc, std::string* why) {
  if (!all_f32(bc)) return decline(why, "dtype is not f32");
  if (bc.n.outputs.size() > 1) {
    for (size_t i = 1; i < bc.n.outputs.size(); ++i)
      if (bc.n.outputs[i] != ir::kNoValue) return decline(why, "mean/inv-std outputs");
  }
  const Shape& xs = bc.in_type(0).shape;
  const auto& a = bc.n.attr<ir::LayerNormAttrs>();
  int64_t axis = a.axis < 0 ? a.axis + int64_t(xs.size()) : a.axis;
  if (xs.empty() || axis != int64_t(xs.size()) - 1) return decline(why, "normalizes more than the last axis");
  const int64_t n = xs.back();
  for (size_t i = 1; i < 3; ++i)
    if (bc.has(i) && numel(bc.in_type(i).shape) != n) return decline(why, "scale/bias are not per-feature");
  auto s = std::make_unique<LayerNormStep>();
  s->x = bc.n.inputs[0];
  s->y = bc.n.outputs[0];
  if (bc.has(1)) s->gamma_v = bc.n.inputs[1];
  if (bc.has(2)) s->beta_v = bc.n.inputs[2];
  s->n = n;
  s->rows = numel(xs) / std::max<int64_t>(n, 1);
  s->eps = a.epsilon;
  s->kernel = "layernorm_f32(" + std::string(isa_name(bc.ks.isa)) + ")";
  return std::unique_ptr<Step>(std::move(s));
}

}  // namespace kiln::cpu
