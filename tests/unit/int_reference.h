// Straightforward integer reference loops for the tests of kiln's QConv/QGemm
// (test_ref_quant_kiln.cpp) and of passes/lower_qdq (test_lower_qdq.cpp):
// written independently of the kernels, sharing only quant/quant_params.h, the
// definition they must match bit for bit.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "quant/quant_params.h"

namespace kiln::testing {

// 2-D convolution geometry, NCHW input, [M, C/group, KH, KW] weights.
struct Conv2d {
  int64_t n = 1, c = 1, h = 1, w = 1, m = 1, kh = 1, kw = 1, group = 1;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t oh() const { return (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1; }
  int64_t ow() const { return (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1; }
};

// What requantizing needs, as the spec of QConv/QGemm defines it.
struct RequantSpec {
  float x_scale = 1, y_scale = 1;
  std::vector<float> w_scale;  // one per output channel
  int32_t x_zp = 0, y_zp = 0;
  int64_t qmin = -128, qmax = 127;
  bool relu = false;
};

inline int32_t requant_one(int64_t acc, int64_t channel, const RequantSpec& r) {
  auto rq = quant::make_requant(double(r.x_scale) * double(r.w_scale[size_t(channel)]) / double(r.y_scale)).value();
  int32_t wrapped = int32_t(uint32_t(uint64_t(acc)));
  int64_t lo = r.relu ? std::max<int64_t>(r.qmin, r.y_zp) : r.qmin;
  return quant::requantize(wrapped, rq, r.y_zp, lo, r.qmax);
}

// Quantized QConv output [N, M, OH, OW] from quantized x and w.
inline std::vector<int32_t> ref_qconv(const Conv2d& s, const std::vector<int32_t>& x, const std::vector<int32_t>& w,
                                      const std::vector<int32_t>* bias, const RequantSpec& r) {
  int64_t oh = s.oh(), ow = s.ow(), cg = s.c / s.group, mg = s.m / s.group;
  std::vector<int32_t> y;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t m = 0; m < s.m; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          int64_t acc = bias ? (*bias)[size_t(m)] : 0;
          int64_t g = m / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t a = 0; a < s.kh; ++a)
              for (int64_t b = 0; b < s.kw; ++b) {
                int64_t ih = i * s.sh - s.pt + a * s.dh, iw = j * s.sw - s.pl + b * s.dw;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // padding is the real 0
                int64_t xv = x[size_t(((n * s.c + g * cg + ci) * s.h + ih) * s.w + iw)] - r.x_zp;
                int64_t wv = w[size_t(((m * cg + ci) * s.kh + a) * s.kw + b)];
                acc += xv * wv;
              }
          y.push_back(requant_one(acc, m, r));
        }
  return y;
}

// Quantized QGemm output [rows, n]: a [rows, k], b [k, n] (already transposed).
inline std::vector<int32_t> ref_qgemm(int64_t rows, int64_t k, int64_t n, const std::vector<int32_t>& a,
                                      const std::vector<int32_t>& b, const std::vector<int32_t>* bias,
                                      const RequantSpec& r) {
  std::vector<int32_t> y;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t acc = bias ? (*bias)[size_t(j)] : 0;
      for (int64_t t = 0; t < k; ++t) acc += int64_t(a[size_t(i * k + t)] - r.x_zp) * b[size_t(t * n + j)];
      y.push_back(requant_one(acc, j, r));
    }
  return y;
}

}  // namespace kiln::testing
