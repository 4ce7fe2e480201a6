// pybind11 bindings: the private module fspai._core. Takes raw CSR buffers (numpy arrays of the
// exact dtypes below, C-contiguous); the Python layer (fspai._convert) is the one conversion point.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <algorithm>
#include <chrono>
#include <thread>

#include "csr.h"
#include "dense_eig.h"
#include "dense_to_csr.h"
#include "gram_routes.h"
#include "lanczos.h"
#include "layer_spectra.h"
#include "py_results.h"
#include "singular_values.h"

#ifdef FSPAI_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;
using namespace fspai;

// ---- CUDA hook (csrc/layer_spectra_cuda_dispatch.cpp; present in every build)
namespace fspai {
void register_cuda_bindings(py::module_& m);
void add_cuda_build_info(py::dict& d);
}  // namespace fspai
// ---- end CUDA hook

namespace {

// Holds references to the numpy buffers while the GIL is released.
struct CsrArgs {
  py::array indptr, indices, values;
  CsrView view;
};

CsrArgs make_csr(py::handle indptr_h, py::handle indices_h, py::handle values_h, int64_t n_rows, int64_t n_cols,
                 const std::string& what) {
  CsrArgs a;
  auto need = [&](py::handle h, const char* name) {
    if (!py::isinstance<py::array>(h))
      throw py::type_error(what + ": " + name + " must be a numpy array, got " +
                           std::string(py::str(py::type::handle_of(h).attr("__name__"))));
    return py::reinterpret_borrow<py::array>(h);
  };
  a.indptr = need(indptr_h, "indptr");
  a.indices = need(indices_h, "indices");
  if (!py::isinstance<py::array_t<int64_t>>(a.indptr) || a.indptr.dtype().kind() != 'i' || a.indptr.itemsize() != 8)
    throw py::type_error(what + ": indptr must be int64, got " + std::string(py::str(a.indptr.dtype())));
  if (a.indices.dtype().kind() != 'i' || a.indices.itemsize() != 4)
    throw py::type_error(what + ": indices must be int32, got " + std::string(py::str(a.indices.dtype())));
  for (auto* arr : {&a.indptr, &a.indices}) {
    if (arr->ndim() != 1) throw std::invalid_argument(what + ": CSR arrays must be 1-D");
    if (!(arr->flags() & py::array::c_style)) throw std::invalid_argument(what + ": CSR arrays must be C-contiguous");
  }
  if (n_rows < 0 || n_cols < 0) throw std::invalid_argument(what + ": negative shape");
  if (a.indptr.size() != n_rows + 1)
    throw std::invalid_argument(what + ": indptr has " + std::to_string(a.indptr.size()) + " entries, expected n_rows + 1 = " +
                                std::to_string(n_rows + 1));
  const int64_t* ip = static_cast<const int64_t*>(a.indptr.data());
  const int64_t nnz = ip[n_rows];
  if (nnz < 0 || a.indices.size() != nnz)
    throw std::invalid_argument(what + ": indices has " + std::to_string(a.indices.size()) + " entries but indptr[-1] = " +
                                std::to_string(nnz));
  a.view.n_rows = n_rows;
  a.view.n_cols = n_cols;
  a.view.indptr = ip;
  a.view.indices = static_cast<const int32_t*>(a.indices.data());
  if (!values_h.is_none()) {
    a.values = need(values_h, "values");
    if (a.values.ndim() != 1 || !(a.values.flags() & py::array::c_style))
      throw std::invalid_argument(what + ": values must be a 1-D C-contiguous array");
    if (a.values.size() != nnz)
      throw std::invalid_argument(what + ": values has " + std::to_string(a.values.size()) + " entries, expected nnz = " +
                                  std::to_string(nnz));
    if (a.values.dtype().kind() == 'f' && a.values.itemsize() == 4)
      a.view.vtype = ValueType::Float32;
    else if (a.values.dtype().kind() == 'f' && a.values.itemsize() == 8)
      a.view.vtype = ValueType::Float64;
    else
      throw py::type_error(what + ": values must be float32 or float64, got " + std::string(py::str(a.values.dtype())));
    a.view.values = a.values.data();
  }
  return a;
}


}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fspai compiled core: Lanczos spectra of CSR pruning masks (private; use the fspai API).";

  m.def(
      "topk_singular_values",
      [](py::handle indptr, py::handle indices, py::handle values, int64_t n_rows, int64_t n_cols, int k, double tol,
         uint64_t seed, int max_basis, int max_restarts, int threads, int dense_max, int starts, std::string route) {
        CsrArgs a = make_csr(indptr, indices, values, n_rows, n_cols, "matrix");
        SolveOptions o = make_options(k, tol, seed, max_basis, max_restarts, threads, dense_max, starts, route);
        SolveInfo info;
        std::vector<double> sv;
        {
          py::gil_scoped_release release;
          validate_csr(a.view, "matrix");
          sv = topk_singular_values(a.view, o, &info);
        }
        return py::make_tuple(to_array(sv), info_dict(info));
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("n_cols"), py::arg("k") = 2,
      py::arg("tol") = 1e-5, py::arg("seed") = 0, py::arg("max_basis") = 0, py::arg("max_restarts") = 100,
      py::arg("threads") = 0, py::arg("dense_max") = 96, py::arg("starts") = 0, py::arg("route") = "",
      "Top-k singular values (descending) of a CSR matrix and a dict of solver statistics.");

  m.def(
      "dense_to_csr",
      [](py::handle mask_h, py::handle weight_h, int threads) {
        // The caller (fspai._convert) has validated shapes and dtypes; these checks only keep
        // the raw reads in bounds whatever is passed.
        if (!py::isinstance<py::array>(mask_h)) throw py::type_error("mask must be a numpy array");
        py::array mask = py::reinterpret_borrow<py::array>(mask_h);
        if (mask.dtype().kind() != 'b' || mask.itemsize() != 1)
          throw py::type_error("mask must be a bool array, got " + std::string(py::str(mask.dtype())));
        if (mask.ndim() != 2) throw std::invalid_argument("mask must be 2-D");
        const int64_t n_rows = mask.shape(0), n_cols = mask.shape(1);
        const bool empty = n_rows == 0 || n_cols == 0;  // nothing is read: any strides will do
        if (!empty && ((n_cols > 1 && mask.strides(1) != 1) || (n_rows > 1 && mask.strides(0) < n_cols)))
          throw std::invalid_argument("mask rows must be contiguous, with a non-negative row stride");
        DenseRows m{mask.data(), n_rows, n_cols, n_rows > 1 && !empty ? static_cast<int64_t>(mask.strides(0)) : n_cols};
        py::array weight;
        DenseRows w;
        ValueType vt = ValueType::None;
        if (!weight_h.is_none()) {
          if (!py::isinstance<py::array>(weight_h)) throw py::type_error("weight must be a numpy array or None");
          weight = py::reinterpret_borrow<py::array>(weight_h);
          const py::ssize_t is = weight.itemsize();
          if (weight.dtype().kind() != 'f' || (is != 4 && is != 8))
            throw py::type_error("weight must be float32 or float64, got " + std::string(py::str(weight.dtype())));
          vt = is == 4 ? ValueType::Float32 : ValueType::Float64;
          if (weight.ndim() != 2 || weight.shape(0) != n_rows || weight.shape(1) != n_cols)
            throw std::invalid_argument("weight shape differs from the mask's");
          if (!empty && ((n_cols > 1 && weight.strides(1) != is) ||
                         (n_rows > 1 && (weight.strides(0) % is != 0 || weight.strides(0) / is < n_cols))))
            throw std::invalid_argument("weight rows must be contiguous, with a non-negative row stride");
          w = DenseRows{weight.data(), n_rows, n_cols,
                        n_rows > 1 && !empty ? static_cast<int64_t>(weight.strides(0) / is) : n_cols};
        }
        const int th = resolve_threads(threads);
        py::array_t<int64_t> indptr(static_cast<py::ssize_t>(n_rows + 1));
        int64_t* ip = indptr.mutable_data();
        {
          py::gil_scoped_release release;
          ip[0] = 0;
          dense_mask_row_counts(m, ip + 1, th);
          for (int64_t r = 0; r < n_rows; ++r) ip[r + 1] += ip[r];
        }
        const int64_t nnz = ip[n_rows];
        py::array_t<int32_t> indices(static_cast<py::ssize_t>(nnz));
        py::object values = py::none();
        void* vp = nullptr;
        if (vt == ValueType::Float32) {
          py::array_t<float> v(static_cast<py::ssize_t>(nnz));
          vp = v.mutable_data();
          values = v;
        } else if (vt == ValueType::Float64) {
          py::array_t<double> v(static_cast<py::ssize_t>(nnz));
          vp = v.mutable_data();
          values = v;
        }
        {
          int32_t* ix = indices.mutable_data();
          py::gil_scoped_release release;
          dense_mask_fill_csr(m, ip, ix, vt == ValueType::None ? nullptr : &w, vt, vp, th);
        }
        return py::make_tuple(indptr, indices, values);
      },
      py::arg("mask"), py::arg("weight") = py::none(), py::arg("threads") = 0,
      "CSR (indptr int64, indices int32, values or None) of a 2-D bool mask with contiguous rows; "
      "values = the float32/float64 weight at each kept entry (signed, the weight's dtype).");

  m.def(
      "layer_spectra",
      [](py::list layers, int k, double tol, uint64_t seed, int threads, bool subgraphs, int min_nodes, int max_basis,
         int dense_max, bool pattern, const SubgraphRuleArg& subgraph_rule, bool solve_invalid_subgraphs) {
        std::vector<CsrArgs> args;
        std::vector<CsrView> views;
        args.reserve(layers.size());
        for (size_t i = 0; i < layers.size(); ++i) {
          const std::string what = "layer " + std::to_string(i);
          if (!py::isinstance<py::tuple>(layers[i]))
            throw py::type_error(what + ": must be a tuple (indptr, indices, values, n_rows, n_cols)");
          py::tuple t = layers[i].cast<py::tuple>();
          if (t.size() != 5) throw std::invalid_argument("each layer must be (indptr, indices, values, n_rows, n_cols)");
          if (!py::isinstance<py::int_>(t[3]) || !py::isinstance<py::int_>(t[4]))
            throw py::type_error(what + ": n_rows and n_cols must be int");
          int64_t nr, nc;
          try {
            nr = t[3].cast<int64_t>();
            nc = t[4].cast<int64_t>();
          } catch (const py::cast_error&) {
            throw std::invalid_argument(what + ": n_rows / n_cols out of the int64 range");
          }
          args.push_back(make_csr(t[0], t[1], t[2], nr, nc, what));
          views.push_back(args.back().view);
        }
        const LayerSpectraOptions o = make_layer_spectra_options(k, tol, seed, threads, subgraphs, min_nodes, max_basis,
                                                                 dense_max, pattern, subgraph_rule,
                                                                 solve_invalid_subgraphs);
        std::vector<LayerSpectra> res;
        {
          py::gil_scoped_release release;
          for (size_t i = 0; i < views.size(); ++i) validate_csr(views[i], "layer " + std::to_string(i));
          res = layer_spectra(views, o);
        }
        py::list out;
        for (const LayerSpectra& L : res) out.append(layer_spectra_dict(L, k));
        return out;
      },
      py::arg("layers"), py::arg("k") = 2, py::arg("tol") = 1e-5, py::arg("seed") = 0, py::arg("threads") = 0,
      py::arg("subgraphs") = true, py::arg("min_nodes") = 2, py::arg("max_basis") = 0, py::arg("dense_max") = 96,
      py::arg("pattern") = true, py::arg("subgraph_rule") = py::none(), py::arg("solve_invalid_subgraphs") = true,
      "Batched spectra of many layers: pattern and weighted top-k σ of each layer and of each "
      "regular subgraph (input columns grouped by degree, groups of >= min_nodes). subgraph_rule = "
      "(d_min, d_strict, d_out_min, d_out_strict), the caller's group validity rule; with "
      "solve_invalid_subgraphs=False a group failing it is not solved (NaN sub_sv / sub_wsv).");

  m.def(
      "_band_top",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> A, int w, int q) {
        // Test hook (private): top-q eigenpairs of a symmetric band matrix (half-bandwidth w) by
        // the block Lanczos projection's solver (Givens band reduction, bisection, inverse iteration).
        if (A.ndim() != 2 || A.shape(0) != A.shape(1)) throw std::invalid_argument("A must be square");
        const int n = static_cast<int>(A.shape(0));
        std::vector<double> a(A.data(), A.data() + static_cast<int64_t>(n) * n), lam, z;
        if (!band_top_eigenpairs(n, w, a, q, lam, z)) throw std::runtime_error("non-finite result");
        const int qq = static_cast<int>(lam.size());
        py::array_t<double> Z({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(qq)});
        std::copy(z.begin(), z.end(), Z.mutable_data());
        return py::make_tuple(to_array(lam), Z);
      },
      py::arg("A"), py::arg("w"), py::arg("q"), "Test hook (private): top-q eigenpairs of a symmetric band matrix.");

  m.def(
      "_gram_apply",
      [](py::handle indptr, py::handle indices, py::handle values, int64_t n_rows, int64_t n_cols,
         py::array_t<double, py::array::c_style | py::array::forcecast> X, std::string route, bool weighted,
         int threads, int repeat) {
        // Test/benchmark hook: Y = G X for the Gram of the given CSR on its smaller side
        // (s = min(n_rows, n_cols)) through the named CPU route, each row of X one vector, all rows in one
        // apply() call. Returns (Y, seconds per apply over `repeat` calls, build seconds, route).
        CsrArgs a = make_csr(indptr, indices, values, n_rows, n_cols, "matrix");
        const int64_t sdim = std::min(n_rows, n_cols);
        if (X.ndim() != 2 || X.shape(1) != sdim)
          throw std::invalid_argument("X must have shape (count, min(n_rows, n_cols))");
        if (repeat < 1) throw std::invalid_argument("repeat must be >= 1");
        if (weighted && !a.view.weighted()) throw std::invalid_argument("weighted=True needs values");
        const int count = static_cast<int>(X.shape(0));
        py::array_t<double> Y({static_cast<py::ssize_t>(count), static_cast<py::ssize_t>(sdim)});
        double per = 0, build = 0;
        std::string used;
        {
          py::gil_scoped_release release;
          validate_csr(a.view, "matrix");
          const int th = resolve_threads(threads);
          auto t0 = std::chrono::steady_clock::now();
          std::vector<CsrView> parts{a.view};
          std::unique_ptr<GramStepBatch> op = make_cpu_gram_step(parts, !weighted, weighted, th, route);
          auto t1 = std::chrono::steady_clock::now();
          build = std::chrono::duration<double>(t1 - t0).count();
          used = op->route();
          const double c = op->scale(0);
          std::vector<int> ids(count, 0);
          std::vector<const double*> xs(count);
          std::vector<double*> ys(count);
          for (int t = 0; t < count; ++t) {
            xs[t] = X.data() + static_cast<int64_t>(t) * sdim;
            ys[t] = Y.mutable_data() + static_cast<int64_t>(t) * sdim;
          }
          for (int r = 0; r < repeat; ++r) op->apply(count, ids.data(), xs.data(), ys.data());
          per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() / repeat;
          double* y = Y.mutable_data();
          for (int64_t i = 0; i < static_cast<int64_t>(count) * sdim; ++i) y[i] /= c * c;
        }
        return py::make_tuple(Y, per, build, used);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("n_cols"), py::arg("X"),
      py::arg("route") = "", py::arg("weighted") = false, py::arg("threads") = 1, py::arg("repeat") = 1,
      "Test/benchmark hook (private): Y = CᵀC X through a CPU step operator; returns (Y, s/apply, build s, route).");
  m.def(
      "_gram_dense",
      [](py::handle indptr, py::handle indices, py::handle values, int64_t n_rows, int64_t n_cols, bool weighted,
         int threads, std::string build) {
        // Test hook (private): the dense s×s Gram C̃ᵀC̃ (rows = the long side, s = n_cols; |v|, or 1
        // for the pattern, unscaled) by the named build: "auto", "scatter" or "tiles".
        CsrArgs a = make_csr(indptr, indices, values, n_rows, n_cols, "matrix");
        if (weighted && !a.view.weighted()) throw std::invalid_argument("weighted=True needs values");
        const GramBuild b = build == "auto" ? GramBuild::Auto : build == "scatter" ? GramBuild::Scatter
                            : build == "tiles" ? GramBuild::Tiles : throw std::invalid_argument("build must be auto, scatter or tiles");
        if (n_cols > 4096) throw std::invalid_argument("n_cols (the Gram side) must be <= 4096 here");
        py::array_t<double> G({static_cast<py::ssize_t>(n_cols), static_cast<py::ssize_t>(n_cols)});
        {
          py::gil_scoped_release release;
          validate_csr(a.view, "matrix");
          const std::vector<double> g = csr_gram_dense(a.view, weighted, 1.0, resolve_threads(threads), b);
          std::copy(g.begin(), g.end(), G.mutable_data());
        }
        return G;
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("n_cols"),
      py::arg("weighted") = false, py::arg("threads") = 1, py::arg("build") = "auto",
      "Test hook (private): dense Gram of the columns (float64), scattered or tiled build.");
  m.def(
      "_tridiagonal_top",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> d,
         py::array_t<double, py::array::c_style | py::array::forcecast> e, int q, py::object guess_lo,
         py::object guess_hi) {
        // Test hook (private): the q largest eigenvalues of the symmetric tridiagonal (d, e) by the
        // Sturm-count bisection the Lanczos checks use, optionally warm-started.
        const int n = static_cast<int>(d.size());
        if (d.ndim() != 1 || e.ndim() != 1 || e.size() < std::max(n - 1, 0))
          throw std::invalid_argument("d must be 1-D and e must hold at least len(d)-1 values");
        if (q < 0) throw std::invalid_argument("q must be >= 0");
        std::vector<double> lo, hi;
        if (!guess_lo.is_none()) lo = guess_lo.cast<std::vector<double>>();
        if (!guess_hi.is_none()) hi = guess_hi.cast<std::vector<double>>();
        if (lo.size() != hi.size()) throw std::invalid_argument("guess_lo and guess_hi must have equal lengths");
        std::vector<double> ev(std::min(q, n)), work, ee(e.data(), e.data() + e.size());
        ee.resize(std::max<size_t>(ee.size(), 1));
        const int got = tridiagonal_top_eigenvalues(n, d.data(), ee.data(), q, ev.data(), work,
                                                    lo.empty() ? nullptr : lo.data(),
                                                    hi.empty() ? nullptr : hi.data(), static_cast<int>(lo.size()));
        ev.resize(got);
        return ev;
      },
      py::arg("d"), py::arg("e"), py::arg("q"), py::arg("guess_lo") = py::none(), py::arg("guess_hi") = py::none(),
      "Test hook (private): top-q eigenvalues (descending) of a symmetric tridiagonal by bisection.");
  register_cuda_bindings(m);  // CUDA hook: cuda_info, cuda_degrees, cuda_layer_spectra, cuda_set_route

  m.def("build_info", []() {
    py::dict d;
    d["version"] = FSPAI_VERSION;
    d["compiler"] = FSPAI_COMPILER;
#ifdef FSPAI_OPENMP
    d["openmp"] = true;
    d["threads"] = omp_get_max_threads();
#else
    d["openmp"] = false;
    d["threads"] = 1;
#endif
    add_cuda_build_info(d);  // CUDA hook: cuda, cuda_version, cuda_architectures, cuda_devices, cuda_status
    d["hardware_concurrency"] = std::thread::hardware_concurrency();
    return d;
  });
}
