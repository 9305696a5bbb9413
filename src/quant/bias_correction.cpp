#include "quant/bias_correction.h"

#include <cmath>

#include "ir/edit.h"
#include "ir/infer.h"
#include "runtime/session.h"

namespace kiln::quant {
namespace {

using ir::OpKind;

// Per-channel (axis 1 for Conv outputs [N,C,...], last axis for Gemm [N,C]) mean of y.
std::vector<double> channel_mean(const Tensor& y, bool conv) {
  int64_t c = conv ? y.dim(1) : y.dim(y.rank() - 1);
  int64_t inner = 1;
  if (conv)
    for (int64_t d = 2; d < y.rank(); ++d) inner *= y.dim(d);
  std::vector<double> sum(size_t(c), 0.0);
  const float* p = y.data<float>();
  int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) sum[size_t(conv ? (i / inner) % c : i % c)] += p[i];
  for (auto& s : sum) s /= double(n / c);
  return sum;
}

// Mean of `value` in graph g over calibration samples.
Result<std::vector<double>> mean_of(const ir::Graph& g, ir::ValueId value, bool conv, const CalibSource& calib,
                                    int64_t samples) {
  ir::Graph probe = g;
  probe.outputs = {value};
  runtime::SessionOptions so;
  so.lower_qdq = false;  // the float layer output must stay observable
  KILN_ASSIGN(auto s, runtime::Session::create(std::move(probe), so));
  std::vector<double> total;
  int64_t seen = 0;
  KILN_TRY(calib.for_each_batch(samples, [&](std::span<const Tensor> in, int64_t, int64_t n) -> Result<void> {
    KILN_ASSIGN(auto out, s.run(in));
    auto m = channel_mean(out[0], conv);
    if (total.empty()) total.assign(m.size(), 0.0);
    for (size_t i = 0; i < m.size(); ++i) total[i] += m[i] * double(n);
    seen += n;
    return {};
  }));
  for (auto& t : total) t /= double(std::max<int64_t>(seen, 1));
  return total;
}

}  // namespace

Result<int> correct_bias(ir::Graph& q, const ir::Graph& prepared, const CalibSource& calib, int64_t samples) {
  int corrected = 0;
  auto prod = q.producers();
  for (size_t i = 0; i < q.nodes.size(); ++i) {
    ir::Node& n = q.nodes[i];
    if (n.op != OpKind::kConv && n.op != OpKind::kGemm) continue;
    // Only layers whose weight became a DequantizeLinear (i.e. were quantized).
    int wp = prod[size_t(n.inputs[1])];
    if (wp < 0 || q.nodes[size_t(wp)].op != OpKind::kDequantizeLinear) continue;
    if (n.op == OpKind::kGemm && n.attr<ir::GemmAttrs>().beta != 1.0f) continue;
    ir::ValueId y = n.outputs[0];
    bool conv = n.op == OpKind::kConv;
    KILN_ASSIGN(auto ref, mean_of(prepared, y, conv, calib, samples));
    KILN_ASSIGN(auto got, mean_of(q, y, conv, calib, samples));
    size_t c = ref.size();
    ir::ValueId b = n.inputs.size() > 2 ? n.inputs[2] : ir::kNoValue;
    int bp = b == ir::kNoValue ? -1 : prod[size_t(b)];
    if (bp >= 0 && q.nodes[size_t(bp)].op == OpKind::kDequantizeLinear) {
      // int32 bias behind DQ: shift by round(delta / bias_scale).
      ir::Node& dq = q.nodes[size_t(bp)];
      Tensor bq = q.value(dq.inputs[0]).constant.clone();
      const Tensor& bs = q.value(dq.inputs[1]).constant;
      if (bq.dtype() != DType::kI32 || bq.numel() != int64_t(c)) continue;
      for (size_t k = 0; k < c; ++k) {
        double scale = bs.numel() == 1 ? bs.as_double(0) : bs.as_double(int64_t(k));
        bq.data<int32_t>()[k] += int32_t(std::nearbyint((ref[k] - got[k]) / scale));
      }
      dq.inputs[0] = q.add_constant(q.unique_name(q.value(dq.inputs[0]).name + "_corrected"), std::move(bq));
    } else if (b != ir::kNoValue && q.value(b).is_constant() && q.value(b).constant.numel() == int64_t(c)) {
      Tensor bf = q.value(b).constant.clone();
      for (size_t k = 0; k < c; ++k) bf.data<float>()[k] += float(ref[k] - got[k]);
      n.inputs[2] = q.add_constant(q.unique_name(q.value(b).name + "_corrected"), std::move(bf));
    } else if (b == ir::kNoValue) {
      std::vector<float> bf(c);
      for (size_t k = 0; k < c; ++k) bf[k] = float(ref[k] - got[k]);
      ir::ValueId nb = ir::add_tensor_f32(q, n.name + "_bias_correction", bf);
      q.nodes[i].inputs.resize(3, ir::kNoValue);
      q.nodes[i].inputs[2] = nb;
    } else {
      continue;
    }
    ++corrected;
  }
  KILN_TRY(ir::infer_graph(q));
  return corrected;
}

}  // namespace kiln::quant
