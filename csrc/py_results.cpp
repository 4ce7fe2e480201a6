#include "py_results.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace py = pybind11;

namespace fspai {

SolveOptions make_options(int k, double tol, uint64_t seed, int max_basis, int max_restarts, int threads,
                          int dense_max, int starts, const std::string& route) {
  SolveOptions o;
  o.starts = starts;
  o.route = route;
  o.k = k;
  o.tol = tol;
  o.seed = seed;
  o.max_basis = max_basis;
  o.max_restarts = max_restarts;
  o.threads = threads;
  o.dense_max = dense_max;
  return o;
}

LayerSpectraOptions make_layer_spectra_options(int k, double tol, uint64_t seed, int threads, bool subgraphs,
                                               int min_nodes, int max_basis, int dense_max, bool pattern,
                                               const SubgraphRuleArg& subgraph_rule, bool solve_invalid_subgraphs) {
  if (!pattern && subgraphs) throw std::invalid_argument("pattern=False is only supported with subgraphs=False");
  LayerSpectraOptions o;
  o.solve = make_options(k, tol, seed, max_basis, 100, threads, dense_max);
  o.subgraphs = subgraphs;
  o.min_nodes = min_nodes;
  o.pattern = pattern;
  if (subgraph_rule) {
    SubgraphRule r;
    std::tie(r.d_min, r.d_strict, r.d_out_min, r.d_out_strict) = *subgraph_rule;
    o.subgraph_rule = r;
  }
  o.solve_invalid_subgraphs = solve_invalid_subgraphs;
  check_subgraph_rule_options(o);
  return o;
}

py::dict info_dict(const SolveInfo& i) {
  py::dict d;
  d["steps"] = i.steps;
  d["restarts"] = i.restarts;
  d["components"] = i.components;
  d["lanczos_components"] = i.lanczos_components;
  d["block_components"] = i.block_components;
  d["dense_components"] = i.dense_components;
  d["max_residual"] = i.max_residual;
  d["error_bound"] = i.error_bound;
  d["starts"] = i.starts;
  d["route"] = i.route;
  return d;
}

py::dict layer_spectra_dict(const LayerSpectra& L, int k) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  py::dict d;
  d["sv"] = L.sv.empty() ? py::object(py::none()) : py::object(to_array(L.sv));
  d["wsv"] = L.wsv.empty() ? py::object(py::none()) : py::object(to_array(L.wsv));
  d["info"] = info_dict(L.info);
  d["winfo"] = info_dict(L.winfo);
  const size_t ng = L.subgraphs.size();
  py::array_t<int64_t> deg(ng), nin(ng), nout(ng), nnz(ng);
  py::array_t<double> sv({static_cast<py::ssize_t>(ng), static_cast<py::ssize_t>(k)});
  py::array_t<double> wsv({static_cast<py::ssize_t>(ng), static_cast<py::ssize_t>(k)});
  auto sv_m = sv.mutable_unchecked<2>();
  auto wsv_m = wsv.mutable_unchecked<2>();
  py::list cols;
  for (size_t g = 0; g < ng; ++g) {
    const SubgraphSpectra& S = L.subgraphs[g];
    deg.mutable_data()[g] = S.degree;
    nin.mutable_data()[g] = S.n_in;
    nout.mutable_data()[g] = S.n_out;
    nnz.mutable_data()[g] = S.nnz;
    for (int q = 0; q < k; ++q) {
      sv_m(g, q) = S.sv.empty() ? nan : S.sv[q];
      wsv_m(g, q) = S.wsv.empty() ? nan : S.wsv[q];
    }
    const auto& c = L.subgraph_columns[g];
    py::array_t<int32_t> ca(static_cast<py::ssize_t>(c.size()));
    std::copy(c.begin(), c.end(), ca.mutable_data());
    cols.append(ca);
  }
  d["sub_degree"] = deg;
  d["sub_n_in"] = nin;
  d["sub_n_out"] = nout;
  d["sub_nnz"] = nnz;
  d["sub_sv"] = sv;
  d["sub_wsv"] = wsv;
  d["sub_columns"] = cols;
  return d;
}

}  // namespace fspai
