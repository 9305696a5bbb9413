// From an Observer's histogram to a clipping threshold T: minmax, percentile,
// entropy (KL divergence, after the idea in NVIDIA's "8-bit Inference with
// TensorRT", 2017) and MSE (expected squared error under the histogram).
#include <cmath>
#include <limits>

#include "quant/observer.h"
#include "quant/range.h"

namespace kiln::quant {

namespace {

ScaleZero grid_for_threshold(const Observer& obs, double t, int bits, bool is_signed, bool symmetric) {
  return scale_zero_from_range(std::max(obs.min(), -t), std::min(obs.max(), t), bits, is_signed, symmetric);
}

// Number of quantization steps on [0, T] once T becomes a grid: the KL method
// groups histogram bins by the step they round to.
int64_t positive_levels(const ActQuantOptions& o, bool nonneg) {
  QuantParams g;
  g.bits = o.bits;
  g.is_signed = o.is_signed;
  if (nonneg && (!o.is_signed || !o.symmetric)) return g.qmax() - g.qmin();  // z at qmin: all levels on [0, T]
  if (o.symmetric) return o.is_signed ? g.qmax() : (int64_t(1) << (o.bits - 1)) - 1;
  return (g.qmax() - g.qmin()) / 2;  // asymmetric over a signed range: about half each side
}

// Bins per side needed to hold every value: [-K w, K w) contains [min, max].
int64_t covering_bins(const Observer& obs) {
  int64_t half = obs.bins() / 2;
  return std::min<int64_t>(half, int64_t(std::floor(obs.max_abs() / obs.bin_width())) + 1);
}

double percentile_threshold(const Observer& obs, double pct) {
  const auto& h = obs.histogram();
  const int64_t half = obs.bins() / 2;
  const double w = obs.bin_width(), target = pct / 100.0 * double(obs.count());
  double cum = 0;
  // Folded bin k holds |x| in [k w, (k + 1) w] (positive bin half+k, negative bin half-1-k).
  for (int64_t k = 0; k < half; ++k) {
    double f = double(h[size_t(half + k)] + h[size_t(half - 1 - k)]);
    if (f > 0 && cum + f >= target) {
      double t = (double(k) + (target - cum) / f) * w;
      t = std::min(t, obs.max_abs());
      return t > 0 ? t : obs.max_abs();  // a percentile of 0 would zero the tensor
    }
    cum += f;
  }
  return obs.max_abs();
}

// KL(P || Q) for each candidate T = k w, k from K (no clipping) down to the
// number of levels; the smallest divergence wins, ties to the larger T.
// P: the histogram over [-T, T) (or [0, T) for non-negative data) with the
// clipped mass added to the edge bins. Q: the unclipped slice quantized (bins
// grouped by the grid step their centre rounds to) and expanded back, each
// group's mass spread evenly over its bins where P is non-zero. A bin with
// P > 0 and Q = 0 makes the divergence infinite (the candidate is skipped).
// Exact zeros (half of a post-ReLU tensor) are an atom of their own in P and Q:
// every grid represents 0 exactly, and spreading that spike over the zero
// group's bins would otherwise dominate the divergence and favour whichever T
// gives the zero bin a group of its own.
double entropy_threshold(const Observer& obs, int64_t levels) {
  const auto& h = obs.histogram();
  const int64_t nb = obs.bins(), half = nb / 2;
  const bool nonneg = obs.min() >= 0;
  const int64_t K = covering_bins(obs);
  std::vector<int64_t> prefix(size_t(nb) + 1, 0);
  for (int64_t i = 0; i < nb; ++i) prefix[size_t(i) + 1] = prefix[size_t(i)] + h[size_t(i)];
  const double total = double(prefix[size_t(nb)]), zeros = double(obs.zeros());
  const int64_t k0 = std::min<int64_t>(K, std::max<int64_t>(levels, 1));
  const int64_t stride = std::max<int64_t>(1, (K - k0) / 1024);  // at most ~1024 candidates
  int64_t best_k = K;
  double best_kl = std::numeric_limits<double>::infinity();
  std::vector<double> p;
  for (int64_t k = K; k >= k0; k -= stride) {
    const int64_t base = nonneg ? half : half - k, n = nonneg ? k : 2 * k;
    const double slice = double(prefix[size_t(base + n)] - prefix[size_t(base)]);
    if (slice <= 0) continue;
    p.assign(h.begin() + base, h.begin() + base + n);
    p[size_t(half - base)] -= zeros;  // the atom at 0 is handled below
    p[0] += double(prefix[size_t(base)]);
    p[size_t(n - 1)] += total - double(prefix[size_t(base + n)]);
    auto level = [&](int64_t i) {  // grid step of bin i's centre, T / levels per step
      double c = (double(base + i - half) + 0.5) * double(levels) / double(k);
      return std::clamp<int64_t>(round_half_even(c), nonneg ? 0 : -levels, levels);
    };
    // The zero atom: p = zeros / total, q = zeros / slice.
    double kl = zeros > 0 ? zeros / total * std::log(slice / total) : 0.0;
    bool finite = true;
    for (int64_t i = 0; i < n && finite;) {
      int64_t j = level(i), e = i;
      double mass = 0;
      int64_t nonzero = 0;
      for (; e < n && level(e) == j; ++e) {
        mass += double(h[size_t(base + e)]) - (base + e == half ? zeros : 0.0);
        nonzero += p[size_t(e)] > 0;
      }
      for (int64_t b = i; b < e; ++b) {
        double pb = p[size_t(b)];
        if (pb <= 0) continue;
        if (mass <= 0) {
          finite = false;
          break;
        }
        double pn = pb / total, qn = mass / double(nonzero) / slice;
        kl += pn * std::log(pn / qn);
      }
      i = e;
    }
    if (finite && kl < best_kl) {
      best_kl = kl;
      best_k = k;
    }
  }
  return std::min(double(best_k) * obs.bin_width(), obs.max_abs());
}

// Observed mass as uniform slices [a, b) (exact zeros, which every grid
// represents exactly, left out; a single value as a = b).
struct Slice {
  double a, b, count;
};

std::vector<Slice> mass_slices(const Observer& obs) {
  std::vector<Slice> s;
  const auto& h = obs.histogram();
  const int64_t half = obs.bins() / 2;
  const double w = obs.bin_width();
  for (int64_t i = 0; i < int64_t(h.size()); ++i) {
    double c = double(h[size_t(i)]) - (i == half ? double(obs.zeros()) : 0.0);
    if (c <= 0) continue;
    double a = std::max(double(i - half) * w, obs.min()), b = std::min(double(i - half + 1) * w, obs.max());
    s.push_back({a, std::max(a, b), c});
  }
  return s;
}

double slices_error(const std::vector<Slice>& slices, double count, ScaleZero sz, int64_t qmin, int64_t qmax) {
  if (count <= 0) return 0;
  double e = 0;
  for (const auto& s : slices) {
    if (s.b > s.a) {
      e += s.count / (s.b - s.a) * sq_error_integral(s.a, s.b, sz.scale, sz.zero_point, qmin, qmax);
    } else {
      double r = dequantize_value(quantize_value(float(s.a), sz.scale, sz.zero_point, qmin, qmax), sz.scale, sz.zero_point);
      e += s.count * (s.a - r) * (s.a - r);
    }
  }
  return e / count;
}

// Coarse-to-fine search over T = k w (k = K ... 1, ~256 steps, then every bin
// around the best), starting from T = max |x| so the result is never worse
// than minmax; only a strictly smaller error replaces the current best.
double mse_threshold(const Observer& obs, const ActQuantOptions& o) {
  QuantParams g;
  g.bits = o.bits;
  g.is_signed = o.is_signed;
  const int64_t qmin = g.qmin(), qmax = g.qmax();
  const auto slices = mass_slices(obs);
  const double w = obs.bin_width(), count = double(obs.count());
  auto err = [&](double t) {
    return slices_error(slices, count, grid_for_threshold(obs, t, o.bits, o.is_signed, o.symmetric), qmin, qmax);
  };
  double best_t = obs.max_abs(), best_e = err(best_t);
  const int64_t K = covering_bins(obs), stride = std::max<int64_t>(1, K / 256);
  int64_t best_k = K;
  for (int64_t k = K; k >= 1; k -= stride) {
    double e = err(double(k) * w);
    if (e < best_e) {
      best_e = e;
      best_t = double(k) * w;
      best_k = k;
    }
  }
  for (int64_t k = std::min(K, best_k + stride - 1); k > std::max<int64_t>(0, best_k - stride); --k) {
    double e = err(double(k) * w);
    if (e < best_e) {
      best_e = e;
      best_t = double(k) * w;
    }
  }
  return std::min(best_t, obs.max_abs());
}

}  // namespace

Result<ActMethod> parse_act_method(const std::string& s) {
  if (s == "minmax") return ActMethod::kMinMax;
  if (s == "percentile") return ActMethod::kPercentile;
  if (s == "entropy") return ActMethod::kEntropy;
  if (s == "mse") return ActMethod::kMse;
  return make_error("unknown activation calibration method '" + s + "' (expected minmax, percentile, entropy or mse)");
}

Result<double> choose_threshold(const Observer& obs, const ActQuantOptions& o, const std::string& name) {
  KILN_TRY(check_bits(o.bits));
  if (o.method == ActMethod::kPercentile && !(o.percentile > 0 && o.percentile <= 100))
    return make_error("'" + name + "': percentile " + std::to_string(o.percentile) + " is outside (0, 100]");
  if (obs.count() == 0)
    return make_error("'" + name + "': no finite values were observed during calibration" +
                      (obs.nonfinite() ? " (" + std::to_string(obs.nonfinite()) + " NaN/inf)" : std::string()));
  if (obs.max_abs() == 0) return 0.0;
  switch (o.method) {
    case ActMethod::kMinMax: return obs.max_abs();
    case ActMethod::kPercentile: return percentile_threshold(obs, o.percentile);
    case ActMethod::kEntropy: return entropy_threshold(obs, positive_levels(o, obs.min() >= 0));
    case ActMethod::kMse: return mse_threshold(obs, o);
  }
  return obs.max_abs();
}

Result<QuantParams> choose_activation_params(const Observer& obs, const ActQuantOptions& o, const std::string& name) {
  KILN_ASSIGN(double t, choose_threshold(obs, o, name));
  ScaleZero sz = grid_for_threshold(obs, t, o.bits, o.is_signed, o.symmetric);
  QuantParams p;
  p.bits = o.bits;
  p.is_signed = o.is_signed;
  p.scale = {sz.scale};
  p.zero_point = {sz.zero_point};
  return p;
}

double expected_sq_error(const Observer& obs, float scale, int32_t zero_point, int bits, bool is_signed) {
  QuantParams g;
  g.bits = bits;
  g.is_signed = is_signed;
  return slices_error(mass_slices(obs), double(obs.count()), ScaleZero{scale, zero_point}, g.qmin(), g.qmax());
}

double expected_sq_error(const Observer& obs, const QuantParams& p) {
  if (p.scale.empty() || p.zero_point.empty()) return 0;
  return expected_sq_error(obs, p.scale[0], p.zero_point[0], p.bits, p.is_signed);
}

}  // namespace kiln::quant
