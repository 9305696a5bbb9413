// Input covariance of a layer: vectors are gathered (im2col for Conv) into a
// transposed buffer of kBatch columns and folded into the sums as dot products
// of buffer rows, which reads memory in order instead of one rank-1 update per vector.
#include "quant/input_covariance.h"

#include <algorithm>

#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/ops/conv_geometry.h"
#include "runtime/session.h"

namespace kiln::quant {

using ir::OpKind;

Result<CovarianceAccumulator> CovarianceAccumulator::create(const ir::Node& n, const Shape& w, const std::string& name) {
  CovarianceAccumulator a;
  a.name_ = name;
  a.op_ = n.op;
  a.w_shape_ = w;
  for (int64_t d : w)
    if (d < 0) return make_error(name + ": the weight shape " + shape_str(w) + " is not static");
  switch (n.op) {
    case OpKind::kConv: {
      a.conv_ = n.attr<ir::ConvAttrs>();
      if (w.size() < 3) return make_error(name + ": Conv weight " + shape_str(w) + " has rank < 3");
      if (a.conv_.group < 1 || w[0] % a.conv_.group != 0)
        return make_error(name + ": group " + std::to_string(a.conv_.group) + " does not divide the " +
                          std::to_string(w[0]) + " output channels");
      a.groups_ = a.conv_.group;
      a.k_ = numel(w) / std::max<int64_t>(w[0], 1);
      break;
    }
    case OpKind::kGemm:
      if (n.attr<ir::GemmAttrs>().transA) return make_error(name + ": Gemm with transA is not supported for GPTQ");
      if (w.size() != 2) return make_error(name + ": Gemm weight " + shape_str(w) + " is not 2-D");
      a.k_ = n.attr<ir::GemmAttrs>().transB ? w[1] : w[0];
      break;
    case OpKind::kMatMul:
      if (w.size() != 2) return make_error(name + ": MatMul weight " + shape_str(w) + " is not 2-D");
      a.k_ = w[0];
      break;
    default:
      return make_error(name + ": input covariance is defined for Conv, Gemm and MatMul only");
  }
  a.sum_.assign(size_t(a.groups_ * a.k_ * a.k_), 0.0);
  a.buf_.assign(size_t(a.groups_ * a.k_ * kBatch), 0.0);
  return a;
}

void CovarianceAccumulator::flush() {
  const int64_t k = k_, nb = filled_;
  for (int64_t g = 0; g < groups_; ++g) {
    const double* b = buf_.data() + g * k * kBatch;
    double* s = sum_.data() + g * k * k;
    for (int64_t i = 0; i < k; ++i) {
      const double* bi = b + i * kBatch;
      for (int64_t j = 0; j <= i; ++j) {
        const double* bj = b + j * kBatch;
        double d = 0;
        for (int64_t t = 0; t < nb; ++t) d += bi[t] * bj[t];
        s[i * k + j] += d;
      }
    }
  }
  count_ += nb;
  filled_ = 0;
}

void CovarianceAccumulator::push_done() {
  if (++filled_ == kBatch) flush();
}

Result<void> CovarianceAccumulator::add(const Tensor& x) {
  if (x.dtype() != DType::kF32)
    return make_error(name_ + ": the layer input is " + std::string(dtype_name(x.dtype())) +
                      "; GPTQ statistics need float32 activations");
  if (op_ == OpKind::kConv) return add_conv(x);
  if (x.rank() < 1 || x.dim(x.rank() - 1) != k_ || (op_ == OpKind::kGemm && x.rank() != 2))
    return make_error(name_ + ": layer input " + shape_str(x.shape()) + " does not end in the weight's " +
                      std::to_string(k_) + " input features");
  const float* p = x.data<float>();
  const int64_t rows = x.numel() / std::max<int64_t>(k_, 1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k_; ++i) buf_[size_t(i * kBatch + filled_)] = p[r * k_ + i];
    push_done();
  }
  return {};
}

