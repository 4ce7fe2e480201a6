// Loops that run in parallel only when it pays, and as plain loops otherwise.
//
// An OpenMP `if (false)` clause still calls into libgomp, and inside an enclosing parallel region
// (layer_spectra solves many small jobs in parallel, one thread each) it builds a nested team of
// one: about a microsecond per loop, paid several times per Lanczos step. On a batch of small
// subgraph solves that was 6–9 % of the time. These helpers branch before OpenMP is involved.
#pragma once
#include <cstdint>

namespace fspai {

// body(i) for i in [lo, hi): an OpenMP static-schedule loop on `threads` threads when `parallel`.
template <typename F>
inline void for_each_index(int64_t lo, int64_t hi, bool parallel, int threads, F&& body) {
  if (parallel && hi - lo > 1) {
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (int64_t i = lo; i < hi; ++i) body(i);
  } else {
    (void)threads;
    for (int64_t i = lo; i < hi; ++i) body(i);
  }
}

// Same with dynamic scheduling, one index at a time (uneven work per index).
template <typename F>
inline void for_each_index_dynamic(int64_t lo, int64_t hi, bool parallel, int threads, F&& body) {
  if (parallel && hi - lo > 1) {
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
    for (int64_t i = lo; i < hi; ++i) body(i);
  } else {
    (void)threads;
    for (int64_t i = lo; i < hi; ++i) body(i);
  }
}

}  // namespace fspai
