// The field visitor behind every typed attribute struct. A struct lists its
// fields once:
//   template <class V> void fields(V& v) { v("axis", axis); v("mode", mode, kModeNames); }
// and gets parsing from an AttrMap (with type and enum checks), writing back to
// an AttrMap (export) and printing, with no per-op code.
// Tested in tests/unit/test_ir.cpp.
#pragma once
#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/result.h"
#include "ir/attr_value.h"

namespace kiln::ir {

// Names of an enum's values, in enum order: v("mode", mode, kResizeModeNames).
template <class E>
using EnumNames = std::span<const char* const>;

class AttrReader {
 public:
  explicit AttrReader(const AttrMap& m) : m_(m) {}

  template <class T>
  void operator()(const char* name, T& field, bool required = false) {
    seen_.insert(name);
    auto it = m_.find(name);
    if (it == m_.end()) {
      if (required) fail(std::string("required attribute '") + name + "' is missing");
      return;
    }
    read(name, it->second, field);
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* name, E& field, std::span<const char* const> names, bool required = false) {
    seen_.insert(name);
    auto it = m_.find(name);
    if (it == m_.end()) {
      if (required) fail(std::string("required attribute '") + name + "' is missing");
      return;
    }
    const auto* s = std::get_if<std::string>(&it->second);
    if (!s) return fail(std::string("attribute '") + name + "' must be a string");
    for (size_t i = 0; i < names.size(); ++i)
      if (*s == names[i]) {
        field = static_cast<E>(i);
        return;
      }
    std::string allowed;
    for (auto n : names) allowed += std::string(allowed.empty() ? "" : ", ") + n;
    fail(std::string("attribute '") + name + "' has unsupported value '" + *s + "' (expected one of: " + allowed + ")");
  }
  // Attributes that exist in some opsets but carry no meaning for inference.
  void ignore(const char* name) { seen_.insert(name); }

  Result<void> finish() const {
    if (!error_.empty()) return make_error(error_);
    for (const auto& [k, v] : m_)
      if (!seen_.count(k)) return make_error("attribute '" + k + "' is not supported");
    return {};
  }

 private:
  void fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
  }
  void read(const char* name, const AttrValue& v, int64_t& f) {
    if (auto* p = std::get_if<int64_t>(&v)) f = *p;
    else fail(std::string("attribute '") + name + "' must be an integer");
  }
  void read(const char* name, const AttrValue& v, float& f) {
    if (auto* p = std::get_if<float>(&v)) f = *p;
    else if (auto* q = std::get_if<int64_t>(&v)) f = float(*q);
    else fail(std::string("attribute '") + name + "' must be a float");
  }
  void read(const char* name, const AttrValue& v, std::string& f) {
    if (auto* p = std::get_if<std::string>(&v)) f = *p;
    else fail(std::string("attribute '") + name + "' must be a string");
  }
  void read(const char* name, const AttrValue& v, std::vector<int64_t>& f) {
    if (auto* p = std::get_if<std::vector<int64_t>>(&v)) f = *p;
    else if (auto* q = std::get_if<std::vector<float>>(&v); q && q->empty()) f.clear();
    else fail(std::string("attribute '") + name + "' must be a list of integers");
  }
  void read(const char* name, const AttrValue& v, std::vector<float>& f) {
    if (auto* p = std::get_if<std::vector<float>>(&v)) f = *p;
    else if (auto* q = std::get_if<std::vector<int64_t>>(&v)) f.assign(q->begin(), q->end());
    else fail(std::string("attribute '") + name + "' must be a list of floats");
  }
  void read(const char* name, const AttrValue& v, std::vector<std::string>& f) {
    if (auto* p = std::get_if<std::vector<std::string>>(&v)) f = *p;
    else fail(std::string("attribute '") + name + "' must be a list of strings");
  }
  void read(const char* name, const AttrValue& v, Tensor& f) {
    if (auto* p = std::get_if<Tensor>(&v)) f = *p;
    else fail(std::string("attribute '") + name + "' must be a tensor");
  }

  const AttrMap& m_;
  std::set<std::string> seen_;
  std::string error_;
};

// Writes every field to an AttrMap (enums as their names).
class AttrWriter {
 public:
  explicit AttrWriter(AttrMap& m) : m_(m) {}
  template <class T>
  void operator()(const char* name, const T& field, bool required = false) {
    m_[name] = AttrValue{field};
    if (required) required_.insert(name);
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* name, const E& field, std::span<const char* const> names, bool required = false) {
    m_[name] = std::string(names[size_t(field)]);
    if (required) required_.insert(name);
  }
  void ignore(const char*) {}
  bool is_required(const std::string& name) const { return required_.count(name) > 0; }

 private:
  AttrMap& m_;
  std::set<std::string> required_;
};

template <class S>
Result<S> parse_attrs(const AttrMap& m) {
  S s{};
  AttrReader r(m);
  s.fields(r);
  KILN_TRY(r.finish());
  return s;
}

// Required fields and fields that differ from the struct's defaults (what
// export and printing show).
template <class S>
AttrMap write_attrs(const S& s) {
  AttrMap all, defaults;
  AttrWriter w(all), wd(defaults);
  const_cast<S&>(s).fields(w);
  S d{};
  d.fields(wd);
  for (auto it = all.begin(); it != all.end();)
    it = (!w.is_required(it->first) && it->second == defaults[it->first]) ? all.erase(it) : std::next(it);
  return all;
}

}  // namespace kiln::ir
