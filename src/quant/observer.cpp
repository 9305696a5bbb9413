// Observer: exact min/max and a power-of-two-ranged histogram of x whose bins
// merge exactly when the range grows (see observer.h). The methods that turn
// it into (Delta, z) live in observer_methods.cpp.
#include "quant/observer.h"

#include <cmath>
#include <vector>

#include "core/half.h"

namespace kiln::quant {

Observer::Observer(int bins) : bins_(bins < 16 ? 16 : (bins + 3) / 4 * 4) {}

void Observer::set_range(double m) {
  if (!(m > 0)) return;
  if (r_ == 0) {
    // Smallest power of two strictly above m: m = f * 2^e with f in [0.5, 1).
    int e;
    std::frexp(m, &e);
    r_ = std::ldexp(1.0, e);
    hist_.assign(size_t(bins_), 0);
    hist_[size_t(bins_ / 2)] = zeros_;  // every value seen so far was 0
    return;
  }
  while (m >= r_) {
    // New bin j covers old bins 2(j - bins/4) and 2(j - bins/4) + 1: with the
    // zero edge at bins/2 in both, old bin i lands in i/2 + bins/4.
    std::vector<int64_t> merged(size_t(bins_), 0);
    for (int i = 0; i < bins_; ++i) merged[size_t(i / 2 + bins_ / 4)] += hist_[size_t(i)];
    hist_ = std::move(merged);
    r_ *= 2;
  }
}

void Observer::bin_values(std::span<const float> v) {
  // w is a power of two, so x * (1 / w) is exact and the bin of x does not
  // depend on rounding.
  const double inv_w = double(bins_) / (2 * r_);
  const int64_t half = bins_ / 2;
  for (float x : v) {
    if (!std::isfinite(x)) continue;
    int64_t i = int64_t(std::floor(double(x) * inv_w)) + half;
    i = i < 0 ? 0 : (i >= bins_ ? bins_ - 1 : i);  // cannot happen (|x| < R); kept as a guard
    ++hist_[size_t(i)];
  }
}

void Observer::observe(std::span<const float> v) {
  double lo = 0, hi = 0;
  int64_t finite = 0, zeros = 0;
  for (float x : v) {
    if (!std::isfinite(x)) {
      ++nonfinite_;
      continue;
    }
    if (finite == 0) lo = hi = x;
    lo = std::min(lo, double(x));
    hi = std::max(hi, double(x));
    ++finite;
    zeros += x == 0;
  }
  if (finite == 0) return;
  min_ = count_ ? std::min(min_, lo) : lo;
  max_ = count_ ? std::max(max_, hi) : hi;
  count_ += finite;
  if (r_ == 0 && zeros == finite) {  // still all zeros: they wait for a range
    zeros_ += zeros;
    return;
  }
  set_range(std::max(-lo, hi));
  zeros_ += zeros;
  bin_values(v);
}

Result<void> Observer::observe(const Tensor& t) {
  if (t.dtype() == DType::kF32) {
    observe(std::span<const float>(t.data<float>(), size_t(t.numel())));
    return {};
  }
  if (!t.defined() || !is_float(t.dtype()))
    return make_error("cannot observe a tensor of dtype " + std::string(dtype_name(t.dtype())) +
                      " (only float tensors are calibrated)");
  // Converted in chunks to bound the scratch memory.
  std::vector<float> buf;
  const int64_t chunk = 1 << 16;
  for (int64_t start = 0; start < t.numel(); start += chunk) {
    int64_t n = std::min(chunk, t.numel() - start);
    buf.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      switch (t.dtype()) {
        case DType::kF16: buf[size_t(i)] = to_float(t.data<f16_t>()[start + i]); break;
        case DType::kBF16: buf[size_t(i)] = to_float(t.data<bf16_t>()[start + i]); break;
        default: buf[size_t(i)] = float(t.data<double>()[start + i]); break;
      }
    }
    observe(std::span<const float>(buf));
  }
  return {};
}

Result<void> Observer::merge(const Observer& o) {
  if (o.bins_ != bins_)
    return make_error("cannot merge observers with " + std::to_string(bins_) + " and " + std::to_string(o.bins_) + " bins");
  nonfinite_ += o.nonfinite_;
  if (o.count_ == 0) return {};
  min_ = count_ ? std::min(min_, o.min_) : o.min_;
  max_ = count_ ? std::max(max_, o.max_) : o.max_;
  count_ += o.count_;
  if (o.r_ == 0) {  // the other saw only zeros
    if (r_ > 0) hist_[size_t(bins_ / 2)] += o.zeros_;
    zeros_ += o.zeros_;
    return {};
  }
  set_range(o.r_ / 2);  // R grows to at least o's R (o.R / 2 <= its max |x| < o.R)
  zeros_ += o.zeros_;   // already inside o's histogram
  // Bring o's bins to our (possibly larger) range: each doubling maps i to i/2 + bins/4.
  std::vector<int64_t> theirs = o.hist_;
  for (double r = o.r_; r < r_; r *= 2) {
    std::vector<int64_t> merged(size_t(bins_), 0);
    for (int i = 0; i < bins_; ++i) merged[size_t(i / 2 + bins_ / 4)] += theirs[size_t(i)];
    theirs = std::move(merged);
  }
  for (int i = 0; i < bins_; ++i) hist_[size_t(i)] += theirs[size_t(i)];
  return {};
}

}  // namespace kiln::quant
