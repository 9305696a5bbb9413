// Activation range estimation: an Observer accumulates one tensor's values over
// calibration batches (exact min/max plus a histogram of x), and
// choose_activation_params() turns it into per-tensor (Delta, zero point) by
// minmax, percentile, entropy (KL) or MSE. Tested in tests/unit/test_quant_calib.cpp.
//
// The histogram covers [-R, R) with R a power of two and bins of width 2R/bins
// (also a power of two). When a larger |x| arrives, R doubles and adjacent bin
// pairs merge exactly, so the final histogram is the one that binning all the
// data at the final R would give: results do not depend on batch order or
// batch split at all (counts are integers, R depends only on max |x|).
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "quant/quant_params.h"

namespace kiln::quant {

class Observer {
 public:
  static constexpr int kDefaultBins = 8192;
  // bins: a multiple of 4, at least 16 (data always fill at least a quarter:
  // max |x| >= R/2); the default gives >= 2048 bins over [0, max |x|].
  explicit Observer(int bins = kDefaultBins);

  // Float tensors only (f32, f16, bf16, f64). NaN/inf are not binned but counted
  // in nonfinite() so the caller can report them.
  Result<void> observe(const Tensor& t);
  void observe(std::span<const float> v);
  // Adds another observer's data (same bin count), as if observed here.
  Result<void> merge(const Observer& other);

  int64_t count() const { return count_; }  // finite values seen
  int64_t zeros() const { return zeros_; }  // of which exactly 0
  int64_t nonfinite() const { return nonfinite_; }
  double min() const { return count_ ? min_ : 0.0; }
  double max() const { return count_ ? max_ : 0.0; }
  double max_abs() const { return count_ ? std::max(-min_, max_) : 0.0; }
  int bins() const { return bins_; }
  // R; 0 while every value seen is 0 (then the histogram is empty).
  double half_range() const { return r_; }
  double bin_width() const { return r_ > 0 ? 2 * r_ / bins_ : 0.0; }
  // Bin i covers [(i - bins/2) * w, (i - bins/2 + 1) * w).
  const std::vector<int64_t>& histogram() const { return hist_; }

 private:
  void set_range(double max_abs);  // grow R (merging bins) until max_abs < R
  void bin_values(std::span<const float> v);

  int bins_;
  int64_t count_ = 0, zeros_ = 0, nonfinite_ = 0;
  double min_ = 0, max_ = 0, r_ = 0;
  std::vector<int64_t> hist_;
};

enum class ActMethod {
  kMinMax,      // T = max |x| (no clipping)
  kPercentile,  // T = the `percentile`-th percentile of |x| (interpolated in its bin)
  kEntropy,     // T minimizing KL(P || Q) between the clipped histogram and its quantized form
  kMse,         // T minimizing the expected squared quantization error under the histogram
};
Result<ActMethod> parse_act_method(const std::string& s);  // "minmax" | "percentile" | "entropy" | "mse"

struct ActQuantOptions {
  int bits = 8;           // 2..8 or 16
  bool is_signed = true;  // storage int vs uint
  bool symmetric = true;
  ActMethod method = ActMethod::kMinMax;
  double percentile = 99.99;  // for kPercentile, in (0, 100]
};

// The threshold T >= 0 the method picks; the range it implies is
// [max(min, -T), min(max, T)] (the same rule as for weights), which
// scale_zero_from_range() (range.h) turns into (Delta, z). Errors: no data
// observed, bad options. `name` is for messages.
Result<double> choose_threshold(const Observer& obs, const ActQuantOptions& o, const std::string& name);
// Per-tensor QuantParams (axis -1) from choose_threshold. A tensor that was
// always 0 gets Delta = kZeroRangeScale.
Result<QuantParams> choose_activation_params(const Observer& obs, const ActQuantOptions& o, const std::string& name);

// Mean over observed values of (x - deQ(Q(x)))^2 for a per-tensor grid, taking
// each bin's mass (other than exact zeros) as uniform over the bin clipped to
// [min, max]. 0 when nothing was observed.
double expected_sq_error(const Observer& obs, float scale, int32_t zero_point, int bits, bool is_signed);
double expected_sq_error(const Observer& obs, const QuantParams& p);

}  // namespace kiln::quant
