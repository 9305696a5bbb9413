#include "ir/attrs.h"

#include <sstream>

namespace kiln::ir {

AttrMap attrs_to_map(const Attrs& a) {
  return std::visit([](const auto& s) { return write_attrs(s); }, a);
}

namespace {
template <class T>
std::string list_str(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  os << "]";
  return os.str();
}
}  // namespace

std::string attr_value_str(const AttrValue& v) {
  struct {
    std::string operator()(int64_t x) { return std::to_string(x); }
    std::string operator()(float x) {
      std::ostringstream os;
      os << x;
      return os.str();
    }
    std::string operator()(const std::string& s) { return "\"" + s + "\""; }
    std::string operator()(const std::vector<int64_t>& x) { return list_str(x); }
    std::string operator()(const std::vector<float>& x) { return list_str(x); }
    std::string operator()(const std::vector<std::string>& x) { return list_str(x); }
    std::string operator()(const Tensor& t) {
      return "tensor<" + std::string(dtype_name(t.dtype())) + shape_str(t.shape()) + ">";
    }
  } fmt;
  return std::visit(fmt, v);
}

}  // namespace kiln::ir
