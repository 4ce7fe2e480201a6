// Internals of the batched Lanczos driver shared by the CPU front end (csrc/cpu/) and tests:
// small dense helpers. The driver API itself is declared in gram_step.h.
#pragma once
#include <cstdint>

namespace fspai {

// Dot product with four fixed partial sums (the summation order is part of the determinism
// contract: it never depends on the thread count).
inline double lanczos_dot(const double* a, const double* b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Contract target for σ_i: max(1e-7·σ_i, 5e-8·σ_1), loosened proportionally when the caller asks
// for a looser tol than the default 1e-5.
inline double sigma_target(double sigma_i, double sigma_1, double tol) {
  const double t = sigma_i * 1e-7 > sigma_1 * 5e-8 ? sigma_i * 1e-7 : sigma_1 * 5e-8;
  return tol > 1e-5 ? t * (tol / 1e-5) : t;
}

}  // namespace fspai
