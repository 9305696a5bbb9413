// Reference kernels for Gemm, MatMul (numpy semantics, batched) and Einsum.
// Float products are summed in double and rounded once on store, so the
// result is the correctly rounded value of the exact sum to within a few ulps
// of double: a stable oracle for any summation order a fast backend picks.
// Integer products wrap in the type's width, as numpy's do.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"
#include "ir/ops/einsum.h"

namespace kiln::ref {
namespace {

// Accumulator type: double for floats; for integers an unsigned type of at
// least 32 bits so that overflow wraps (defined) instead of being UB.
template <class T>
using acc_t = std::conditional_t<
    std::is_integral_v<T>,
    std::conditional_t<(sizeof(T) < 4), uint32_t, std::make_unsigned_t<std::conditional_t<std::is_integral_v<T>, T, int>>>,
    double>;

// acc[M,N] = A[M,K] * B[K,N]. A's element (i,k) is a[i*a_rs + k*a_cs]; B is
// row-major and contiguous, in compute precision. Loop order i-k-j keeps the
// innermost loop contiguous in B and acc (vectorizable); four rows share each
// B row while it is in cache.
template <class T, class B>
void matmul_acc(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const B* b, acc_t<T>* acc) {
  using Acc = acc_t<T>;
  std::fill(acc, acc + M * N, Acc(0));
  constexpr int64_t kRows = 4;
  for (int64_t i0 = 0; i0 < M; i0 += kRows) {
    int64_t rows = std::min(kRows, M - i0);
    for (int64_t k = 0; k < K; ++k) {
      const B* brow = b + k * N;
      for (int64_t r = 0; r < rows; ++r) {
        Acc av = Acc(load(a[(i0 + r) * a_rs + k * a_cs]));
        Acc* arow = acc + (i0 + r) * N;
        for (int64_t j = 0; j < N; ++j) arow[j] += av * Acc(brow[j]);
      }
    }
  }
}

// B as a contiguous row-major [K,N] array in compute precision: the tensor's
// own buffer when it already is one, else a converted (and/or transposed) copy.
template <class T>
struct BPanel {
  using C = compute_t<T>;
  std::vector<C> copy;
  const C* data = nullptr;
  // src holds `count` matrices [K,N] (or [N,K] if transposed) back to back.
  void build(const T* src, int64_t count, int64_t K, int64_t N, bool transposed) {
    if constexpr (std::is_same_v<C, T>) {
      if (!transposed) {
        data = src;
        return;
      }
    }
    copy.resize(size_t(count * K * N));
    for (int64_t m = 0; m < count; ++m) {
      const T* s = src + m * K * N;
      C* d = copy.data() + m * K * N;
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) d[k * N + n] = load(transposed ? s[n * K + k] : s[k * N + n]);
    }
    data = copy.data();
  }
};

bool is_matmul_dtype(DType t) {
  return is_float(t) || t == DType::kI32 || t == DType::kI64 || t == DType::kU32 || t == DType::kU64;
}

}  // namespace

Result<void> run_gemm(KernelCtx& c) {
  const auto& at = c.attr<ir::GemmAttrs>();
  const Tensor& A = c.input(0);
  const Tensor& Bt = c.input(1);
  Tensor& Y = c.out[0];
  if (!is_matmul_dtype(A.dtype())) return c.unsupported_dtype(A.dtype());
  const int64_t M = Y.dim(0), N = Y.dim(1);
  const int64_t K = at.transA ? A.dim(0) : A.dim(1);
  const bool has_c = c.has(2) && c.input(2).numel() > 0;
  return visit_numeric(A.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using Acc = acc_t<T>;
    if constexpr (std::is_integral_v<T>) {
      // Integer Gemm scales in the integer ring; a fractional alpha/beta has no such meaning.
      if (at.alpha != std::trunc(at.alpha) || at.beta != std::trunc(at.beta))
        return c.fail("integer Gemm needs integral alpha and beta, got alpha=" + std::to_string(at.alpha) +
                      ", beta=" + std::to_string(at.beta));
    }
    BPanel<T> b;
    b.build(Bt.data<T>(), 1, K, N, at.transB != 0);
    std::vector<Acc> acc(size_t(M * N));
    const int64_t a_rs = at.transA ? 1 : K, a_cs = at.transA ? M : 1;
    matmul_acc(M, N, K, A.data<T>(), a_rs, a_cs, b.data, acc.data());
    const T* cp = has_c ? c.input(2).data<T>() : nullptr;
    BroadcastIndex ci(has_c ? c.input(2).shape() : Shape{}, Y.shape());
    T* y = Y.data<T>();
    for (int64_t i = 0; i < M * N; ++i) {
      if constexpr (std::is_integral_v<T>) {
        Acc v = acc[size_t(i)] * Acc(int64_t(at.alpha));
        if (cp) v += Acc(cp[ci(i)]) * Acc(int64_t(at.beta));
        y[i] = T(v);
      } else {
        double v = double(at.alpha) * acc[size_t(i)];
        if (cp) v += double(at.beta) * double(load(cp[ci(i)]));
        y[i] = store<T>(v);
      }
    }
    return {};
  });
}

