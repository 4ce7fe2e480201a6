// Internals of the batched Lanczos driver shared by the CPU front end (csrc/cpu/) and tests:
// small dense helpers. The driver API itself is declared in gram_step.h.
#pragma once
#include <cstdint>
#include <vector>

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

// out[t] = v_t · w for the four vectors v_0..v_3: one sweep over w feeds four independent
// accumulator chains (a single dot waits on its one chain's add latency; reorthogonalisation
// takes ~one dot per basis vector per step). Summation order fixed at compile time.
inline void lanczos_dot4(const double* v0, const double* v1, const double* v2, const double* v3, const double* w,
                         int64_t n, double* out) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#ifdef FSPAI_OPENMP
#pragma omp simd reduction(+ : s0, s1, s2, s3)
#endif
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w[i];
    s0 += v0[i] * wi;
    s1 += v1[i] * wi;
    s2 += v2[i] * wi;
    s3 += v3[i] * wi;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

// Contract target for σ_i: max(1e-7·σ_i, 5e-8·σ_1), loosened proportionally when the caller asks
// for a looser tol than the default 1e-5.
inline double sigma_target(double sigma_i, double sigma_1, double tol) {
  const double t = sigma_i * 1e-7 > sigma_1 * 5e-8 ? sigma_i * 1e-7 : sigma_1 * 5e-8;
  return tol > 1e-5 ? t * (tol / 1e-5) : t;
}

// Top-q eigenpairs of a symmetric n×n matrix of half-bandwidth w (row-major A, destroyed): values
// descending in lam, vectors in the columns of z (n×q row-major). The block Lanczos projection;
// exposed for tests. Returns false on non-finite results.
bool band_top_eigenpairs(int n, int w, std::vector<double>& A, int q, std::vector<double>& lam, std::vector<double>& z);

}  // namespace fspai
