#include "layer_spectra.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <numeric>

#include "regular_decomposition.h"

#ifdef FSPAI_OPENMP
#include <omp.h>
#endif

namespace fspai {
namespace {

struct Job {
  CsrView view;
  std::vector<double>* out;
  SolveInfo* info;
};

CsrView pattern_of(CsrView v) {
  v.values = nullptr;
  v.vtype = ValueType::None;
  return v;
}

}  // namespace

std::vector<LayerSpectra> layer_spectra(const std::vector<CsrView>& layers, const LayerSpectraOptions& opt) {
  const int threads = resolve_threads(opt.solve.threads);
  const int64_t n = static_cast<int64_t>(layers.size());
  std::vector<LayerSpectra> res(n);
  std::vector<std::vector<RegularGroup>> groups(n);
  std::exception_ptr error;
  std::mutex error_mutex;

  // Phase 1: subgraph extraction, parallel over layers.
  if (opt.subgraphs) {
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && n > 1)
#endif
    for (int64_t i = 0; i < n; ++i) {
      try {
        groups[i] = regular_groups(layers[i], opt.min_nodes);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }

  // Phase 2: one job per eigen-solve.
  std::vector<Job> jobs;
  for (int64_t i = 0; i < n; ++i) {
    LayerSpectra& L = res[i];
    jobs.push_back({pattern_of(layers[i]), &L.sv, &L.info});
    if (layers[i].weighted()) jobs.push_back({layers[i], &L.wsv, &L.winfo});
    L.subgraphs.resize(groups[i].size());
    L.subgraph_columns.resize(groups[i].size());
    for (size_t g = 0; g < groups[i].size(); ++g) {
      RegularGroup& G = groups[i][g];
      SubgraphSpectra& S = L.subgraphs[g];
      S.degree = G.degree;
      S.n_in = G.sub.n_rows;
      S.n_out = G.n_out;
      S.nnz = static_cast<int64_t>(G.sub.indices.size());
      L.subgraph_columns[g] = G.columns;
      CsrView v = G.sub.view();
      jobs.push_back({pattern_of(v), &S.sv, &L.info});
      if (v.weighted()) jobs.push_back({v, &S.wsv, &L.winfo});
    }
  }
  // Infos are shared between a layer's subgraph jobs, so each job writes a private info and the
  // merge happens afterwards in job order (deterministic).
  std::vector<SolveInfo> job_info(jobs.size());
  std::vector<size_t> order(jobs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return jobs[a].view.nnz() > jobs[b].view.nnz(); });
  const int64_t big = 1 << 20;  // nnz above which a job uses all threads by itself
  size_t first_small = 0;
  while (first_small < order.size() && jobs[order[first_small]].view.nnz() >= big) {
    const Job& J = jobs[order[first_small]];
    SolveOptions o = opt.solve;
    o.threads = threads;
    *J.out = topk_singular_values(J.view, o, &job_info[order[first_small]]);
    ++first_small;
  }
  const int64_t n_small = static_cast<int64_t>(order.size() - first_small);
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && n_small > 1)
#endif
  for (int64_t q = 0; q < n_small; ++q) {
    const size_t idx = order[first_small + q];
    try {
      SolveOptions o = opt.solve;
      o.threads = 1;
      *jobs[idx].out = topk_singular_values(jobs[idx].view, o, &job_info[idx]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  for (size_t j = 0; j < jobs.size(); ++j) jobs[j].info->merge(job_info[j]);
  return res;
}

}  // namespace fspai