Result<void> run_matmul(KernelCtx& c) {
  const Tensor& A = c.input(0);
  const Tensor& B = c.input(1);
  Tensor& Y = c.out[0];
  if (!is_matmul_dtype(A.dtype())) return c.unsupported_dtype(A.dtype());
  // numpy: 1-D A is [1,K], 1-D B is [K,1]; the unit dims are absent from Y.
  Shape as = A.shape(), bs = B.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  KILN_ASSIGN(Shape batch, broadcast_shapes(a_batch, b_batch));
  const int64_t nbatch = numel(batch);
  if (Y.numel() != nbatch * M * N) return c.fail("output size does not match the inferred MatMul shape");
  BroadcastIndex ai(a_batch, batch), bi(b_batch, batch);
  return visit_numeric(A.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using Acc = acc_t<T>;
    BPanel<T> b;
    b.build(B.data<T>(), numel(b_batch), K, N, false);
    std::vector<Acc> acc(size_t(M * N));
    T* y = Y.data<T>();
    for (int64_t n = 0; n < nbatch; ++n) {
      const T* a = A.data<T>() + ai(n) * M * K;
      matmul_acc(M, N, K, a, K, 1, b.data + bi(n) * K * N, acc.data());
      T* yb = y + n * M * N;
      for (int64_t i = 0; i < M * N; ++i) yb[i] = store<T>(acc[size_t(i)]);
    }
    return {};
  });
}

Result<void> run_einsum(KernelCtx& c) {
  std::vector<int64_t> ranks;
  for (size_t t = 0; t < c.num_inputs(); ++t) ranks.push_back(c.input(t).rank());
  auto lr = ir::einsum_labels(c.attr<ir::EinsumAttrs>().equation, ranks);
  if (!lr.ok()) return c.fail(lr.error().message);
  const ir::EinsumLabels& L = *lr;
  // Size of each label: the largest over its uses (the others are equal or 1).
  std::vector<int64_t> size(size_t(L.num_labels), 1);
  std::vector<bool> used(size_t(L.num_labels), false);
  for (size_t t = 0; t < L.inputs.size(); ++t)
    for (size_t d = 0; d < L.inputs[t].size(); ++d) {
      int id = L.inputs[t][d];
      int64_t v = c.input(t).dim(int64_t(d));
      if (used[size_t(id)] && v != size[size_t(id)] && v != 1 && size[size_t(id)] != 1)
        return c.fail("einsum label sizes disagree");
      if (!used[size_t(id)] || size[size_t(id)] == 1) size[size_t(id)] = v;
      used[size_t(id)] = true;
    }
  // Loop dims: output labels first (outer), then the summed labels (inner).
  std::vector<int> loop = L.output;
  std::vector<bool> in_out(size_t(L.num_labels), false);
  for (int id : L.output) in_out[size_t(id)] = true;
  for (int id = 0; id < L.num_labels; ++id)
    if (used[size_t(id)] && !in_out[size_t(id)]) loop.push_back(id);
  const size_t n_out = L.output.size(), n_loop = loop.size();
  std::vector<int64_t> extent(n_loop);
  for (size_t d = 0; d < n_loop; ++d) extent[d] = size[size_t(loop[d])];
  // Element stride of every input along every loop dim: a label repeated in one
  // input adds its strides (walking the diagonal); a broadcast 1 contributes 0.
  const size_t n_in = c.num_inputs();
  std::vector<std::vector<int64_t>> stride(n_in, std::vector<int64_t>(n_loop, 0));
  for (size_t t = 0; t < n_in; ++t) {
    auto st = strides_of(c.input(t).shape());
    for (size_t d = 0; d < L.inputs[t].size(); ++d) {
      if (c.input(t).dim(int64_t(d)) == 1) continue;
      size_t pos = size_t(std::find(loop.begin(), loop.end(), L.inputs[t][d]) - loop.begin());
      stride[t][pos] += st[d];
    }
  }
  Tensor& Y = c.out[0];
  int64_t red = 1;
  for (size_t d = n_out; d < n_loop; ++d) red *= extent[d];
  return visit_numeric(c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using Acc = acc_t<T>;
    std::vector<const T*> base(n_in);
    for (size_t t = 0; t < n_in; ++t) base[t] = c.input(t).data<T>();
    std::vector<int64_t> idx(n_loop, 0), off(n_in, 0);
    T* y = Y.data<T>();
    // Advance the odometer over loop dims [lo, hi); returns false when it wraps.
    auto step = [&](size_t lo, size_t hi) {
      for (size_t d = hi; d-- > lo;) {
        ++idx[d];
        for (size_t t = 0; t < n_in; ++t) off[t] += stride[t][d];
        if (idx[d] < extent[d]) return true;
        for (size_t t = 0; t < n_in; ++t) off[t] -= stride[t][d] * extent[d];
        idx[d] = 0;
      }
      return false;
    };
    for (int64_t o = 0; o < Y.numel(); ++o) {
      Acc acc = Acc(0);
      for (int64_t r = 0; r < red; ++r) {
        Acc p = Acc(1);
        for (size_t t = 0; t < n_in; ++t) p *= Acc(load(base[t][off[t]]));
        acc += p;
        step(n_out, n_loop);
      }
      y[o] = store<T>(acc);
      step(0, n_out);
    }
    return {};
  });
}

}  // namespace kiln::ref
