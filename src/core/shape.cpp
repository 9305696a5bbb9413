#include "core/shape.h"

#include <limits>

namespace kiln {

Result<int64_t> checked_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) {
    if (d < 0) return make_error("shape " + shape_str(s) + " has an unknown dimension");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return make_error("shape " + shape_str(s) + " has more elements than fit in 64 bits");
    n *= d;
  }
  return n;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Result<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1)
      out[i] = da;
    else if (da == 1)
      out[i] = db;
    else if (da < 0 && db >= 0)
      out[i] = db;  // a symbolic dim must equal b's (or be 1, checked at run time)
    else if (db < 0 && da >= 0)
      out[i] = da;
    else if (da < 0 && db < 0)
      out[i] = da;
    else
      return make_error("shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast");
  }
  return out;
}

std::string shape_str(const Shape& s, const std::vector<std::string>* syms) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    if (s[i] >= 0)
      r += std::to_string(s[i]);
    else if (syms && size_t(-s[i] - 1) < syms->size())
      r += (*syms)[-s[i] - 1];
    else
      r += "?";
  }
  return r + "]";
}

Result<int64_t> normalize_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return make_error(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
                      std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace kiln
