// What every binding (CPU and CUDA) shares, defined once: the solver options built from the
// binding arguments, the SolveInfo dict and the per-layer dict of layer_spectra /
// cuda_layer_spectra.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "layer_spectra.h"
#include "singular_values.h"

namespace fspai {

SolveOptions make_options(int k, double tol, uint64_t seed, int max_basis, int max_restarts, int threads,
                          int dense_max, int starts = 0, const std::string& route = "");
// The binding argument subgraph_rule: (d_min, d_strict, d_out_min, d_out_strict) or None.
using SubgraphRuleArg = std::optional<std::tuple<double, bool, double, bool>>;

// Options of a layer_spectra call (throws std::invalid_argument for pattern=False with subgraphs,
// and for a subgraph rule check_subgraph_rule_options refuses).
LayerSpectraOptions make_layer_spectra_options(int k, double tol, uint64_t seed, int threads, bool subgraphs,
                                               int min_nodes, int max_basis, int dense_max, bool pattern,
                                               const SubgraphRuleArg& subgraph_rule = std::nullopt,
                                               bool solve_invalid_subgraphs = true);

// A 1-D numpy array copy of v (float64 values, int64 indices, ...).
template <typename T>
pybind11::array_t<T> to_array(const std::vector<T>& v) {
  pybind11::array_t<T> a(static_cast<pybind11::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}
pybind11::dict info_dict(const SolveInfo& i);
// Keys: sv, wsv (None when not computed), info, winfo, and per degree group sub_degree, sub_n_in,
// sub_n_out, sub_nnz, sub_sv / sub_wsv (groups × k, NaN where not computed), sub_columns.
pybind11::dict layer_spectra_dict(const LayerSpectra& L, int k);

}  // namespace fspai
