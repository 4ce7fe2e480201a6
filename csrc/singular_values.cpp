#include "singular_values.h"

#include <stdexcept>

#ifdef FSPAI_OPENMP
#include <omp.h>
#endif

namespace fspai {

int resolve_threads(int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be >= 0 (0 = all available)");
#ifdef FSPAI_OPENMP
  return threads == 0 ? omp_get_max_threads() : threads;
#else
  return 1;
#endif
}

static void check_options(const SolveOptions& opt) {
  if (opt.k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(opt.k));
  if (opt.k > (1 << 24)) throw std::invalid_argument("k must be <= 2^24, got " + std::to_string(opt.k));
  if (!(opt.tol > 0.0) || !(opt.tol < 1.0))
    throw std::invalid_argument("tol must be in (0, 1), got " + std::to_string(opt.tol));
  if (opt.max_basis < 0 || (opt.max_basis > 0 && opt.max_basis < opt.k + 2))
    throw std::invalid_argument("max_basis must be 0 (auto) or >= k + 2");
  if (opt.max_restarts < 0) throw std::invalid_argument("max_restarts must be >= 0");
  if (opt.dense_max < 0) throw std::invalid_argument("dense_max must be >= 0");
  if (opt.starts < 0 || opt.starts > 64) throw std::invalid_argument("starts must be in 0..64 (0 = auto)");
  if (!opt.route.empty() && opt.route != "csr" && opt.route != "dense_gram")
    throw std::invalid_argument("route must be '', 'csr' or 'dense_gram', got '" + opt.route + "'");
  resolve_threads(opt.threads);
}

// Host buffers only for now; device pointers dispatch to csrc/cuda/singular_values_cuda.cu here
// once it exists (FSPAI_WITH_CUDA).
std::vector<double> topk_singular_values(const CsrView& a, const SolveOptions& opt, SolveInfo* info) {
  check_options(opt);
  return topk_singular_values_cpu(a, opt, info);
}

void topk_singular_values_pair(const CsrView& a, const SolveOptions& opt, std::vector<double>* sv_pattern,
                               std::vector<double>* sv_weighted, SolveInfo* info_pattern, SolveInfo* info_weighted) {
  check_options(opt);
  topk_singular_values_pair_cpu(a, opt, sv_pattern, sv_weighted, info_pattern, info_weighted);
}

}  // namespace fspai
