// Calibration sources: Fashion-MNIST, tensor files/folders and IDX files,
// checked against the model inputs at open time, batched on demand.
#include "quant/calib_data.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "io/npy.h"
#include "ir/print.h"
#include "onnx/tensor_proto.h"

namespace kiln::quant {

namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool is_tensor_file(const std::string& p) { return ends_with(p, ".npy") || ends_with(p, ".pb"); }
bool is_idx_file(const std::string& p) {
  std::string f = fs::path(p).filename().string();
  return f.find("idx") != std::string::npos || f.find("ubyte") != std::string::npos;
}

std::string describe_input(const ir::Graph& g, const ir::Value& v) {
  return "input '" + v.name + "' (" + ir::type_str(g, v.type) + ")";
}

// The input's shape without its first (batch) dim.
Shape model_sample(const ir::ValueType& t) { return Shape(t.shape.begin() + 1, t.shape.end()); }

bool sample_fits(const Shape& model, const Shape& s) {
  if (model.size() != s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (model[i] >= 0 && model[i] != s[i]) return false;
  return true;
}

// Image rows [N, r, c] (or any [N, ...]) as samples of the model input:
// reshaped when the input's sample dims are static with the same element count.
Result<Shape> fit_image_sample(const ir::Graph& g, const ir::Value& v, const Shape& image, const std::string& what) {
  Shape ms = model_sample(v.type);
  int64_t n = numel(image);
  if (is_static(ms) && numel(ms) == n) return ms;
  if (sample_fits(ms, image)) return image;
  // Symbolic image dims: [N, 1, r, c] or [N, r*c].
  Shape guess;
  if (ms.size() == 3 && image.size() == 2) guess = {1, image[0], image[1]};
  if (ms.size() == 1) guess = {n};
  if (!guess.empty() && sample_fits(ms, guess)) return guess;
  return make_error(what + ": images of shape " + shape_str(image) + " do not fit " + describe_input(g, v));
}

// Checks one loaded file against the input; returns its samples as [n, sample...].
Result<Tensor> as_samples(const ir::Graph& g, const ir::Value& v, const Tensor& t, const std::string& file) {
  const ir::ValueType& in = v.type;
  if (t.dtype() != in.dtype)
    return make_error(file + ": dtype " + std::string(dtype_name(t.dtype())) + " does not match " + describe_input(g, v));
  Shape ms = model_sample(in);
  std::string want = ir::type_str(g, in);
  if (t.rank() == int64_t(in.shape.size())) {
    Shape s(t.shape().begin() + 1, t.shape().end());
    if (!sample_fits(ms, s))
      return make_error(file + ": shape " + shape_str(t.shape()) + " does not match " + describe_input(g, v));
    return t;
  }
  if (t.rank() + 1 == int64_t(in.shape.size())) {
    if (!sample_fits(ms, t.shape()))
      return make_error(file + ": shape " + shape_str(t.shape()) + " does not match one sample of " + describe_input(g, v));
    Shape s = t.shape();
    s.insert(s.begin(), 1);
    return t.reshaped(s);
  }
  return make_error(file + ": shape " + shape_str(t.shape()) + " has rank " + std::to_string(t.rank()) + "; " +
                    describe_input(g, v) + " takes rank " + std::to_string(in.shape.size()) +
                    " batches or rank " + std::to_string(in.shape.size() - 1) + " samples");
}

Result<std::vector<std::string>> expand_path(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return make_error(path + ": calibration file or folder not found");
  if (!fs::is_directory(path, ec)) return std::vector<std::string>{path};
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    std::string p = e.path().string();
    if (e.is_regular_file() && is_tensor_file(p)) files.push_back(p);
  }
  if (ec) return make_error(path + ": cannot list folder (" + ec.message() + ")");
  if (files.empty()) return make_error(path + ": folder has no .npy or .pb files (empty calibration set)");
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Result<CalibSource> open_calib_source(const ir::Graph& g, const CalibSpec& spec) {
  if (spec.count < 0) return make_error("calibration sample count " + std::to_string(spec.count) + " is negative");
  if (spec.batch <= 0) return make_error("calibration batch size " + std::to_string(spec.batch) + " must be positive");
  if (spec.items.empty()) return make_error("empty calibration set: no dataset, file or folder given");
  if (g.inputs.empty()) return make_error("the model has no inputs to calibrate");
  CalibSource src;
  for (auto id : g.inputs) {
    const ir::Value& v = g.value(id);
    if (!v.type.rank_known || v.type.shape.empty())
      return make_error(describe_input(g, v) + ": calibration needs a known input rank with a batch (first) dim");
    if (dtype_info(v.type.dtype).bits < 8)
      return make_error(describe_input(g, v) + ": calibration data of sub-byte dtypes is not supported");
    src.inputs_.push_back({v.name, v.type.dtype, {}, {}});
  }
  std::vector<int64_t> have(g.inputs.size(), 0);

  if (spec.items.size() == 1 && spec.items[0] == "fashion-mnist") {
    if (g.inputs.size() != 1)
      return make_error("fashion-mnist calibration needs a model with one input, this one has " + std::to_string(g.inputs.size()));
    const ir::Value& v = g.value(g.inputs[0]);
    if (v.type.dtype != DType::kF32)
      return make_error("fashion-mnist calibration needs a float32 image input; the model has " + describe_input(g, v));
    KILN_ASSIGN(io::LabeledImages data, io::load_fashion_mnist(spec.data_dir, "train"));
    int64_t n = data.images.dim(0);
    if (spec.count > n)
      return make_error("asked for " + std::to_string(spec.count) + " calibration samples; fashion-mnist train has " +
                        std::to_string(n));
    Shape image(data.images.shape().begin() + 1, data.images.shape().end());
    KILN_ASSIGN(Shape sample, fit_image_sample(g, v, image, "fashion-mnist"));
    src.size_ = spec.count ? spec.count : n;
    Shape rows = sample;
    rows.insert(rows.begin(), n);
    src.inputs_[0].sample = sample;
    src.inputs_[0].chunks.push_back({data.images.reshaped(rows), 0, true});
    KILN_ASSIGN(src.labels_, Tensor::create(DType::kU8, {src.size_}));
    std::memcpy(src.labels_.raw(), data.labels.raw(), size_t(src.size_));
    src.what_ = "fashion-mnist train: " + std::to_string(src.size_) + " images";
    have[0] = src.size_;
  } else {
    // Items -> (input index, path).
    std::vector<std::vector<std::string>> paths(g.inputs.size());
    for (const auto& item : spec.items) {
      size_t idx = g.inputs.size();
      std::string path = item;
      auto eq = item.find('=');
      if (eq != std::string::npos && eq > 0) {
        std::string name = item.substr(0, eq);
        for (size_t i = 0; i < g.inputs.size(); ++i)
          if (g.value(g.inputs[i]).name == name) idx = i;
        std::error_code ec;
        if (idx < g.inputs.size())
          path = item.substr(eq + 1);
        else if (!fs::exists(item, ec))
          return make_error("calibration data '" + item + "': the model has no input named '" + name + "'");
      }
      if (idx == g.inputs.size()) {
        if (g.inputs.size() > 1)
          return make_error("calibration data '" + item + "': the model has " + std::to_string(g.inputs.size()) +
                            " inputs; give each file or folder as NAME=PATH");
        idx = 0;
      }
      KILN_ASSIGN(auto files, expand_path(path));
      for (auto& f : files) paths[idx].push_back(std::move(f));
    }
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const ir::Value& v = g.value(g.inputs[i]);
      auto& in = src.inputs_[i];
      std::string first_file;
      for (const auto& file : paths[i]) {
        if (spec.count > 0 && have[i] >= spec.count) break;  // enough samples: later files are not read
        Tensor samples;
        bool unit = false;
        if (is_tensor_file(file)) {
          Result<Tensor> t = ends_with(file, ".npy") ? io::load_npy(file) : onnx_io::load_tensor_pb(file);
          if (!t.ok()) return t.error();
          KILN_ASSIGN(samples, as_samples(g, v, *t, file));
        } else if (is_idx_file(file)) {
          KILN_ASSIGN(Tensor t, io::load_idx(file));
          if (v.type.dtype != DType::kF32 && v.type.dtype != DType::kU8)
            return make_error(file + ": IDX data is uint8 pixels; " + describe_input(g, v) + " takes neither float32 nor uint8");
          Shape image(t.shape().begin() + 1, t.shape().end());
          KILN_ASSIGN(Shape sample, fit_image_sample(g, v, image, file));
          sample.insert(sample.begin(), t.dim(0));
          samples = t.reshaped(sample);
          unit = v.type.dtype == DType::kF32;
        } else {
          return make_error(file + ": unknown calibration file type (expected .npy, .pb, a folder of them, or an IDX file)");
        }
        Shape s(samples.shape().begin() + 1, samples.shape().end());
        if (in.chunks.empty()) {
          in.sample = s;
          first_file = file;
        } else if (s != in.sample) {
          return make_error(file + ": sample shape " + shape_str(s) + " differs from " + shape_str(in.sample) + " in " +
                            first_file + " (all samples of input '" + v.name + "' must have one shape)");
        }
        if (samples.dim(0) == 0) continue;
        in.chunks.push_back({samples, have[i], unit});
        have[i] += samples.dim(0);
      }
      if (have[i] == 0) return make_error("empty calibration set: no samples for input '" + v.name + "'");
      if (spec.count > have[i])
        return make_error("asked for " + std::to_string(spec.count) + " calibration samples; only " +
                          std::to_string(have[i]) + " available for input '" + v.name + "'");
    }
    int64_t n = spec.count ? spec.count : have[0];
    for (size_t i = 1; i < have.size(); ++i)
      if (!spec.count && have[i] != have[0])
        return make_error("input '" + src.inputs_[i].name + "' has " + std::to_string(have[i]) +
                          " calibration samples but input '" + src.inputs_[0].name + "' has " + std::to_string(have[0]));
    src.size_ = n;
    src.what_ = std::to_string(n) + " samples from " + std::to_string(spec.items.size()) + " item(s)";
  }

  // A static batch dim fixes the batch; every batch must be full.
  int64_t fixed = -1;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    int64_t d = g.value(g.inputs[i]).type.shape[0];
    if (d < 0) continue;
    if (fixed >= 0 && d != fixed)
      return make_error("model inputs have different fixed batch sizes (" + std::to_string(fixed) + " and " +
                        std::to_string(d) + ")");
    fixed = d;
  }
  if (fixed == 0) return make_error("the model input has a fixed batch of 0");
  if (fixed > 0 && src.size_ % fixed != 0)
    return make_error("the model takes fixed batches of " + std::to_string(fixed) + "; " + std::to_string(src.size_) +
                      " calibration samples is not a multiple (ask for " + std::to_string(src.size_ / fixed * fixed) +
                      " or " + std::to_string((src.size_ / fixed + 1) * fixed) + ")");
  src.batch_ = fixed > 0 ? fixed : std::min(spec.batch, src.size_);
  src.fixed_batch_ = fixed > 0;
  return src;
}

