// Python bindings of the CUDA path (pytorch_scatter-style dispatch): compiled in every build.
// With FSPAI_WITH_CUDA they call csrc/cuda/layer_spectra_cuda.cu; without it, cuda_info() says
// so and every device entry point raises "fspai was not compiled with CUDA".
//
// Registered from bindings.cpp (PYBIND11_MODULE) by register_cuda_bindings(m), and
// add_cuda_build_info(d) adds the CUDA keys to build_info().
//
// A device layer crosses the binding as a tuple (mask, weight) of matrix descriptors
// (data_ptr, dtype_code, n_rows, n_cols, stride_row, stride_col, device), weight possibly None;
// fspai._device builds them from __cuda_array_interface__ / DLPack and validates them first.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "csr.h"
#include "cuda/gram_plan.h"
#include "layer_spectra.h"
#include "py_results.h"

#ifdef FSPAI_WITH_CUDA
#include "cuda/layer_spectra_cuda.h"
#endif

#ifndef FSPAI_CUDA_ARCHS
#define FSPAI_CUDA_ARCHS ""
#endif

namespace py = pybind11;

namespace fspai {

namespace {

[[noreturn, maybe_unused]] void not_compiled() {
  throw std::runtime_error(
      "fspai was not compiled with CUDA: rebuild with `FSPAI_CUDA=ON pip install .` on a machine with nvcc");
}




py::list debug_list(const std::vector<cuda::DebugApply>& res) {
  py::list out;
  for (const auto& D : res) {
    py::dict d;
    d["layer"] = D.layer;
    d["group"] = D.group;
    d["weighted"] = D.weighted;
    d["s"] = D.s;
    d["scale"] = D.scale;
    d["route"] = D.route;
    d["x1"] = to_array(D.x1);
    d["y1"] = to_array(D.y1);
    d["x2"] = to_array(D.x2);
    d["y2"] = to_array(D.y2);
    d["half_norm"] = D.half_norm;
    out.append(d);
  }
  return out;
}

#ifdef FSPAI_WITH_CUDA
cuda::DeviceMatrix matrix_desc(py::handle h, const std::string& what) {
  py::tuple t = py::reinterpret_borrow<py::object>(h).cast<py::tuple>();
  if (t.size() != 7)
    throw std::invalid_argument(what + ": expected (data_ptr, dtype_code, n_rows, n_cols, stride_row, stride_col, device)");
  cuda::DeviceMatrix m;
  m.data = t[0].cast<uintptr_t>();
  const int code = t[1].cast<int>();
  if (code < 0 || code > static_cast<int>(cuda::DType::Float64)) throw std::invalid_argument(what + ": bad dtype code");
  m.dtype = static_cast<cuda::DType>(code);
  m.n_rows = t[2].cast<int64_t>();
  m.n_cols = t[3].cast<int64_t>();
  m.stride_row = t[4].cast<int64_t>();
  m.stride_col = t[5].cast<int64_t>();
  m.device = t[6].cast<int>();
  return m;
}

std::vector<cuda::DeviceLayer> device_layers(const py::list& layers) {
  std::vector<cuda::DeviceLayer> out;
  out.reserve(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string what = "layer " + std::to_string(i);
    py::tuple t = layers[i].cast<py::tuple>();
    if (t.size() != 2) throw std::invalid_argument(what + ": expected (mask_descriptor, weight_descriptor or None)");
    cuda::DeviceLayer L;
    L.mask = matrix_desc(t[0], what + " mask");
    if (!t[1].is_none()) {
      L.has_weight = true;
      L.weight = matrix_desc(t[1], what + " weight");
    }
    out.push_back(L);
  }
  return out;
}
#endif

// Host CSR tuple (indptr int64, indices int32, values float32/float64/None, n_rows, n_cols) for
// the host emulation; structural validation by validate_csr.
struct HostCsr {
  py::array_t<int64_t, py::array::c_style> indptr;
  py::array_t<int32_t, py::array::c_style> indices;
  py::array values;
  CsrView view;
};

HostCsr host_csr(py::handle h, const std::string& what) {
  py::tuple t = py::reinterpret_borrow<py::object>(h).cast<py::tuple>();
  if (t.size() != 5) throw std::invalid_argument(what + ": expected (indptr, indices, values, n_rows, n_cols)");
  HostCsr c;
  c.indptr = t[0].cast<py::array_t<int64_t, py::array::c_style>>();
  c.indices = t[1].cast<py::array_t<int32_t, py::array::c_style>>();
  c.view.n_rows = t[3].cast<int64_t>();
  c.view.n_cols = t[4].cast<int64_t>();
  if (c.indptr.ndim() != 1 || c.indptr.size() != c.view.n_rows + 1)
    throw std::invalid_argument(what + ": indptr must have n_rows + 1 entries");
  c.view.indptr = c.indptr.data();
  if (c.indices.size() != c.view.indptr[c.view.n_rows]) throw std::invalid_argument(what + ": indices length != nnz");
  c.view.indices = c.indices.data();
  if (!t[2].is_none()) {
    c.values = t[2].cast<py::array>();
    if (c.values.ndim() != 1 || c.values.size() != c.indices.size() || !(c.values.flags() & py::array::c_style))
      throw std::invalid_argument(what + ": values must be 1-D, contiguous, one per index");
    if (c.values.dtype().kind() == 'f' && c.values.itemsize() == 4) c.view.vtype = ValueType::Float32;
    else if (c.values.dtype().kind() == 'f' && c.values.itemsize() == 8) c.view.vtype = ValueType::Float64;
    else throw py::type_error(what + ": values must be float32 or float64");
    c.view.values = c.values.data();
  }
  validate_csr(c.view, what);
  return c;
}

// The test-only host bindings' input: every layer tuple as a validated view (`keep` owns the
// arrays the views point into) and the route name checked.
std::vector<CsrView> host_views(py::list layers, const std::string& route, std::vector<HostCsr>& keep) {
  if (route != "auto" && route != "csr" && route != "bitmap")
    throw std::invalid_argument("route must be 'auto', 'csr' or 'bitmap'");
  std::vector<CsrView> views;
  keep.reserve(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    keep.push_back(host_csr(layers[i], "layer " + std::to_string(i)));
    views.push_back(keep.back().view);
  }
  return views;
}

}  // namespace

void add_cuda_build_info(py::dict& d) {
#ifdef FSPAI_WITH_CUDA
  const cuda::CudaInfo I = cuda::cuda_info();
  d["cuda"] = true;
  d["cuda_version"] = std::to_string(I.runtime_version / 1000) + "." + std::to_string((I.runtime_version % 1000) / 10);
  d["cuda_architectures"] = std::string(FSPAI_CUDA_ARCHS);
  d["cuda_devices"] = I.device_count;
  d["cuda_status"] = I.status;
#else
  d["cuda"] = false;
  d["cuda_version"] = py::none();
  d["cuda_architectures"] = "";
  d["cuda_devices"] = 0;
  d["cuda_status"] = "fspai was not compiled with CUDA";
#endif
}

void register_cuda_bindings(py::module_& m) {
  m.def(
      "cuda_info",
      []() {
        py::dict d;
#ifdef FSPAI_WITH_CUDA
        const cuda::CudaInfo I = cuda::cuda_info();
        d["compiled"] = true;
        d["runtime_version"] = I.runtime_version;
        d["driver_version"] = I.driver_version;
        d["device_count"] = I.device_count;
        d["status"] = I.status;
        d["devices"] = I.devices;
        d["architectures"] = std::string(FSPAI_CUDA_ARCHS);
#else
        d["compiled"] = false;
        d["runtime_version"] = 0;
        d["driver_version"] = 0;
        d["device_count"] = 0;
        d["status"] = "fspai was not compiled with CUDA";
        d["devices"] = py::list();
        d["architectures"] = "";
#endif
        return d;
      },
      "CUDA status of this build and machine (never raises).");

  m.def(
      "cuda_degrees",
      [](py::list layers) -> py::list {
#ifdef FSPAI_WITH_CUDA
        std::vector<cuda::DeviceLayer> L = device_layers(layers);
        std::vector<cuda::DeviceDegrees> deg;
        {
          py::gil_scoped_release release;
          deg = cuda::device_degrees(L);
        }
        py::list out;
        for (const auto& d : deg) {
          py::dict r;
          r["row"] = to_array(d.row);
          r["col"] = to_array(d.col);
          r["wrow"] = d.wrow.empty() && d.row.size() ? py::object(py::none()) : py::object(to_array(d.wrow));
          r["wcol"] = d.wcol.empty() && d.col.size() ? py::object(py::none()) : py::object(to_array(d.wcol));
          out.append(r);
        }
        return out;
#else
        (void)layers;
        not_compiled();
#endif
      },
      py::arg("layers"), "Row/column degrees of device layers [(mask_desc, weight_desc|None), ...].");

  m.def(
      "cuda_layer_spectra",
      [](py::list layers, int k, double tol, uint64_t seed, int threads, bool subgraphs, int min_nodes, int max_basis,
         int dense_max, bool pattern, const SubgraphRuleArg& subgraph_rule, bool solve_invalid_subgraphs) -> py::list {
#ifdef FSPAI_WITH_CUDA
        std::vector<cuda::DeviceLayer> L = device_layers(layers);
        const LayerSpectraOptions o = make_layer_spectra_options(k, tol, seed, threads, subgraphs, min_nodes, max_basis,
                                                                 dense_max, pattern, subgraph_rule,
                                                                 solve_invalid_subgraphs);
        std::vector<LayerSpectra> res;
        {
          py::gil_scoped_release release;
          res = cuda::layer_spectra_cuda(L, o);
        }
        py::list out;
        for (const LayerSpectra& s : res) out.append(layer_spectra_dict(s, k));
        return out;
#else
        (void)layers, (void)k, (void)tol, (void)seed, (void)threads, (void)subgraphs, (void)min_nodes,
            (void)max_basis, (void)dense_max, (void)pattern, (void)subgraph_rule, (void)solve_invalid_subgraphs;
        not_compiled();
#endif
      },
      py::arg("layers"), py::arg("k") = 2, py::arg("tol") = 1e-5, py::arg("seed") = 0, py::arg("threads") = 0,
      py::arg("subgraphs") = true, py::arg("min_nodes") = 2, py::arg("max_basis") = 0, py::arg("dense_max") = 96,
      py::arg("pattern") = true, py::arg("subgraph_rule") = py::none(), py::arg("solve_invalid_subgraphs") = true,
      "layer_spectra for device layers [(mask_desc, weight_desc|None), ...]; same result layout.");

  m.def(
      "_cuda_host_emulation",
      [](py::list layers, int k, double tol, uint64_t seed, int threads, bool subgraphs, int min_nodes, int max_basis,
         int dense_max, bool pattern, const SubgraphRuleArg& subgraph_rule, bool solve_invalid_subgraphs,
         const std::string& route) {
        std::vector<HostCsr> keep;
        const std::vector<CsrView> views = host_views(layers, route, keep);
        const LayerSpectraOptions o = make_layer_spectra_options(k, tol, seed, threads, subgraphs, min_nodes, max_basis,
                                                                 dense_max, pattern, subgraph_rule,
                                                                 solve_invalid_subgraphs);
        std::vector<LayerSpectra> res;
        {
          py::gil_scoped_release release;
          res = cuda::layer_spectra_host_emulation(views, o, route);
        }
        py::list out;
        for (const LayerSpectra& s : res) out.append(layer_spectra_dict(s, k));
        return out;
      },
      py::arg("layers"), py::arg("k") = 2, py::arg("tol") = 1e-5, py::arg("seed") = 0, py::arg("threads") = 0,
      py::arg("subgraphs") = true, py::arg("min_nodes") = 2, py::arg("max_basis") = 0, py::arg("dense_max") = 96,
      py::arg("pattern") = true, py::arg("subgraph_rule") = py::none(), py::arg("solve_invalid_subgraphs") = true,
      py::arg("route") = "auto",
      "TESTING ONLY (every build): the CUDA path's host logic (plan, problem descriptors, scaling, assembly) "
      "with a host twin of the GPU step kernels, on host CSR layers; same result layout as layer_spectra.");

  m.def(
      "cuda_weighted_group_degrees",
      [](py::object layer, std::vector<std::vector<int32_t>> groups) -> py::list {
#ifdef FSPAI_WITH_CUDA
        py::list one;
        one.append(layer);
        std::vector<cuda::DeviceLayer> L = device_layers(one);
        std::vector<std::array<int64_t, 3>> r;
        {
          py::gil_scoped_release release;
          r = cuda::weighted_group_degrees(L[0], groups);
        }
        py::list out;
        for (const auto& t : r) out.append(py::make_tuple(t[0], t[1], t[2]));
        return out;
#else
        (void)layer, (void)groups;
        not_compiled();
#endif
      },
      py::arg("layer"), py::arg("groups"),
      "Per column group: (E_w, n_in_w, n_out_w) of the nonzero pattern of |W ⊙ M| within the group, on the device.");

  m.def(
      "_cuda_debug_apply",
      [](py::list layers, bool subgraphs, int min_nodes, bool pattern, uint64_t seed) -> py::list {
#ifdef FSPAI_WITH_CUDA
        std::vector<cuda::DeviceLayer> L = device_layers(layers);
        LayerSpectraOptions o;
        o.subgraphs = subgraphs;
        o.min_nodes = min_nodes;
        o.pattern = pattern;
        std::vector<cuda::DebugApply> res;
        {
          py::gil_scoped_release release;
          res = cuda::debug_apply(L, o, seed);
        }
        return debug_list(res);
#else
        (void)layers, (void)subgraphs, (void)min_nodes, (void)pattern, (void)seed;
        not_compiled();
#endif
      },
      py::arg("layers"), py::arg("subgraphs") = true, py::arg("min_nodes") = 2, py::arg("pattern") = true,
      py::arg("seed") = 0,
      "TESTING ONLY: one batched GPU Gram step of every problem of a device batch (each problem twice), "
      "with its slot (layer, group, weighted), scale and half norm; see test_cuda.py.");

  m.def(
      "_cuda_host_debug_apply",
      [](py::list layers, bool subgraphs, int min_nodes, bool pattern, const std::string& route, uint64_t seed) {
        std::vector<HostCsr> keep;
        const std::vector<CsrView> views = host_views(layers, route, keep);
        LayerSpectraOptions o;
        o.subgraphs = subgraphs;
        o.min_nodes = min_nodes;
        o.pattern = pattern;
        std::vector<cuda::DebugApply> res;
        {
          py::gil_scoped_release release;
          res = cuda::debug_apply_host_emulation(views, o, route, seed);
        }
        return debug_list(res);
      },
      py::arg("layers"), py::arg("subgraphs") = true, py::arg("min_nodes") = 2, py::arg("pattern") = true,
      py::arg("route") = "auto", py::arg("seed") = 0,
      "TESTING ONLY (every build): _cuda_debug_apply on host CSR layers through the host emulation.");

  m.def(
      "cuda_step_stats",
      [](bool reset) {
        const cuda::StepStats s = cuda::step_stats(reset);
        py::dict d;
        d["rounds"] = s.rounds;
        d["vectors"] = s.vectors;
        d["seconds"] = s.seconds;
        d["bytes_h2d"] = s.bytes_h2d;
        d["bytes_d2h"] = s.bytes_d2h;
        return d;
      },
      py::arg("reset") = false,
      "Counters of the GPU step operator (and of its host twin in _cuda_host_emulation) since the last reset: "
      "rounds (launch pairs), vectors, seconds inside the step (staging, transfers, kernels), bytes_h2d, bytes_d2h.");

  m.def(
      "cuda_set_route",
      [](const std::string& route) {
#ifdef FSPAI_WITH_CUDA
        cuda::set_route(route);
#else
        (void)route;
        not_compiled();
#endif
      },
      py::arg("route"), "Route of the GPU pattern Gram steps: 'auto', 'csr' or 'bitmap' (process-wide).");
}

}  // namespace fspai
