#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>

#include "dense_eig.h"

namespace {
// std::hypot is ~30 ns (it guards against overflow we cannot reach: entries are Gram values
// far below 1e150); the QL sweeps call it O(n²) times per solve.
inline double fast_hypot(double a, double b) { return std::sqrt(a * a + b * b); }

// Sturm counts at kLanes points at once: cnt[l] = number of eigenvalues of T below x[l], from the
// signs of the LDLᵀ pivots t_i of T − x[l]·I (LAPACK dlaebz recurrence; a pivot smaller than
// pivmin is replaced by −pivmin), and the Newton data of det(T − xI) = Π t_i at the same points:
// dlog[l] = Σ t_i'/t_i (t_i' = dt_i/dx by the same recurrence), so x − 1/dlog is a Newton step.
// One reciprocal per pivot serves both: t_i = (d_i − e_{i−1}²·r_{i−1}) − x with r = 1/t; every
// operation is monotone in its argument, so the count is monotone in x as in dlaebz.
// The lanes are independent chains through the divider, written with GCC/Clang vector
// extensions (kChains 4-wide chains) so the loop runs at the divider's throughput, not its
// latency.
#ifndef FSPAI_STURM_CHAINS
#define FSPAI_STURM_CHAINS 3
#endif
constexpr int kChains = FSPAI_STURM_CHAINS;  // independent 4-wide chains
constexpr int kLanes = 4 * kChains;
#if defined(__GNUC__) || defined(__clang__)
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4i __attribute__((vector_size(32)));
inline void sturm_counts(int n, const double* d, const double* e2, double pivmin, const double* x, double* cnt,
                         double* dlog) {
  v4d xv[kChains], t[kChains], r[kChains], dt[kChains], g[kChains];
  v4i c[kChains];
  const v4d pm = {pivmin, pivmin, pivmin, pivmin}, npm = -pm, zero = {0, 0, 0, 0}, one = {1, 1, 1, 1};
  auto guard = [&](v4d v) {  // |v| < pivmin  →  −pivmin
    const v4i small = (v < pm) & (v > npm);
    return (v4d)(((v4i)v & ~small) | ((v4i)npm & small));
  };
  for (int k = 0; k < kChains; ++k) {
    for (int l = 0; l < 4; ++l) xv[k][l] = x[4 * k + l];
    t[k] = guard(d[0] - xv[k]);
    c[k] = -(v4i)(t[k] <= zero);
    r[k] = one / t[k];
    dt[k] = -one;
    g[k] = dt[k] * r[k];
  }
  for (int i = 1; i < n; ++i) {
    const double di = d[i], ei = e2[i - 1];
    for (int k = 0; k < kChains; ++k) {
      const v4d a = ei * r[k];  // e²/t_{i−1}
      dt[k] = a * r[k] * dt[k] - one;
      t[k] = guard((di - a) - xv[k]);
      c[k] -= (v4i)(t[k] <= zero);
      r[k] = one / t[k];
      g[k] += dt[k] * r[k];
    }
  }
  for (int k = 0; k < kChains; ++k)
    for (int l = 0; l < 4; ++l) {
      cnt[4 * k + l] = static_cast<double>(c[k][l]);
      dlog[4 * k + l] = g[k][l];
    }
}
#else
// Other compilers: the same recurrence lane by lane.
inline void sturm_counts(int n, const double* d, const double* e2, double pivmin, const double* x, double* cnt,
                         double* dlog) {
  for (int l = 0; l < kLanes; ++l) {
    double t = d[0] - x[l];
    if (std::fabs(t) < pivmin) t = -pivmin;
    int c = t <= 0.0;
    double r = 1.0 / t, dt = -1.0, g = dt * r;
    for (int i = 1; i < n; ++i) {
      const double a = e2[i - 1] * r;
      dt = a * r * dt - 1.0;
      t = (d[i] - a) - x[l];
      if (std::fabs(t) < pivmin) t = -pivmin;
      c += t <= 0.0;
      r = 1.0 / t;
      g += dt * r;
    }
    cnt[l] = c;
    dlog[l] = g;
  }
}
#endif
}  // namespace

