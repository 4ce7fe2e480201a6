// Op family "layer_spectra": everything spectral about a batch of layers in one call —
// top-k σ of the 0/1 pattern, of the weighted matrix |W ⊙ M| (when values are given), and the
// same for every regular subgraph. Jobs (layers × {pattern, weighted} × subgraphs) run in
// parallel across cores; big jobs run one at a time with threads inside the kernel.
#pragma once
#include <cstdint>
#include <vector>

#include "csr.h"
#include "singular_values.h"

namespace fspai {

struct LayerSpectraOptions {
  SolveOptions solve;     // k, tol, seed, threads, ...
  bool subgraphs = true;  // run the regular-subgraph decomposition
  bool pattern = true;    // pattern spectra too (false: weighted only, for layers with values)
  int min_nodes = 2;      // smallest degree group kept (neurips23: 2, iclr23: 3)
};

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