Result<void> CovarianceAccumulator::add_conv(const Tensor& x) {
  if (x.rank() != int64_t(w_shape_.size()))
    return make_error(name_ + ": layer input " + shape_str(x.shape()) + " does not fit the Conv weight " +
                      shape_str(w_shape_));
  auto geo = ir::conv_geometry(conv_, x.shape(), w_shape_);
  if (!geo.ok()) return make_error(name_ + ": " + geo.error().message);
  const size_t sr = geo->rank();
  // Per spatial axis, the input coordinate of (output index o, kernel index t), -1 in the padding.
  std::vector<std::vector<int64_t>> coord(sr);
  int64_t out_positions = 1, kernel_positions = 1, in_spatial = 1;
  for (size_t a = 0; a < sr; ++a) {
    const int64_t kn = geo->kernel[a];
    coord[a].resize(size_t(geo->out[a] * kn));
    for (int64_t o = 0; o < geo->out[a]; ++o)
      for (int64_t t = 0; t < kn; ++t) {
        int64_t c = o * geo->strides[a] - geo->pads_begin[a] + t * geo->dilations[a];
        coord[a][size_t(o * kn + t)] = c >= 0 && c < geo->in[a] ? c : -1;
      }
    out_positions *= geo->out[a];
    kernel_positions *= kn;
    in_spatial *= geo->in[a];
  }
  const int64_t n = x.dim(0), channels = x.dim(1), cg = channels / groups_;
  const float* p = x.data<float>();
  // Kernel multi-index of each tap, row-major like W's trailing dims.
  std::vector<int64_t> oi(sr), offset(static_cast<size_t>(kernel_positions)), taps(static_cast<size_t>(kernel_positions) * sr);
  for (int64_t kk = 0; kk < kernel_positions; ++kk)
    for (size_t a = sr, rest = size_t(kk); a-- > 0;) {
      taps[size_t(kk) * sr + a] = int64_t(rest % size_t(geo->kernel[a]));
      rest /= size_t(geo->kernel[a]);
    }
  for (int64_t b = 0; b < n; ++b)
    for (int64_t pos = 0; pos < out_positions; ++pos) {
      // Output multi-index, last axis fastest.
      for (size_t a = sr, rest = size_t(pos); a-- > 0;) {
        oi[a] = int64_t(rest % size_t(geo->out[a]));
        rest /= size_t(geo->out[a]);
      }
      // Flat spatial offset of every kernel tap (-1: padding).
      for (int64_t kk = 0; kk < kernel_positions; ++kk) {
        int64_t off = 0;
        for (size_t a = 0; a < sr && off >= 0; ++a) {
          int64_t c = coord[a][size_t(oi[a] * geo->kernel[a] + taps[size_t(kk) * sr + a])];
          off = c < 0 ? -1 : off * geo->in[a] + c;
        }
        offset[size_t(kk)] = off;
      }
      for (int64_t g = 0; g < groups_; ++g) {
        double* col = buf_.data() + g * k_ * kBatch + filled_;
        for (int64_t ci = 0; ci < cg; ++ci) {
          const float* plane = p + ((b * channels) + g * cg + ci) * in_spatial;
          for (int64_t kk = 0; kk < kernel_positions; ++kk) {
            int64_t off = offset[size_t(kk)];
            col[(ci * kernel_positions + kk) * kBatch] = off < 0 ? 0.0 : double(plane[off]);
          }
        }
      }
      push_done();
    }
  return {};
}

InputCovariance CovarianceAccumulator::result() const {
  CovarianceAccumulator copy = *this;
  if (copy.filled_ > 0) copy.flush();
  InputCovariance h;
  h.groups = groups_;
  h.cols = k_;
  h.vectors = copy.count_;
  h.h = std::move(copy.sum_);
  const double scale = copy.count_ > 0 ? 1.0 / double(copy.count_) : 0.0;
  for (int64_t g = 0; g < groups_; ++g) {
    double* s = h.h.data() + g * k_ * k_;
    for (int64_t i = 0; i < k_; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        s[i * k_ + j] *= scale;
        s[j * k_ + i] = s[i * k_ + j];
      }
  }
  return h;
}

Result<InputCovariance> layer_input_covariance(const ir::Graph& g, int node, const CalibSource& src, int64_t samples) {
  if (node < 0 || size_t(node) >= g.nodes.size())
    return make_error("input covariance: node index " + std::to_string(node) + " is not in the graph");
  const ir::Node& n = g.nodes[size_t(node)];
  const std::string where = g.describe(n);
  if (n.inputs.size() < 2 || n.inputs[0] == ir::kNoValue || n.inputs[1] == ir::kNoValue)
    return make_error(where + ": needs an input and a weight for GPTQ statistics");
  const ir::Value& wv = g.value(n.inputs[1]);
  KILN_ASSIGN(CovarianceAccumulator acc,
              CovarianceAccumulator::create(n, wv.is_constant() ? wv.constant.shape() : wv.type.shape, where));
  const ir::ValueId x = n.inputs[0];
  if (g.value(x).is_constant()) return make_error(where + ": the layer input is a constant; GPTQ needs calibration activations");
  if (samples < 0 || samples > src.size())
    return make_error(where + ": asked for " + std::to_string(samples) + " calibration samples; " + src.description() +
                      " has " + std::to_string(src.size()));

  auto graph_input = std::find(g.inputs.begin(), g.inputs.end(), x);
  if (graph_input != g.inputs.end()) {
    const size_t idx = size_t(graph_input - g.inputs.begin());
    KILN_TRY(src.for_each_batch(samples, [&](std::span<const Tensor> in, int64_t, int64_t) -> Result<void> {
      if (idx >= in.size()) return make_error(where + ": the calibration source has no input " + std::to_string(idx));
      return acc.add(in[idx]);
    }));
    return acc.result();
  }
  ir::Graph probe = g;
  KILN_TRY(ir::topo_sort(probe));
  probe.outputs = {x};
  ir::remove_dead_nodes(probe);
  // A graph mid-rewrite (the quantize pass) has appended nodes with no types yet.
  if (auto r = ir::infer_graph(probe); !r.ok())
    return make_error(where + ": cannot run the graph up to the layer input: " + r.error().message);
  runtime::SessionOptions so;
  so.lower_qdq = false;  // a QDQ graph runs as written: the activations the layer will see
  auto session = runtime::Session::create(std::move(probe), so);
  if (!session.ok()) return make_error(where + ": cannot run the graph up to the layer input: " + session.error().message);
  KILN_TRY(src.for_each_batch(samples, [&](std::span<const Tensor> in, int64_t first, int64_t cnt) -> Result<void> {
    auto out = session->run(in);
    if (!out.ok())
      return make_error(where + ": calibration batch [" + std::to_string(first) + ", " + std::to_string(first + cnt) +
                        "): " + out.error().message);
    return acc.add((*out)[0]);
  }));
  return acc.result();
}

}  // namespace kiln::quant