namespace fspai {

bool tridiagonal_ql_rows(int n, double* d, double* e, double* z, int zrows) {
  if (n <= 0) return true;
  e[n - 1] = 0.0;
  for (int l = 0; l < n; ++l) {
    int iter = 0;
    int m;
    do {
      for (m = l; m < n - 1; ++m) {
        const double dd = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(e[m]) <= DBL_EPSILON * dd) break;
      }
      if (m != l) {
        if (iter++ == 60) return false;
        double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
        double r = fast_hypot(g, 1.0);
        g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
        double s = 1.0, c = 1.0, p = 0.0;
        int i;
        bool underflow = false;
        for (i = m - 1; i >= l; --i) {
          double f = s * e[i];
          const double b = c * e[i];
          r = fast_hypot(f, g);
          e[i + 1] = r;
          if (r == 0.0) {  // recover from underflow
            d[i + 1] -= p;
            e[m] = 0.0;
            underflow = true;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * s + 2.0 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
          for (int q = 0; q < zrows; ++q) {
            double* zr = z + static_cast<long>(q) * n;
            f = zr[i + 1];
            zr[i + 1] = s * zr[i] + c * f;
            zr[i] = c * zr[i] - s * f;
          }
        }
        if (underflow) continue;
        d[l] -= p;
        e[l] = g;
        e[m] = 0.0;
      }
    } while (m != l);
  }
  return true;
}

int tridiagonal_top_eigenvalues(int n, const double* d, const double* e, int q, double* lam,
                                std::vector<double>& work, const double* guess_lo, const double* guess_hi,
                                int nguess) {
  q = std::min(q, n);
  if (q <= 0) return 0;
  if (n == 1) {
    lam[0] = d[0];
    return 1;
  }
  const size_t qs = static_cast<size_t>(q);
  work.resize(2 * static_cast<size_t>(n) + 7 * qs);
  // T is scaled by a power of two 2^-k with ‖T‖·2^-k in [1, 2): the squared off-diagonals can then
  // neither underflow (a tiny T would look split where it is not) nor overflow; exact, undone on
  // the results.
  double tn = 0.0;
  for (int i = 0; i < n; ++i)
    tn = std::max(tn, std::fabs(d[i]) + (i + 1 < n ? std::fabs(e[i]) : 0.0) + (i > 0 ? std::fabs(e[i - 1]) : 0.0));
  if (tn == 0.0) {
    std::fill(lam, lam + q, 0.0);
    return q;
  }
  // (exponent clamped: 2^±1000 stays a normal number, and a T within 2^±1000 of 1 is safe as is)
  const int ex = std::isfinite(tn) ? std::clamp(std::ilogb(tn), -1000, 1000) : 0;
  const double sc = std::ldexp(1.0, -ex), unscale = std::ldexp(1.0, ex);
  double* ds = work.data();
  for (int i = 0; i < n; ++i) ds[i] = d[i] * sc;
  double* e2 = ds + n;
  // Target t (0 = largest) is the eigenvalue of ascending index n-1-t, kept in (lo[t], hi[t]]:
  // clo[t] = N(lo) ≤ n-1-t < N(hi) = chi[t], N(x) = #eigenvalues < x. glo/ghi: Newton data
  // (Σ t_i'/t_i) at the bounds when they were counted (NaN for the Gershgorin ends).
  double* lo = e2 + n;
  double* hi = lo + qs;
  double* clo = hi + qs;
  double* chi = clo + qs;
  double* glo = chi + qs;
  double* ghi = glo + qs;
  double* bisect = ghi + qs;  // 1: the last Newton sweep did not halve the interval
  double gl = ds[0], gu = ds[0], maxe2 = 0.0;
  for (int i = 0; i < n; ++i) {
    const double ea = i + 1 < n ? std::fabs(e[i] * sc) : 0.0, eb = i > 0 ? std::fabs(e[i - 1] * sc) : 0.0;
    gl = std::min(gl, ds[i] - ea - eb);
    gu = std::max(gu, ds[i] + ea + eb);
    if (i + 1 < n) {
      e2[i] = (e[i] * sc) * (e[i] * sc);
      maxe2 = std::max(maxe2, e2[i]);
    }
  }
  const double tnorm = std::max(std::fabs(gl), std::fabs(gu));
  const double pivmin = DBL_MIN * std::max(1.0, maxe2);
  const double pad = 2.1 * tnorm * DBL_EPSILON * n + 4.2 * pivmin;  // dstebz's widening
  gl -= pad;
  gu += pad;
  const double tol = std::max(2.0 * DBL_EPSILON * tnorm, pivmin);
  for (int t = 0; t < q; ++t) {
    lo[t] = gl;
    hi[t] = gu;
    clo[t] = 0;
    chi[t] = n;
    glo[t] = ghi[t] = NAN;
    bisect[t] = 0;
  }
  double x[kLanes], cnt[kLanes], dlog[kLanes], before[kLanes];
  int first[kLanes];  // distinct active intervals of this sweep, by their first target
  bool newton[kLanes];
  // Multisection (dstebz): every sweep cuts up to kLanes intervals into equal parts, ~55 halvings
  // from the Gershgorin width to tol. Once an interval holds only its target (N(hi) − N(lo) = 1),
  // det(T − xI) has a single simple root there and Newton converges quadratically: the sweep
  // counts at the Newton point x_N and at x_N ± h, which brackets the root tightly when the step
  // is good (~4 sweeps from a residual-sized interval instead of ~20). Counts alone move the
  // bounds, so the result is exactly as certain as bisection's; a Newton sweep that fails to
  // halve its interval hands it back to multisection for the next sweep. The cap only guards
  // against a non-monotone count looping forever.
  const int max_sweeps = 32 + 128 * (1 + (q + kLanes - 1) / kLanes);
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    int nd = 0;
    if (sweep == 0 && nguess > 0 && guess_lo && guess_hi) {
      // Warm start: the first sweep counts at the caller's guessed bounds. Any count narrows
      // the intervals correctly whether or not the guess was right; a good guess saves sweeps.
      int l = 0;
      for (int t = 0; t < nguess && l + 1 < kLanes; ++t) {
        x[l++] = std::clamp(guess_lo[t] * sc, gl, gu);
        x[l++] = std::clamp(guess_hi[t] * sc, gl, gu);
      }
      for (; l < kLanes; ++l) x[l] = x[0];
    } else {
      // Distinct intervals still to refine (targets are ordered, so equal intervals are adjacent).
      for (int t = 0; t < q && nd < kLanes; ++t) {
        const double mid = 0.5 * (lo[t] + hi[t]);
        if (!(hi[t] - lo[t] > tol) || !(mid > lo[t] && mid < hi[t])) continue;
        if (nd > 0 && lo[first[nd - 1]] == lo[t] && hi[first[nd - 1]] == hi[t]) continue;
        first[nd++] = t;
      }
      if (nd == 0) break;
      // Newton points: x − 1/dlog from the bound with the shorter step, when inside (lo, hi).
      double xn[kLanes], step[kLanes];
      int nn = 0;
      for (int j = 0; j < nd; ++j) {
        const int t = first[j];
        newton[j] = false;
        if (chi[t] - clo[t] != 1 || bisect[t] != 0) continue;
        double best = NAN, bstep = HUGE_VAL;
        const double cand[2] = {lo[t] - 1.0 / glo[t], hi[t] - 1.0 / ghi[t]};
        const double base[2] = {lo[t], hi[t]};
        for (int s = 0; s < 2; ++s)
          if (cand[s] > lo[t] && cand[s] < hi[t] && std::fabs(cand[s] - base[s]) < bstep) {
            best = cand[s];
            bstep = std::fabs(cand[s] - base[s]);
          }
        if (!(bstep < HUGE_VAL) || 3 * (nn + 1) + (nd - nn - 1) > kLanes) continue;
        newton[j] = true;
        xn[j] = best;
        step[j] = bstep;
        ++nn;
      }
      // Lanes: 3 per Newton interval, the rest spread over the others (an interval with p points
      // is cut into p+1 equal parts); spare lanes repeat a point.
      const int nm = nd - nn, spare = kLanes - 3 * nn;
      int l = 0, mi = 0;
      for (int j = 0; j < nd; ++j) {
        const int t = first[j];
        if (newton[j]) {
          const double h = std::max(0.5 * tol, 1e-3 * step[j]);
          x[l++] = std::max(xn[j] - h, 0.5 * (lo[t] + xn[j]));
          x[l++] = xn[j];
          x[l++] = std::min(xn[j] + h, 0.5 * (xn[j] + hi[t]));
        } else {
          const int p = spare / nm + (mi < spare % nm ? 1 : 0);
          ++mi;
          const double a = lo[t], w = hi[t] - a;
          for (int k = 0; k < p; ++k) x[l++] = a + w * (static_cast<double>(k + 1) / (p + 1));
        }
        before[j] = hi[t] - lo[t];
      }
      for (; l < kLanes; ++l) x[l] = x[0];
    }
    sturm_counts(n, ds, e2, pivmin, x, cnt, dlog);
    // Every count narrows every target.
    for (int k = 0; k < kLanes; ++k) {
      const int c = static_cast<int>(cnt[k]);
      for (int t = 0; t < q; ++t) {
        if (c <= n - 1 - t) {
          if (x[k] > lo[t]) {
            lo[t] = x[k];
            clo[t] = c;
            glo[t] = dlog[k];
          }
        } else if (x[k] < hi[t]) {
          hi[t] = x[k];
          chi[t] = c;
          ghi[t] = dlog[k];
        }
      }
    }
    for (int j = 0; j < nd; ++j) {
      const int t = first[j];
      bisect[t] = newton[j] && !(hi[t] - lo[t] <= 0.5 * before[j]) ? 1 : 0;
    }
  }
  for (int t = 0; t < q; ++t) lam[t] = 0.5 * (lo[t] + hi[t]) * unscale;
  std::sort(lam, lam + q, std::greater<double>());  // already so, up to rounding of the midpoints
  return q;
}