Result<std::vector<Tensor>> CalibSource::batch(int64_t first, int64_t n) const {
  if (first < 0 || n <= 0 || first + n > size_)
    return make_error("calibration batch [" + std::to_string(first) + ", " + std::to_string(first + n) +
                      ") is outside the " + std::to_string(size_) + " samples");
  std::vector<Tensor> out;
  for (const auto& in : inputs_) {
    Shape s = in.sample;
    s.insert(s.begin(), n);
    KILN_ASSIGN(Tensor t, Tensor::create(in.dtype, s));
    const int64_t per = numel(in.sample), row_bytes = dtype_bytes(in.dtype, per);
    // First chunk holding sample `first` (chunks are sorted by first sample).
    auto it = std::upper_bound(in.chunks.begin(), in.chunks.end(), first,
                               [](int64_t v, const Chunk& c) { return v < c.first; });
    size_t ci = size_t(it - in.chunks.begin()) - 1;
    for (int64_t done = 0; done < n; ++ci) {
      const Chunk& c = in.chunks[ci];
      int64_t from = first + done - c.first, rows = std::min(n - done, c.data.dim(0) - from);
      if (c.unit_scale) {
        const uint8_t* px = c.data.data<uint8_t>() + from * per;
        float* dst = t.data<float>() + done * per;
        for (int64_t k = 0; k < rows * per; ++k) dst[k] = float(px[k]) / 255.0f;
      } else {
        std::memcpy(static_cast<char*>(t.raw()) + done * row_bytes,
                    static_cast<const char*>(c.data.raw()) + from * row_bytes, size_t(rows * row_bytes));
      }
      done += rows;
    }
    out.push_back(std::move(t));
  }
  return out;
}

Result<void> CalibSource::for_each_batch(int64_t limit, const BatchFn& fn, const ProgressFn& progress) const {
  if (limit <= 0) limit = size_;
  if (limit > size_)
    return make_error("asked for " + std::to_string(limit) + " calibration samples; the source has " + std::to_string(size_));
  if (fixed_batch_ && limit % batch_ != 0)
    return make_error("the model takes fixed batches of " + std::to_string(batch_) + "; " + std::to_string(limit) +
                      " calibration samples is not a multiple");
  for (int64_t first = 0; first < limit; first += batch_) {
    int64_t n = std::min(batch_, limit - first);
    KILN_ASSIGN(auto inputs, batch(first, n));
    KILN_TRY(fn(inputs, first, n));
    if (progress) progress(first + n, limit);
  }
  return {};
}

}  // namespace kiln::quant
