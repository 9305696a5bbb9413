#include "report/accuracy.h"

namespace kiln::report {

Result<void> check_image_classifier(const ir::Graph& g) {
  if (g.inputs.size() != 1)
    return make_error("expected a model with one input, this one has " + std::to_string(g.inputs.size()));
  const ir::ValueType& in = g.value(g.inputs[0]).type;
  bool nchw = in.rank_known && in.shape.size() == 4, flat = in.rank_known && in.shape.size() == 2;
  if (in.dtype != DType::kF32 || !(nchw || flat))
    return make_error("expected a float32 image input [N,1,28,28] or [N,784]; the model's input is " +
                      std::string(dtype_name(in.dtype)) + shape_str(in.shape, &g.symbols));
  return {};
}

Result<Tensor> image_batch(const io::LabeledImages& data, int64_t start, int64_t b, bool nchw) {
  KILN_ASSIGN(Tensor x, Tensor::create(DType::kF32, nchw ? Shape{b, 1, 28, 28} : Shape{b, 784}));
  const uint8_t* px = data.images.data<uint8_t>() + start * 784;
  float* xd = x.data<float>();
  for (int64_t i = 0; i < b * 784; ++i) xd[i] = float(px[i]) / 255.0f;
  return x;
}

Result<Accuracy> evaluate(runtime::Session& s, const io::LabeledImages& data, int64_t first, int64_t count,
                          int64_t batch, const ProgressFn& progress) {
  KILN_TRY(check_image_classifier(s.graph()));
  const ir::ValueType& in = s.graph().value(s.graph().inputs[0]).type;
  bool nchw = in.shape.size() == 4;
  int64_t n = data.images.dim(0) - first;
  if (count > 0) n = std::min(n, count);
  if (in.shape[0] >= 0) batch = in.shape[0];  // static batch dim
  Accuracy acc;
  const uint8_t* labels = data.labels.data<uint8_t>();
  for (int64_t start = first; start < first + n; start += batch) {
    int64_t b = std::min(batch, first + n - start);
    if (in.shape[0] >= 0 && b != batch) break;
    KILN_ASSIGN(Tensor x, image_batch(data, start, b, nchw));
    KILN_ASSIGN(auto out, s.run(std::vector<Tensor>{x}));
    const Tensor& logits = out[0];
    if (logits.rank() != 2 || logits.dim(0) != b)
      return make_error("expected the first output to be [N, classes], got " + shape_str(logits.shape()));
    int64_t classes = logits.dim(1);
    for (int64_t i = 0; i < b; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < classes; ++k)
        if (logits.as_double(i * classes + k) > logits.as_double(i * classes + best)) best = k;
      acc.correct += best == labels[start + i];
    }
    acc.total += b;
    if (progress) progress(acc.total, n);
  }
  return acc;
}

}  // namespace kiln::report
