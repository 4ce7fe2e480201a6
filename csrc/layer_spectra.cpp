#include "layer_spectra.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "parallel.h"
#include "regular_decomposition.h"

namespace fspai {
namespace {

// Below this many nonzeros in all, a batch of layers/subgraphs is a few milliseconds of work:
// it runs on one thread. A parallel region costs microseconds on idle cores but can cost
// milliseconds when another process holds a core (OpenMP threads wait for a descheduled peer):
// on a busy 2-core machine, thousands of tiny calls (the sampler on a small network) ran ~10×
// slower with 2 threads than with 1.
constexpr int64_t kMinParallelNnz = 50000;

// One eigen-solve job: the 0/1 pattern of `view`, plus its weighted matrix when it has values
// (both in one shared pass, see topk_singular_values_pair).
struct Job {
  CsrView view;
  std::vector<double>* out_p;
  std::vector<double>* out_w;
  SolveInfo* info_p;
  SolveInfo* info_w;
};

// Hands freed heap memory back to the OS. The subgraph copies (about the layers' own size, in one
// piece per degree group) and the solves' buffers are freed together at the end of a phase; glibc
// returns heap pages only from the top of the heap, so whether ~0.7× of the input stayed resident
// after the call depended on allocation order (coordinate of 8192×28672 10 %: peak 1.19× or 1.85×
// of the weighted CSR for the same input, changed by an unrelated edit). Cost: one walk of the
// free lists, microseconds against a call of this size.
void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

bool SubgraphRule::holds_group(int64_t degree, int64_t n_in, int64_t n_out) const {
  const double d = static_cast<double>(degree);
  const double d_out =
      n_out > 0 ? d * static_cast<double>(n_in) / static_cast<double>(n_out) : std::numeric_limits<double>::quiet_NaN();
  return holds(d, d_out);
}

void check_subgraph_rule_options(const LayerSpectraOptions& opt) {
  if (opt.subgraph_rule) {
    const SubgraphRule& r = *opt.subgraph_rule;
    for (double v : {r.d_min, r.d_out_min})
      if (!std::isfinite(v) || v < 0)
        throw std::invalid_argument("subgraph_rule thresholds must be finite and >= 0, got " + std::to_string(v));
  }
  if (!opt.solve_invalid_subgraphs && !opt.subgraph_rule)
    throw std::invalid_argument("solve_invalid_subgraphs=False needs a subgraph_rule");
}

std::vector<LayerSpectra> layer_spectra(const std::vector<CsrView>& layers, const LayerSpectraOptions& opt) {
  check_subgraph_rule_options(opt);
  const int threads = resolve_threads(opt.solve.threads);
  const int64_t n = static_cast<int64_t>(layers.size());
  std::vector<LayerSpectra> res(n);
  std::exception_ptr error;
  std::mutex error_mutex;
  auto record = [&]() {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!error) error = std::current_exception();
  };

  // Runs eigen-solve jobs: big ones one at a time with threads inside the kernel, then the rest
  // in parallel across jobs. Infos are shared between a layer's jobs, so each job writes private
  // infos and the merge happens afterwards in job order (deterministic).
  auto run_jobs = [&](const std::vector<Job>& jobs) {
    std::vector<SolveInfo> job_info(jobs.size()), job_winfo(jobs.size());
    auto run = [&](size_t idx, int inner_threads) {
      SolveOptions o = opt.solve;
      o.threads = inner_threads;
      const Job& J = jobs[idx];
      if (!opt.pattern && J.view.weighted())
        *J.out_w = topk_singular_values(J.view, o, &job_winfo[idx]);
      else
        topk_singular_values_pair(J.view, o, J.out_p, J.out_w, &job_info[idx], &job_winfo[idx]);
    };
    std::vector<size_t> order(jobs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return jobs[a].view.nnz() > jobs[b].view.nnz(); });
    const int64_t big = 1 << 20;  // nnz above which a job uses all threads by itself
    size_t first_small = 0;
    while (first_small < order.size() && jobs[order[first_small]].view.nnz() >= big) {
      run(order[first_small], threads);
      ++first_small;
    }
    const int64_t n_small = static_cast<int64_t>(order.size() - first_small);
    int64_t small_nnz = 0;
    for (size_t q = first_small; q < order.size(); ++q) small_nnz += jobs[order[q]].view.nnz();
    const bool par_jobs = threads > 1 && n_small > 1 && small_nnz >= kMinParallelNnz;
    for_each_index_dynamic(0, n_small, par_jobs, threads, [&](int64_t q) {
      try {
        run(order[first_small + q], 1);
      } catch (...) {
        record();
      }
    });
    if (error) std::rethrow_exception(error);
    for (size_t j = 0; j < jobs.size(); ++j) {
      jobs[j].info_p->merge(job_info[j]);
      if (jobs[j].view.weighted()) jobs[j].info_w->merge(job_winfo[j]);
    }
  };

  // Phase A: the layers themselves. Done before any subgraph is extracted, so the peak memory is
  // max(layer solve, subgraph copies), not their sum.
  std::vector<Job> layer_jobs;
  for (int64_t i = 0; i < n; ++i) {
    LayerSpectra& L = res[i];
    layer_jobs.push_back({layers[i], &L.sv, &L.wsv, &L.info, &L.winfo});
  }
  run_jobs(layer_jobs);
  release_free_memory();
  if (!opt.subgraphs) return res;

  // Phase B: subgraph extraction (parallel over layers), then one job per subgraph — except the
  // groups the caller's rule rejects when solve_invalid_subgraphs is false (NaN spectra, no job).
  int64_t total_nnz = 0;
  for (const CsrView& v : layers) total_nnz += v.nnz();
  std::vector<std::vector<RegularGroup>> groups(n);
  for_each_index_dynamic(0, n, threads > 1 && total_nnz >= kMinParallelNnz, threads, [&](int64_t i) {
    try {
      groups[i] = regular_groups(layers[i], opt.min_nodes);
    } catch (...) {
      record();
    }
  });
  if (error) std::rethrow_exception(error);
  std::vector<Job> jobs;
  for (int64_t i = 0; i < n; ++i) {
    LayerSpectra& L = res[i];
    L.subgraphs.resize(groups[i].size());
    L.subgraph_columns.resize(groups[i].size());
    for (size_t g = 0; g < groups[i].size(); ++g) {
      RegularGroup& G = groups[i][g];
      SubgraphSpectra& S = L.subgraphs[g];
      S.degree = G.degree;
      S.n_in = static_cast<int64_t>(G.columns.size());
      S.n_out = G.n_out;
      S.nnz = static_cast<int64_t>(G.sub.indices.size());
      L.subgraph_columns[g] = std::move(G.columns);  // reported; the solve needs only G.sub
      if (opt.skips_group(S.degree, S.n_in, S.n_out)) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        S.sv.assign(opt.solve.k, nan);
        if (layers[i].weighted()) S.wsv.assign(opt.solve.k, nan);
        continue;
      }
      jobs.push_back({G.sub.view(), &S.sv, &S.wsv, &L.info, &L.winfo});
    }
  }
  run_jobs(jobs);
  jobs.clear();
  std::vector<std::vector<RegularGroup>>().swap(groups);  // the subgraph copies (≈ the layers' size)
  release_free_memory();
  return res;
}

}  // namespace fspai
