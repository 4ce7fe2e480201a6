// Python result objects of the core, built in one place for every binding (CPU and CUDA):
// the SolveInfo dict and the per-layer dict of layer_spectra / cuda_layer_spectra.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "layer_spectra.h"
#include "singular_values.h"

namespace fspai {

pybind11::array_t<double> to_array(const std::vector<double>& v);
pybind11::dict info_dict(const SolveInfo& i);
// Keys: sv, wsv (None when not computed), info, winfo, and per degree group sub_degree, sub_n_in,
// sub_n_out, sub_nnz, sub_sv / sub_wsv (groups × k, NaN where not computed), sub_columns.
pybind11::dict layer_spectra_dict(const LayerSpectra& L, int k);

}  // namespace fspai
