// GPTQ rounding with fixed QuantParams: factor the damped H once per group,
// then quantize the weight rows (a block of rows at a time, so each row of the
// factor is read once per block) column by column with the OBS error update.
#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "quant/weight_delta.h"

namespace kiln::quant {
namespace {

// The weight as a [rows, cols] matrix over its flat storage.
struct MatrixView {
  int64_t rows = 0, cols = 0, out_axis = 0;
  int64_t flat(int64_t r, int64_t c) const { return out_axis == 0 ? r * cols + c : c * rows + r; }
};

Result<MatrixView> matrix_view(const Tensor& w, int64_t out_axis, const std::string& name) {
  if (!w.defined() || !is_float(w.dtype()))
    return make_error("'" + name + "': GPTQ needs a float weight, got " +
                      std::string(w.defined() ? dtype_name(w.dtype()) : "no tensor"));
  MatrixView v;
  v.out_axis = out_axis;
  if (out_axis == 0) {
    if (w.rank() < 2 || w.dim(0) == 0)
      return make_error("'" + name + "': GPTQ needs a weight of rank >= 2 with output units on axis 0, got shape " +
                        shape_str(w.shape()));
    v.rows = w.dim(0);
    v.cols = w.numel() / v.rows;
  } else if (out_axis == 1) {
    if (w.rank() != 2)
      return make_error("'" + name + "': GPTQ with output units on axis 1 needs a 2-D weight, got shape " +
                        shape_str(w.shape()));
    v.rows = w.dim(1);
    v.cols = w.dim(0);
  } else {
    return make_error("'" + name + "': GPTQ output axis " + std::to_string(out_axis) + " is not 0 or 1");
  }
  return v;
}

Result<void> check_covariance(const InputCovariance& h, const MatrixView& v, const std::string& name) {
  if (h.groups < 1 || h.cols < 0 || int64_t(h.h.size()) != h.groups * h.cols * h.cols)
    return make_error("'" + name + "': malformed input covariance (" + std::to_string(h.groups) + " group(s) of " +
                      std::to_string(h.cols) + "x" + std::to_string(h.cols) + ", " + std::to_string(h.h.size()) +
                      " entries)");
  if (h.cols != v.cols || v.rows % h.groups != 0)
    return make_error("'" + name + "': the input covariance (" + std::to_string(h.groups) + " group(s) of " +
                      std::to_string(h.cols) + " inputs) does not fit a weight of " + std::to_string(v.rows) +
                      " output units x " + std::to_string(v.cols) + " inputs");
  for (size_t i = 0; i < h.h.size(); ++i)
    if (!std::isfinite(h.h[i]))
      return make_error("'" + name + "': the input covariance has a non-finite entry (" + std::to_string(i) +
                        "); the calibration activations overflowed or hold NaN");
  return {};
}

// In place: a (K x K, row-major, symmetric; only its upper triangle is read)
// becomes U, upper triangular, with U^T U = a^-1. That U is what the OBS update
// needs: row i of U, scaled by 1/U_ii, is the optimal correction of the columns
// after i when column i is fixed, given that columns < i are already fixed.
// How: factor a = R R^T with R upper triangular (Cholesky run from the last
// column backwards); then a^-1 = R^-T R^-1 = (R^-1)^T (R^-1), and R^-1 is upper
// triangular with a positive diagonal, so U = R^-1 (the factor is unique).
// Returns false when a is not positive definite.
bool inverse_upper_factor(std::vector<double>& a, int64_t k) {
  auto at = [&](int64_t i, int64_t j) -> double& { return a[size_t(i * k + j)]; };
  // R overwrites the upper triangle of a, column j from the right.
  for (int64_t j = k - 1; j >= 0; --j) {
    double s = at(j, j);
    for (int64_t t = j + 1; t < k; ++t) s -= at(j, t) * at(j, t);
    if (!(s > 0) || !std::isfinite(s)) return false;
    const double rjj = std::sqrt(s);
    at(j, j) = rjj;
    for (int64_t i = 0; i < j; ++i) {
      double v = at(i, j);
      for (int64_t t = j + 1; t < k; ++t) v -= at(i, t) * at(j, t);
      at(i, j) = v / rjj;
    }
  }
  // U = R^-1 row by row from the top (row i of U needs rows >= i of R only,
  // so it may replace row i of R): U R = I read along row i gives
  // U_ik = (delta_ik - sum_{t<k} U_it R_tk) / R_kk for k = i, i+1, ...
  std::vector<double> acc(static_cast<size_t>(k)), row(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    std::fill(acc.begin() + i, acc.end(), 0.0);
    for (int64_t c = i; c < k; ++c) {
      double u = ((c == i ? 1.0 : 0.0) - acc[size_t(c)]) / at(c, c);
      row[size_t(c)] = u;
      if (u != 0)
        for (int64_t t = c + 1; t < k; ++t) acc[size_t(t)] += u * at(c, t);
    }
    for (int64_t c = 0; c < k; ++c) at(i, c) = c < i ? 0.0 : row[size_t(c)];
  }
  return true;
}

}  // namespace

Result<Tensor> gptq_quantize(const Tensor& w, const QuantParams& p, const InputCovariance& h, const GptqOptions& o,
                             const std::string& name) {
  KILN_ASSIGN(MatrixView v, matrix_view(w, o.out_axis, name));
  KILN_TRY(check_covariance(h, v, name));
  if (!(o.damp >= 0) || !std::isfinite(o.damp))
    return make_error("'" + name + "': GPTQ damping " + std::to_string(o.damp) + " is not a finite number >= 0");
  KILN_ASSIGN(std::vector<int32_t> slots, param_slots(w.shape(), p, name));
  std::vector<double> wd(size_t(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) {
    wd[size_t(i)] = w.as_double(i);
    if (!std::isfinite(wd[size_t(i)]))
      return make_error("'" + name + "': element " + std::to_string(i) + " is not finite; cannot quantize it");
  }
  const int64_t k = v.cols, rows_per_group = v.rows / h.groups, qmin = p.qmin(), qmax = p.qmax();
  std::vector<int32_t> q(wd.size(), 0);

  for (int64_t gi = 0; gi < h.groups; ++gi) {
    const double* hg = h.group(gi);
    // Columns whose input never moved (H_ii = 0) carry no output error: they
    // are decoupled (identity rows of H) and sorted last.
    std::vector<double> diag(static_cast<size_t>(k));
    double live_sum = 0;
    int64_t live = 0;
    for (int64_t i = 0; i < k; ++i) {
      diag[size_t(i)] = hg[i * k + i];
      if (diag[size_t(i)] < 0)
        return make_error("'" + name + "': the input covariance has a negative diagonal entry (" +
                          std::to_string(diag[size_t(i)]) + " at input " + std::to_string(i) + ")");
      if (diag[size_t(i)] > 0) live_sum += diag[size_t(i)], ++live;
    }
    std::vector<int64_t> perm(static_cast<size_t>(k));
    std::iota(perm.begin(), perm.end(), 0);
    if (o.act_order)
      std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[size_t(a)] > diag[size_t(b)]; });
    else
      std::stable_partition(perm.begin(), perm.end(), [&](int64_t a) { return diag[size_t(a)] > 0; });

    // Damping: a fraction of the mean live diagonal, raised tenfold while the
    // factorization fails (H from few samples can be singular: K > vectors).
    const double base = live > 0 ? o.damp * live_sum / double(live) : 0.0;
    const double floor_damp = live > 0 ? 1e-10 * live_sum / double(live) : 0.0;
    std::vector<double> u;
    bool factored = false;
    for (int attempt = 0; attempt <= 6 && !factored; ++attempt) {
      const double lambda = std::max(base, floor_damp) * std::pow(10.0, attempt);
      u.assign(size_t(k * k), 0.0);
      for (int64_t a = 0; a < k; ++a) {
        const int64_t ia = perm[size_t(a)];
        if (diag[size_t(ia)] == 0) {
          u[size_t(a * k + a)] = 1.0;
          continue;
        }
        for (int64_t b = 0; b < k; ++b) {
          const int64_t ib = perm[size_t(b)];
          if (diag[size_t(ib)] != 0) u[size_t(a * k + b)] = hg[ia * k + ib];
        }
        u[size_t(a * k + a)] += lambda;
      }
      factored = inverse_upper_factor(u, k);
    }
    if (!factored)
      return make_error("'" + name + "': the input covariance of group " + std::to_string(gi) +
                        " is not positive definite even with 10^6 times the damping");

    // Rows in blocks: the work copy holds the not-yet-quantized (updated) weights.
    const int64_t block = 32;
    std::vector<double> work, err;
    for (int64_t r0 = gi * rows_per_group; r0 < (gi + 1) * rows_per_group; r0 += block) {
      const int64_t nb = std::min(block, (gi + 1) * rows_per_group - r0);
      work.assign(size_t(nb * k), 0.0);
      err.assign(size_t(nb), 0.0);
      for (int64_t r = 0; r < nb; ++r)
        for (int64_t a = 0; a < k; ++a) work[size_t(r * k + a)] = wd[size_t(v.flat(r0 + r, perm[size_t(a)]))];
      for (int64_t a = 0; a < k; ++a) {
        const double* urow = u.data() + a * k;
        for (int64_t r = 0; r < nb; ++r) {
          const int64_t f = v.flat(r0 + r, perm[size_t(a)]);
          const size_t s = size_t(slots[size_t(f)]);
          const double x = work[size_t(r * k + a)];
          const int32_t qi = quantize_value(float(x), p.scale[s], p.zero_point[s], qmin, qmax);
          q[size_t(f)] = qi;
          err[size_t(r)] = (x - double(dequantize_value(qi, p.scale[s], p.zero_point[s]))) / urow[a];
        }
        for (int64_t r = 0; r < nb; ++r) {
          const double e = err[size_t(r)];
          if (e == 0) continue;
          double* wrow = work.data() + r * k;
          for (int64_t b = a + 1; b < k; ++b) wrow[b] -= e * urow[b];
        }
      }
    }
  }
  return pack_quantized(q, w.shape(), p, o.pack_int4, name);
}

Result<double> layer_output_error(const Tensor& w, const Tensor& vt, const InputCovariance& h, int64_t out_axis,
                                  const std::string& name) {
  KILN_ASSIGN(MatrixView v, matrix_view(w, out_axis, name));
  KILN_TRY(check_covariance(h, v, name));
  if (!vt.defined() || !is_float(vt.dtype()) || vt.shape() != w.shape())
    return make_error("'" + name + "': the compared weight must be a float tensor of shape " + shape_str(w.shape()));
  const int64_t k = v.cols, rows_per_group = v.rows / h.groups;
  std::vector<double> d(static_cast<size_t>(k));
  double total = 0;
  for (int64_t r = 0; r < v.rows; ++r) {
    for (int64_t c = 0; c < k; ++c) d[size_t(c)] = w.as_double(v.flat(r, c)) - vt.as_double(v.flat(r, c));
    const double* hg = h.group(r / rows_per_group);
    for (int64_t i = 0; i < k; ++i) {
      if (d[size_t(i)] == 0) continue;
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += hg[i * k + j] * d[size_t(j)];
      total += d[size_t(i)] * s;
    }
  }
  return total;
}

}  // namespace kiln::quant
