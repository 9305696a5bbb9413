// Helpers shared by the shape-family inference functions; see shape_infer_util.h.
#include "ir/ops/shape_infer_util.h"

namespace kiln::ir::shape_infer {

Result<void> require_int(const InferCtx& c, size_t i, const char* what) {
  DType t = c.in[i].dtype;
  if (!is_integer(t))
    return c.fail(std::string(what) + " (input " + std::to_string(i) + ") must be an integer tensor, got " +
                  std::string(dtype_name(t)));
  return {};
}

std::vector<int64_t> ints_of(const Tensor& t) {
  std::vector<int64_t> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.as_int(i);
  return v;
}

Result<std::optional<std::vector<int64_t>>> known_ints(const InferCtx& c, size_t i, const char* what) {
  const Tensor* t = c.value(i);
  if (!t) return std::optional<std::vector<int64_t>>{};
  if (t->rank() > 1)
    return c.fail(std::string(what) + " must be a 1-D tensor, got shape " + shape_str(t->shape()));
  return std::optional<std::vector<int64_t>>{ints_of(*t)};
}

int64_t static_len(const InferCtx& c, size_t i) {
  if (const Tensor* t = c.value(i)) return t->numel();
  const ValueType& v = c.in[i];
  if (!v.rank_known) return -1;
  if (v.shape.empty()) return 1;
  if (v.shape.size() == 1 && v.shape[0] >= 0) return v.shape[0];
  return -1;
}

bool is_empty_input(const InferCtx& c, size_t i) {
  if (!c.has(i)) return true;
  if (const Tensor* t = c.value(i)) return t->numel() == 0;
  const ValueType& v = c.in[i];
  if (!v.rank_known) return false;
  for (auto d : v.shape)
    if (d == 0) return true;
  return false;
}

bool is_nonempty_input(const InferCtx& c, size_t i) {
  if (!c.has(i)) return false;
  if (const Tensor* t = c.value(i)) return t->numel() > 0;
  const ValueType& v = c.in[i];
  if (!v.rank_known) return false;
  for (auto d : v.shape)
    if (d <= 0) return false;
  return true;
}

int64_t dim_product(InferCtx& c, const Shape& s, size_t b, size_t e) {
  int64_t p = 1, sym = 0;
  int nsym = 0;
  for (size_t i = b; i < e; ++i) {
    if (s[i] == 0) return 0;
    if (s[i] < 0) {
      ++nsym;
      sym = s[i];
    } else {
      p *= s[i];
    }
  }
  if (nsym == 0) return p;
  if (nsym == 1 && p == 1) return sym;
  return c.fresh_dim();
}

Result<std::vector<int64_t>> normalize_axes(const InferCtx& c, const std::vector<int64_t>& axes, int64_t rank,
                                            const char* what) {
  std::vector<int64_t> out;
  std::vector<bool> seen(size_t(std::max<int64_t>(rank, 0)), false);
  for (auto a : axes) {
    if (a < -rank || a >= rank)
      return c.fail(std::string(what) + " " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
    int64_t n = a < 0 ? a + rank : a;
    if (seen[size_t(n)]) return c.fail(std::string(what) + " " + ints_str(axes) + " repeat an axis");
    seen[size_t(n)] = true;
    out.push_back(n);
  }
  return out;
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace kiln::ir::shape_infer
