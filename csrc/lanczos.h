// Internals of the batched Lanczos driver shared by the CPU front end (csrc/cpu/) and tests:
// small dense helpers. The driver API itself is declared in gram_step.h.
#pragma once
#include <cstdint>

namespace fspai {

// Dot product (the summation order is part of the determinism contract: it never depends on
// the thread count).
inline double lanczos_dot(const double* a, const double* b, int64_t n) {
  // A SIMD reduction: its lane order is fixed at compile time, never by the thread count.
  double s = 0;
#ifdef FSPAI_OPENMP
#pragma omp simd reduction(+ : s)
#endif
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Contract target for σ_i: max(1e-7·σ_i, 5e-8·σ_1), loosened proportionally when the caller asks
// for a looser tol than the default 1e-5.
inline double sigma_target(double sigma_i, double sigma_1, double tol) {
  const double t = sigma_i * 1e-7 > sigma_1 * 5e-8 ? sigma_i * 1e-7 : sigma_1 * 5e-8;
  return tol > 1e-5 ? t * (tol / 1e-5) : t;
}

}  // namespace fspai
