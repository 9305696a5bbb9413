// Einsum equation parser: "bij,bjk->bik", implicit outputs ("ij,jk"), '...'
// broadcasting and repeated labels. Spaces are ignored, as numpy does.
// See ir/ops/einsum.h for the label numbering.
#include "ir/ops/einsum.h"

#include <algorithm>
#include <string>

namespace kiln::ir {
namespace {

struct Term {
  std::vector<int> labels;  // letters only
  int ellipsis_at = -1;     // index into labels where '...' stands, or -1
};

struct Parsed {
  std::vector<Term> inputs;
  bool explicit_output = false;
  Term output;
};

Result<Term> parse_term(const std::string& eq, const std::string& s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') {
      t.labels.push_back(ch - 'A');
    } else if (ch >= 'a' && ch <= 'z') {
      t.labels.push_back(26 + ch - 'a');
    } else if (ch == '.') {
      if (s.compare(i, 3, "...") != 0) return make_error("equation '" + eq + "': '.' must be part of '...'");
      if (t.ellipsis_at >= 0) return make_error("equation '" + eq + "': a term has more than one '...'");
      t.ellipsis_at = int(t.labels.size());
      i += 2;
    } else {
      return make_error("equation '" + eq + "': unexpected character '" + std::string(1, ch) + "'");
    }
  }
  return t;
}

Result<Parsed> parse(std::string_view equation, size_t num_inputs) {
  std::string eq;
  for (char ch : equation)
    if (ch != ' ' && ch != '\t') eq += ch;
  Parsed p;
  std::string lhs = eq;
  size_t arrow = eq.find("->");
  if (arrow != std::string::npos) {
    lhs = eq.substr(0, arrow);
    std::string rhs = eq.substr(arrow + 2);
    if (rhs.find("->") != std::string::npos || rhs.find(',') != std::string::npos)
      return make_error("equation '" + eq + "': the output after '->' must be a single term");
    KILN_ASSIGN(p.output, parse_term(eq, rhs));
    p.explicit_output = true;
  }
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    std::string term = lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    KILN_ASSIGN(Term t, parse_term(eq, term));
    p.inputs.push_back(std::move(t));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (p.inputs.size() != num_inputs)
    return make_error("equation '" + eq + "' has " + std::to_string(p.inputs.size()) + " input terms but the node has " +
                      std::to_string(num_inputs) + " inputs");
  if (p.explicit_output) {
    bool seen[kEinsumLetters] = {};
    bool in_inputs[kEinsumLetters] = {};
    for (const auto& t : p.inputs)
      for (int l : t.labels) in_inputs[l] = true;
    for (int l : p.output.labels) {
      char ch = char(l < 26 ? 'A' + l : 'a' + l - 26);
      if (seen[l]) return make_error("equation '" + eq + "': output label '" + ch + "' appears twice");
      if (!in_inputs[l]) return make_error("equation '" + eq + "': output label '" + ch + "' is in no input");
      seen[l] = true;
    }
  }
  return p;
}

}  // namespace

Result<int64_t> einsum_output_rank(std::string_view equation, size_t num_inputs) {
  KILN_ASSIGN(Parsed p, parse(equation, num_inputs));
  if (p.explicit_output) return p.output.ellipsis_at >= 0 ? int64_t(-1) : int64_t(p.output.labels.size());
  int count[kEinsumLetters] = {};
  for (const auto& t : p.inputs) {
    if (t.ellipsis_at >= 0) return int64_t(-1);
    for (int l : t.labels) ++count[l];
  }
  int64_t r = 0;
  for (int c : count) r += c == 1;
  return r;
}

Result<EinsumLabels> einsum_labels(std::string_view equation, const std::vector<int64_t>& ranks) {
  KILN_ASSIGN(Parsed p, parse(equation, ranks.size()));
  // Dimensions under '...' in each input; they broadcast right-aligned, as in numpy.
  std::vector<int64_t> ell(ranks.size(), 0);
  int64_t max_ell = 0;
  for (size_t t = 0; t < ranks.size(); ++t) {
    int64_t named = int64_t(p.inputs[t].labels.size());
    ell[t] = ranks[t] - named;
    if ((p.inputs[t].ellipsis_at < 0 && ell[t] != 0) || ell[t] < 0)
      return make_error("equation '" + std::string(equation) + "': input " + std::to_string(t) + " has rank " +
                        std::to_string(ranks[t]) + " but its term names " + std::to_string(named) + " dimensions" +
                        (p.inputs[t].ellipsis_at >= 0 ? " plus '...'" : ""));
    max_ell = std::max(max_ell, ell[t]);
  }
  EinsumLabels r;
  r.num_labels = int(kEinsumEllipsisBase + max_ell);
  for (size_t t = 0; t < ranks.size(); ++t) {
    const Term& term = p.inputs[t];
    std::vector<int> ids;
    for (size_t i = 0; i <= term.labels.size(); ++i) {
      if (int(i) == term.ellipsis_at)
        for (int64_t j = 0; j < ell[t]; ++j) ids.push_back(int(kEinsumEllipsisBase + max_ell - ell[t] + j));
      if (i < term.labels.size()) ids.push_back(term.labels[i]);
    }
    r.inputs.push_back(std::move(ids));
  }
  if (p.explicit_output) {
    // An explicit output without '...' sums the '...' dimensions away.
    const Term& term = p.output;
    for (size_t i = 0; i <= term.labels.size(); ++i) {
      if (int(i) == term.ellipsis_at)
        for (int64_t j = 0; j < max_ell; ++j) r.output.push_back(int(kEinsumEllipsisBase + j));
      if (i < term.labels.size()) r.output.push_back(term.labels[i]);
    }
  } else {
    // Implicit output: '...' dims first, then labels used exactly once, in ASCII order.
    int count[kEinsumLetters] = {};
    for (const auto& t : p.inputs)
      for (int l : t.labels) ++count[l];
    for (int64_t j = 0; j < max_ell; ++j) r.output.push_back(int(kEinsumEllipsisBase + j));
    for (int l = 0; l < kEinsumLetters; ++l)
      if (count[l] == 1) r.output.push_back(l);
  }
  return r;
}

}  // namespace kiln::ir