bool tridiagonal_ql(int n, double* d, double* e, double* zrow) {
  return tridiagonal_ql_rows(n, d, e, zrow, zrow ? 1 : 0);
}

std::vector<double> symmetric_eigenvalues(int n, double* a, int q) {
  const std::vector<double> a0(a, a + static_cast<long>(n) * n);  // for the Jacobi fallback
  std::vector<double> d(n), e(std::max(n, 1), 0.0), v(n), p(n);
  for (int k = 0; k + 2 < n; ++k) {
    // Householder vector for column k below the diagonal.
    double norm2 = 0.0;
    for (int i = k + 1; i < n; ++i) norm2 += a[i * n + k] * a[i * n + k];
    const double norm = std::sqrt(norm2);
    if (norm == 0.0) {
      e[k] = 0.0;
      continue;
    }
    const double x0 = a[(k + 1) * n + k];
    const double alpha = x0 >= 0 ? -norm : norm;
    for (int i = k + 1; i < n; ++i) v[i] = a[i * n + k];
    v[k + 1] -= alpha;
    double vn2 = 0.0;
    for (int i = k + 1; i < n; ++i) vn2 += v[i] * v[i];
    const double vn = std::sqrt(vn2);
    if (vn == 0.0) {
      e[k] = alpha;
      continue;
    }
    for (int i = k + 1; i < n; ++i) v[i] /= vn;
    // p = A22 v, K = vᵀp, q = p - K v;  A22 <- A22 - 2(v qᵀ + q vᵀ). A22 lives in the LOWER
    // triangle only (column k and the diagonal are all the rest reads): each stored entry a_ij
    // (j < i) serves both p_i (a dot over the row) and p_j (an axpy from the same loads), and
    // the rank-2 update touches half the matrix — 2/3 of the full-square flops.
    // The dot keeps 8 independent partial sums in a fixed lane order (the compiler maps them onto
    // one SIMD register) instead of one serial FMA chain; the result depends neither on threads
    // nor on the build's vector width.
    for (int i = k + 1; i < n; ++i) p[i] = 0.0;
    for (int i = k + 1; i < n; ++i) {
      const double* row = a + static_cast<long>(i) * n;
      const double vi = v[i];
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int j = k + 1;
      for (; j + 8 <= i; j += 8)
        for (int t = 0; t < 8; ++t) {
          acc[t] += row[j + t] * v[j + t];
          p[j + t] += row[j + t] * vi;
        }
      for (int t = 0; j < i; ++j, ++t) {
        acc[t] += row[j] * v[j];
        p[j] += row[j] * vi;
      }
      p[i] += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + row[i] * vi;
    }
    double K = 0.0;
    for (int i = k + 1; i < n; ++i) K += v[i] * p[i];
    for (int i = k + 1; i < n; ++i) p[i] -= K * v[i];
    for (int i = k + 1; i < n; ++i) {
      double* row = a + static_cast<long>(i) * n;
      const double vi = v[i], pi = p[i];
      for (int j = k + 1; j <= i; ++j) row[j] -= 2.0 * (vi * p[j] + pi * v[j]);
    }
    e[k] = alpha;
  }
  for (int i = 0; i < n; ++i) d[i] = a[i * n + i];
  if (n >= 2) e[n - 2] = a[(n - 1) * n + (n - 2)];
  if (q >= 0 && q < n && n > 10) {
    // Only the top q: Sturm bisection on T, O(n·q) per sweep, where QL on all of T cost about as
    // much as the tridiagonalisation itself at n ≈ 100 (same O(ε‖T‖) accuracy).
    std::vector<double> lam(q), work;
    tridiagonal_top_eigenvalues(n, d.data(), e.data(), q, lam.data(), work);
    if (std::all_of(lam.begin(), lam.end(), [](double x) { return std::isfinite(x); })) return lam;
  }
  if (!tridiagonal_ql(n, d.data(), e.data(), nullptr)) {
    // QL stalled (never seen on scaled inputs): Jacobi always converges.
    std::vector<double> a1(a0), w, vv;
    symmetric_eigen_jacobi(n, a1.data(), w, vv);
    if (q >= 0 && q < n) w.resize(q);
    return w;
  }
  std::sort(d.begin(), d.end(), std::greater<double>());
  if (q >= 0 && q < n) d.resize(q);
  return d;
}

void symmetric_eigen_jacobi(int n, double* a, std::vector<double>& w, std::vector<double>& v) {
  v.assign(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[i * n + i] = 1.0;
  auto A = [&](int i, int j) -> double& { return a[static_cast<long>(i) * n + j]; };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, total = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        total += A(i, j) * A(i, j);
        if (i != j) off += A(i, j) * A(i, j);
      }
    if (off <= 1e-30 * total || off == 0.0) break;
    for (int p = 0; p < n - 1; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = A(p, q);
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (A(q, q) - A(p, p)) / (2.0 * apq);
        const double t = std::copysign(1.0, theta) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = A(k, p), akq = A(k, q);
          A(k, p) = c * akp - s * akq;
          A(k, q) = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = A(p, k), aqk = A(q, k);
          A(p, k) = c * apk - s * aqk;
          A(q, k) = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return A(x, x) > A(y, y); });
  w.resize(n);
  std::vector<double> vs(static_cast<size_t>(n) * n);
  for (int j = 0; j < n; ++j) {
    w[j] = A(order[j], order[j]);
    for (int i = 0; i < n; ++i) vs[i * n + j] = v[i * n + order[j]];
  }
  v.swap(vs);
}

}  // namespace fspai
