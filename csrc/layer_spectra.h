// Op family "layer_spectra": everything spectral about a batch of layers in one call —
// top-k σ of the 0/1 pattern, of the weighted matrix |W ⊙ M| (when values are given), and the
// same for every regular subgraph. Jobs (layers × {pattern, weighted} × subgraphs) run in
// parallel across cores; big jobs run one at a time with threads inside the kernel.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "csr.h"
#include "singular_values.h"

namespace fspai {

// Validity rule of a degree group: d >= d_min (> when d_strict) and d_out >= d_out_min (> when
// d_out_strict), with d the group's degree and d_out = d * n_in / n_out. A NaN degree fails.
// The numbers are data passed down from Python: the owner of the rule is the convention object
// (fspai.conventions.Convention.subgraph_rule, a DegreeRule whose core_rule() gives these four
// values); nothing here knows a convention's thresholds. holds() is DegreeRule.holds, term for term.
struct SubgraphRule {
  double d_min = 0.0;
  bool d_strict = false;
  double d_out_min = 0.0;
  bool d_out_strict = false;

  bool holds(double d, double d_out) const {
    const bool ok_in = d_strict ? d > d_min : d >= d_min;  // false for NaN either way
    const bool ok_out = d_out_strict ? d_out > d_out_min : d_out >= d_out_min;
    return ok_in && ok_out;
  }
  // The rule on a group of n_in input columns of exact degree `degree` reaching n_out outputs
  // (d_out computed as Python's degree * n_in / n_out; NaN when n_out == 0).
  bool holds_group(int64_t degree, int64_t n_in, int64_t n_out) const;
};

struct LayerSpectraOptions {
  SolveOptions solve;     // k, tol, seed, threads, ...
  bool subgraphs = true;  // run the regular-subgraph decomposition
  bool pattern = true;    // pattern spectra too (false: weighted only, for layers with values)
  int min_nodes = 2;      // smallest degree group kept (neurips23: 2, iclr23: 3)
  // The caller's subgraph rule (see SubgraphRule), and whether groups failing it are solved.
  // solve_invalid_subgraphs = false (needs a rule): a failing group gets no eigen-solve job and
  // reports sv / wsv = NaN (k entries each); its degree, n_in, n_out, nnz and columns are still
  // reported. true (default): every group is solved, the rule is not consulted.
  std::optional<SubgraphRule> subgraph_rule;
  bool solve_invalid_subgraphs = true;

  // Whether the group (degree, n_in, n_out) is skipped (no solve, NaN spectra) under these options.
  bool skips_group(int64_t degree, int64_t n_in, int64_t n_out) const {
    return !solve_invalid_subgraphs && subgraph_rule && !subgraph_rule->holds_group(degree, n_in, n_out);
  }
};

// Throws std::invalid_argument for a rule the core refuses (a threshold NaN, infinite or negative)
// and for solve_invalid_subgraphs = false without a rule.
void check_subgraph_rule_options(const LayerSpectraOptions& opt);

struct SubgraphSpectra {
  int64_t degree = 0, n_in = 0, n_out = 0, nnz = 0;
  std::vector<double> sv;   // pattern σ (k values)
  std::vector<double> wsv;  // weighted σ (k values; empty without values)
};

struct LayerSpectra {
  std::vector<double> sv, wsv;
  SolveInfo info, winfo;
  std::vector<SubgraphSpectra> subgraphs;
  std::vector<std::vector<int32_t>> subgraph_columns;
};

std::vector<LayerSpectra> layer_spectra(const std::vector<CsrView>& layers, const LayerSpectraOptions& opt);

}  // namespace fspai
