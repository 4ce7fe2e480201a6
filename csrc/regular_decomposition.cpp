#include "regular_decomposition.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "counting_sort.h"

namespace fspai {

// Builds every kept group's sub-matrix straight from the row-major CSR (no transposed copy of the
// whole layer): column degrees → groups → a counting-sort scatter of the entries into the groups'
// rows, scanning outputs in ascending order so each sub-row comes out sorted. Extra memory is the
// sub-matrices themselves (at most the layer's nnz) plus O(n_rows + n_cols) integers.
std::vector<RegularGroup> regular_groups(const CsrView& a, int min_nodes) {
  if (min_nodes < 1) throw std::invalid_argument("min_nodes must be >= 1");
  const int64_t nnz = a.nnz();
  std::vector<int64_t> deg(a.n_cols, 0);
  for (int64_t p = 0; p < nnz; ++p) deg[a.indices[p]]++;
  // Columns by degree, ascending, each group's columns ascending (degrees are at most n_rows).
  const KeyOrder by_degree = order_by_key(a.n_cols, [&](int64_t c) { return deg[c]; });
  std::vector<RegularGroup> groups;
  // For every column: its group and its row inside the group's sub-matrix (-1: not kept).
  std::vector<int32_t> group_of(a.n_cols, -1), row_in(a.n_cols, -1);
  for (int64_t d = 1; d <= by_degree.max_key; ++d) {
    const int64_t count = by_degree.start[d + 1] - by_degree.start[d];
    if (count == 0 || count < min_nodes) continue;
    RegularGroup g;
    g.degree = d;
    g.columns.assign(by_degree.order.begin() + by_degree.start[d], by_degree.order.begin() + by_degree.start[d + 1]);
    const std::vector<int32_t>& cols = g.columns;
    const int32_t id = static_cast<int32_t>(groups.size());
    CsrOwned& sub = g.sub;
    // Fewer group columns than layer outputs: the outputs are (almost surely) the longer side,
    // so the group is built outputs × columns, the orientation the solvers use (no transposed
    // copy there); otherwise columns × outputs.
    g.by_outputs = static_cast<int64_t>(cols.size()) < a.n_rows;
    if (g.by_outputs) {
      sub.n_cols = static_cast<int64_t>(cols.size());
      sub.indptr.reserve(static_cast<size_t>(std::min<int64_t>(a.n_rows, static_cast<int64_t>(cols.size()) * d)) + 1);
    } else {
      sub.n_rows = static_cast<int64_t>(cols.size());
      sub.indptr.resize(cols.size() + 1);
      for (size_t i = 0; i <= cols.size(); ++i) sub.indptr[i] = static_cast<int64_t>(i) * d;
    }
    sub.indices.resize(cols.size() * d);
    if (a.vtype == ValueType::Float32) sub.values32.resize(cols.size() * d);
    if (a.vtype == ValueType::Float64) sub.values.resize(cols.size() * d);
    for (size_t i = 0; i < cols.size(); ++i) {
      group_of[cols[i]] = id;
      row_in[cols[i]] = static_cast<int32_t>(i);
    }
    groups.push_back(std::move(g));
  }
  if (groups.empty()) return groups;
  // One scan of the layer. Columns × outputs groups: scatter (raw output ids for now), fill
  // position of each column = entries already placed. Outputs × columns groups: append, a new
  // row whenever the output changes (outputs ascend, and within an output the group-local column
  // indices ascend with the columns, so rows come out sorted and compressed).
  std::vector<int64_t> fill(a.n_cols, 0);
  std::vector<int64_t> next(groups.size(), 0), last_row(groups.size(), -1);
  for (int64_t r = 0; r < a.n_rows; ++r) {
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
      const int32_t c = a.indices[p];
      const int32_t gid = group_of[c];
      if (gid < 0) continue;
      RegularGroup& g = groups[gid];
      int64_t q;
      if (g.by_outputs) {
        if (last_row[gid] != r) {
          last_row[gid] = r;
          g.sub.indptr.push_back(next[gid]);
        }
        q = next[gid]++;
        g.sub.indices[q] = row_in[c];
      } else {
        q = static_cast<int64_t>(row_in[c]) * g.degree + fill[c]++;
        g.sub.indices[q] = static_cast<int32_t>(r);
      }
      if (a.vtype == ValueType::Float32) g.sub.values32[q] = std::fabs(static_cast<const float*>(a.values)[p]);
      else if (a.vtype == ValueType::Float64) g.sub.values[q] = std::fabs(static_cast<const double*>(a.values)[p]);
    }
  }
  for (size_t gid = 0; gid < groups.size(); ++gid) {
    RegularGroup& g = groups[gid];
    if (!g.by_outputs) continue;
    g.sub.indptr.push_back(next[gid]);
    g.sub.n_rows = static_cast<int64_t>(g.sub.indptr.size()) - 1;
    g.n_out = g.sub.n_rows;
  }
  // Columns × outputs groups: compress each group's touched outputs in ascending order (a
  // monotone map keeps rows sorted).
  std::vector<int32_t> out_map(a.n_rows, -1);
  for (RegularGroup& g : groups) {
    if (g.by_outputs) continue;
    std::vector<int32_t> touched;
    for (int32_t r : g.sub.indices)
      if (out_map[r] < 0) {
        out_map[r] = 0;
        touched.push_back(r);
      }
    if (static_cast<int64_t>(touched.size()) * 16 >= a.n_rows) {  // most rows: one ordered scan, no sort
      touched.clear();
      for (int64_t r = 0; r < a.n_rows; ++r)
        if (out_map[r] == 0) touched.push_back(static_cast<int32_t>(r));
    } else {
      std::sort(touched.begin(), touched.end());
    }
    for (size_t i = 0; i < touched.size(); ++i) out_map[touched[i]] = static_cast<int32_t>(i);
    for (int32_t& r : g.sub.indices) r = out_map[r];
    for (int32_t r : touched) out_map[r] = -1;
    g.n_out = static_cast<int64_t>(touched.size());
    g.sub.n_cols = g.n_out;
  }
  return groups;
}

}  // namespace fspai
