// Op family "regular_decomposition" (SPEC §5): group input nodes (columns of B) by exact degree;
// each group with at least `min_nodes` members, with all outputs that touch it, is a
// d-left-regular bipartite subgraph.
#pragma once
#include <cstdint>
#include <vector>

#include "csr.h"

namespace fspai {

struct RegularGroup {
  int64_t degree = 0;
  std::vector<int32_t> columns;  // input indices of the group (ascending)
  int64_t n_out = 0;             // outputs with at least one edge into the group
  // The group's bipartite graph, longer side as rows where that is known up front:
  //  by_outputs = false: n_in × n_out, rows = group columns, cols = compressed outputs;
  //  by_outputs = true (fewer group columns than layer outputs): n_out × n_in, rows = the
  //  touched outputs ascending, cols = position of the column in `columns`.
  // The spectra are the same either way (solvers orient themselves).
  bool by_outputs = false;
  CsrOwned sub;
};

// `a` is the layer (rows = outputs, cols = inputs). Values (if any) are carried into `sub`.
std::vector<RegularGroup> regular_groups(const CsrView& a, int min_nodes);

}  // namespace fspai
