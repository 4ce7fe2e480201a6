// Op family "singular_values": top-k singular values of a CSR matrix.
// csrc/singular_values.cpp validates and dispatches; csrc/cpu/singular_values_cpu.cpp is the
// kernel; a CUDA kernel would be csrc/cuda/singular_values_cuda.cu behind FSPAI_WITH_CUDA.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "csr.h"

namespace fspai {

struct SolveOptions {
  int k = 2;                // number of singular values (>= 1)
  double tol = 1e-5;        // Ritz residuals ‖Gy − θᵢy‖ ≤ tol·θᵢ on the Gram operator G
  uint64_t seed = 0;        // start vector seed (results are deterministic for a seed)
  int max_basis = 0;        // Lanczos basis size before a thick restart (0: auto)
  int max_restarts = 100;   // a solve that has not converged after this many restarts throws
  int threads = 0;          // 0: all OpenMP threads; results do not depend on this
  int dense_max = 96;       // components whose smaller side is <= this use the exact dense path
  int starts = 0;           // independent random starts per Lanczos problem (0: auto = max(2, k))
  std::string route;        // CPU step operator to force ("csr", "dense_gram"; empty: cost model)
};

struct SolveInfo {
  int64_t steps = 0;        // Lanczos steps = applications of the fused Gram operator CᵀC
  int64_t restarts = 0;
  int64_t components = 0;   // connected components with at least one edge
  int64_t lanczos_components = 0;
  int64_t block_components = 0;  // of those, certified by one block process (the rest by independent runs)
  int64_t dense_components = 0;
  double max_residual = 0;  // largest relative Ritz residual of the returned values
  // Certified bound on max_i |σ_i − σ_i(exact)| / σ_1 of the returned values (0 when exact/dense).
  double error_bound = 0;
  int64_t starts = 0;       // independent random start vectors per Lanczos problem (max over merged)
  // Step operator(s) used: "dense" (exact path), "csr", "csr_pair", "dense_gram", ... When several
  // solves are merged with different routes they are joined with '+', in first-seen order.
  std::string route;
  void merge(const SolveInfo& o) {
    error_bound = o.error_bound > error_bound ? o.error_bound : error_bound;
    starts = o.starts > starts ? o.starts : starts;
    add_route(o.route);
    steps += o.steps;
    restarts += o.restarts;
    components += o.components;
    lanczos_components += o.lanczos_components;
    block_components += o.block_components;
    dense_components += o.dense_components;
    max_residual = o.max_residual > max_residual ? o.max_residual : max_residual;
  }
  void add_route(const std::string& r) {
    if (r.empty()) return;
    size_t pos = 0;
    while (pos <= route.size()) {  // already listed?
      const size_t end = route.find('+', pos);
      const std::string item = route.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      if (item == r) return;
      if (end == std::string::npos) break;
      pos = end + 1;
    }
    route = route.empty() ? r : route + "+" + r;
  }
};

// Dispatch point (device selection lives here). Throws std::invalid_argument on bad options.
std::vector<double> topk_singular_values(const CsrView& a, const SolveOptions& opt, SolveInfo* info);

// Pattern and weighted spectra of the same matrix in one shared pass (values required for the
// weighted half; without values only the pattern is computed).
void topk_singular_values_pair(const CsrView& a, const SolveOptions& opt, std::vector<double>* sv_pattern,
                               std::vector<double>* sv_weighted, SolveInfo* info_pattern, SolveInfo* info_weighted);

// CPU kernels.
std::vector<double> topk_singular_values_cpu(const CsrView& a, const SolveOptions& opt, SolveInfo* info);
void topk_singular_values_pair_cpu(const CsrView& a, const SolveOptions& opt, std::vector<double>* sv_pattern,
                                   std::vector<double>* sv_weighted, SolveInfo* info_pattern,
                                   SolveInfo* info_weighted);

int resolve_threads(int threads);

}  // namespace fspai
