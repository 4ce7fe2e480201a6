#include "regular_decomposition.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace fspai {

std::vector<RegularGroup> regular_groups(const CsrView& a, int min_nodes) {
  if (min_nodes < 1) throw std::invalid_argument("min_nodes must be >= 1");
  // Bᵀ in CSR: row c lists the outputs of input c (ascending), so a group's sub-matrix is a
  // concatenation of whole rows.
  CsrOwned t = transpose(a);
  std::map<int64_t, std::vector<int32_t>> by_degree;
  for (int64_t c = 0; c < t.n_rows; ++c) {
    const int64_t d = t.indptr[c + 1] - t.indptr[c];
    if (d > 0) by_degree[d].push_back(static_cast<int32_t>(c));
  }
  std::vector<RegularGroup> groups;
  std::vector<int32_t> out_map(a.n_rows, -1);
  for (auto& [d, cols] : by_degree) {
    if (static_cast<int64_t>(cols.size()) < min_nodes) continue;
    RegularGroup g;
    g.degree = d;
    g.columns = cols;
    // Compress the touched outputs, in ascending output order.
    std::vector<int32_t> touched;
    for (int32_t c : cols)
      for (int64_t p = t.indptr[c]; p < t.indptr[c + 1]; ++p)
        if (out_map[t.indices[p]] < 0) {
          out_map[t.indices[p]] = 0;
          touched.push_back(t.indices[p]);
        }
    std::sort(touched.begin(), touched.end());
    for (size_t i = 0; i < touched.size(); ++i) out_map[touched[i]] = static_cast<int32_t>(i);
    g.n_out = static_cast<int64_t>(touched.size());
    CsrOwned& s = g.sub;
    s.n_rows = static_cast<int64_t>(cols.size());
    s.n_cols = g.n_out;
    s.indptr.reserve(cols.size() + 1);
    s.indptr.push_back(0);
    s.indices.reserve(cols.size() * d);

    for (int32_t c : cols) {
      for (int64_t p = t.indptr[c]; p < t.indptr[c + 1]; ++p) {
        s.indices.push_back(out_map[t.indices[p]]);  // monotone map: stays sorted
        if (!t.values32.empty()) s.values32.push_back(t.values32[p]);
        else if (!t.values.empty()) s.values.push_back(t.values[p]);
      }
      s.indptr.push_back(static_cast<int64_t>(s.indices.size()));
    }
    for (int32_t r : touched) out_map[r] = -1;
    groups.push_back(std::move(g));
  }
  return groups;
}

}  // namespace fspai
