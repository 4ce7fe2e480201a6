// The one Lanczos driver: certified top-k eigenvalues of a batch of Gram operators, advanced in
// lockstep through GramStepBatch::apply (CPU and GPU operators plug in the same way).
//
// ---------------------------------------------------------------- why the answer is certified
// A small Ritz residual ‖Gy − θy‖ ≤ r proves only that SOME eigenvalue lies within r of θ; it does
// not prove that the i-th Ritz value approximates the i-th eigenvalue. A Krylov run whose start
// vector is poor in the direction of λ_2 converges to λ_3 first and, with a small residual, would
// call it σ2 (seen on near-low-rank weights); a single start vector also sees only one copy of a
// repeated eigenvalue. No method that only multiplies by G can exclude an eigenvector hidden
// orthogonally to everything it probed, so certification is over the random start vectors:
//
//  1. Each problem draws b = max(2, k) (SolveOptions::starts) independent random start vectors
//     and explores them as ONE block Lanczos process (BlockRun): full reorthogonalisation, the
//     projection is a band of half-width b. After j steps its space is K_j(v_1) + … + K_j(v_b),
//     the union of what b separate single-vector runs would span with the same mat-vecs, so it
//     contains a different copy of a repeated eigenvalue from each start (multiplicities up to b
//     are resolved; within a connected component λ_1 is simple, so b = k suffices) and misses an
//     eigenvector only if EVERY start is deficient along it: probability ~δ^b for a deficiency δ,
//     against ~δ for one start. All problems of a batch share every pass over the matrices (one
//     apply() call per round).
//  2. When the band's top-k Ritz pairs meet the readiness rule (stop_progress), the driver does a
//     Rayleigh–Ritz on the top-(k+1) Ritz vectors with explicit residuals. No extra mat-vec is
//     needed: G y = θ y + X_{j+1} B_j z_last is known for every Ritz vector.
//  3. Small Gram sides (< kBlockMinSide), and problems whose block basis fills up before
//     certification, use b INDEPENDENT single-vector runs with thick restart instead, each
//     converging on its own: the union of their top-(k+1) Ritz vectors is certified only when
//     every distinct union value is reproduced (within residual bounds) by EVERY run; a run that
//     missed one is resumed. Each run must converge by itself there: a union with a run that is
//     still early adds nothing above a value another, deficient, run converged to, and the
//     protection would fall back to ~δ. (Measured on ResNet-34 512×4608 at 1 %: the block space
//     certifies at 27–31 steps per start where the slower of two independent runs needs 38–51.)
//  4. Error bounds: eigenvalues are grouped into clusters of overlapping residual intervals;
//     each cluster's error is min(‖R‖, ‖R‖²/gap) (Weyl / Kato–Temple with the gap to the nearest
//     other union Ritz value, minus its residual). The σ error implied by that bound must be
//     ≤ max(1e-7·σ_i, 5e-8·σ_1) (the accuracy contract); otherwise the runs continue. Only
//     bounds at the rounding level of the Gram operator (≤ 16ε·θ_1) are accepted as they are.
//  5. Exhaustion (the basis spans the whole space) makes the Ritz values exact.
//
// Scaling: operators apply c²·G with c a power of two (GramStepBatch::scale), so θ̃ = c²λ stays
// far from overflow and underflow; σ = sqrt(θ̃)/c is formed only at the end.
// Square-root loss: a Gram eigenvalue carries an absolute error ≈ ε·θ_1, so sqrt(θ_i) for
// θ_i ≪ θ_1 has error ≈ √ε·σ_1. For θ_i < 1e-6·θ_1 the driver returns ‖C x_i‖ of the union Ritz
// vector x_i (GramStepBatch::half_norms), accurate to ≈ ε·σ_1 (rank-deficient layers give
// σ ≈ 1e-15·σ_1 rather than 1e-8·σ_1).
//
// Determinism: start vectors depend only on (seed, start index); dot products are computed whole
// in a fixed order (block columns in fixed pairs); operators are required to be deterministic.
// Results are bit-identical for any thread count.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <exception>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "dense_eig.h"
#include "gram_step.h"
#include "lanczos.h"
#include "parallel.h"


namespace fspai {
namespace {

// Σ s·m over the runs of a round (the reorthogonalisation's multiply-adds are ~4·s·m) above which
// the runs are stepped in parallel; measured: about where one step costs 10 µs.
constexpr int64_t kParallelStepWork = 8192;
// Basis length × vector length of one reorthogonalisation pass above which the pass is split over
// the threads.
constexpr int64_t kParallelPassWork = 262144;

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
// The random stream of start vector `index` of a problem: a function of (seed, index) only, shared
// by both process kinds (a block process starts from the vectors the independent runs would).
inline uint64_t start_stream(uint64_t seed, int index) {
  return seed * 0x2545F4914F6CDD1DULL + 0x1234567ULL + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(index);
}
inline double uniform_pm1(uint64_t& state) {
  return (static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53) * 2.0 - 1.0;
}

// Full eigen-decomposition of a small symmetric matrix (row-major, destroyed): eigenvalues
// descending in w, eigenvectors in the columns of z (row-major n×n).
void small_eigen(int n, std::vector<double>& a, bool tridiagonal, std::vector<double>& w, std::vector<double>& z) {
  if (tridiagonal) {
    std::vector<double> d(n), e(n, 0.0), zz(static_cast<size_t>(n) * n, 0.0);
    for (int i = 0; i < n; ++i) {
      d[i] = a[static_cast<size_t>(i) * n + i];
      if (i + 1 < n) e[i] = a[static_cast<size_t>(i) * n + i + 1];
      zz[static_cast<size_t>(i) * n + i] = 1.0;
    }
    if (tridiagonal_ql_rows(n, d.data(), e.data(), zz.data(), n)) {
      std::vector<int> ord(n);
      std::iota(ord.begin(), ord.end(), 0);
      std::stable_sort(ord.begin(), ord.end(), [&](int x, int y) { return d[x] > d[y]; });
      w.resize(n);
      z.assign(static_cast<size_t>(n) * n, 0.0);
      for (int j = 0; j < n; ++j) {
        w[j] = d[ord[j]];
        for (int i = 0; i < n; ++i) z[static_cast<size_t>(i) * n + j] = zz[static_cast<size_t>(i) * n + ord[j]];
      }
      return;
    }
    // QL stalled: fall through to Jacobi, which always converges.
  }
  symmetric_eigen_jacobi(n, a.data(), w, z);
}

// Eigenvectors of the symmetric tridiagonal T (diagonal d, off-diagonal e) for eigenvalues lam
// (descending, accurate), by inverse iteration with partial pivoting (LAPACK gttrf/gtts2 scheme),
// re-orthogonalised among themselves (equal eigenvalues of a split T). z is m×q row-major.
// O(m·q) against O(m³) for the full QL eigenvector matrix.
struct TridiagWork {  // scratch of tridiagonal_vectors, reused across checks (no per-check heap traffic)
  std::vector<double> dl, dd, du, du2, b;
  std::vector<char> piv;
  std::vector<std::vector<double>> start;  // start[c][i]: the generic start vectors, grown as m grows
};
void tridiagonal_vectors(int m, const double* d, const double* e, const double* lam, int q, std::vector<double>& z,
                         TridiagWork& ws) {
  double tnorm = 0;
  for (int i = 0; i < m; ++i) tnorm = std::max(tnorm, std::fabs(d[i]) + (i + 1 < m ? std::fabs(e[i]) : 0.0) +
                                                          (i > 0 ? std::fabs(e[i - 1]) : 0.0));
  const double tiny = std::max(tnorm, 1e-300) * DBL_EPSILON;
  z.assign(static_cast<size_t>(m) * q, 0.0);
  ws.dl.resize(m);
  ws.dd.resize(m);
  ws.du.resize(m);
  ws.du2.resize(m);
  ws.b.resize(m);
  ws.piv.resize(m);
  if (static_cast<int>(ws.start.size()) < q) ws.start.resize(q);
  double *dl = ws.dl.data(), *dd = ws.dd.data(), *du = ws.du.data(), *du2 = ws.du2.data(), *b = ws.b.data();
  char* piv = ws.piv.data();
  for (int c = 0; c < q; ++c) {
    for (int i = 0; i < m; ++i) {
      dd[i] = d[i] - lam[c];
      dl[i] = du[i] = i + 1 < m ? e[i] : 0.0;
      du2[i] = 0.0;
      piv[i] = 0;
    }
    for (int i = 0; i + 1 < m; ++i) {
      if (std::fabs(dd[i]) >= std::fabs(dl[i])) {
        if (dd[i] == 0.0) dd[i] = tiny;
        const double f = dl[i] / dd[i];
        dl[i] = f;
        dd[i + 1] -= f * du[i];
      } else {
        const double f = dd[i] / dl[i];
        dd[i] = dl[i];
        dl[i] = f;
        const double t = du[i];
        du[i] = dd[i + 1];
        dd[i + 1] = t - f * dd[i + 1];
        if (i + 2 < m) {
          du2[i] = du[i + 1];
          du[i + 1] = -f * du[i + 1];
        }
        piv[i] = 1;
      }
    }
    if (dd[m - 1] == 0.0) dd[m - 1] = tiny;
    for (int i = 0; i < m; ++i) dd[i] = 1.0 / dd[i];  // the solves below multiply (one division per row)
    std::vector<double>& st = ws.start[c];
    for (int i = static_cast<int>(st.size()); i < m; ++i) st.push_back(1.0 + 0.1 * std::sin(1.0 + i * (c + 1.0)));
    std::copy(st.begin(), st.begin() + m, b);  // generic start
    for (int it = 0; it < 3; ++it) {
      for (int i = 0; i + 1 < m; ++i) {
        if (!piv[i]) {
          b[i + 1] -= dl[i] * b[i];
        } else {
          const double t = b[i];
          b[i] = b[i + 1];
          b[i + 1] = t - dl[i] * b[i];
        }
      }
      b[m - 1] *= dd[m - 1];
      if (m >= 2) b[m - 2] = (b[m - 2] - du[m - 2] * b[m - 1]) * dd[m - 2];
      for (int i = m - 3; i >= 0; --i) b[i] = (b[i] - du[i] * b[i + 1] - du2[i] * b[i + 2]) * dd[i];
      for (int p = 0; p < c; ++p) {  // keep the vectors of (nearly) equal eigenvalues apart
        double dot = 0;
        for (int i = 0; i < m; ++i) dot += z[static_cast<size_t>(i) * q + p] * b[i];
        for (int i = 0; i < m; ++i) b[i] -= dot * z[static_cast<size_t>(i) * q + p];
      }
      double nrm = 0;
      for (int i = 0; i < m; ++i) nrm += b[i] * b[i];
      nrm = std::sqrt(nrm);
      if (!(nrm > 0) || !std::isfinite(nrm)) {
        for (int i = 0; i < m; ++i) b[i] = (i == c % m) ? 1.0 : 0.0;
        nrm = 1.0;
      }
      const double inv = 1.0 / nrm;
      for (int i = 0; i < m; ++i) b[i] *= inv;
    }
    for (int i = 0; i < m; ++i) z[static_cast<size_t>(i) * q + c] = b[i];
  }
}

// ---------------------------------------------------------------- banded projected matrix
// Top-q eigenpairs of a symmetric matrix of half-bandwidth w (the block-tridiagonal projection of
// block Lanczos), given in lower band storage: L[d·n + i] = A(i+d, i) for d = 0..w, plus one more
// diagonal (d = w+1, zero on entry) that holds the bulge. Givens rotations reduce the band to
// tridiagonal form (Schwarz's bulge chasing: annihilating a(i,k) in plane (i−1, i) creates one
// entry at (i+w, i−1), chased down w rows at a time; about n²/2 rotations touching O(w) stored
// entries each, against (4/3)n³ for Householder on the dense matrix). The tridiagonal then goes
// through the same bisection + inverse iteration as single-vector Lanczos, and its eigenvectors are
// carried back through the rotations. lam: q values descending; z: n×q row-major; optional
// bisection warm start as in tridiagonal_top_eigenvalues. L is destroyed. Returns false on
// non-finite results.
struct BandWork {
  std::vector<double> d, e, bis, glo, ghi;
  std::vector<int> rot_p;
  std::vector<double> rot_c, rot_s;
  TridiagWork tv;
};
bool band_top_eigen(int n, int w, std::vector<double>& L, int q, double* lam, std::vector<double>& z, BandWork& ws,
                    const double* glo = nullptr, const double* ghi = nullptr, int nguess = 0) {
  // A(i, j) for |i − j| ≤ w + 1, either triangle.
  auto at = [&](int i, int j) -> double& {
    return i >= j ? L[static_cast<size_t>(i - j) * n + j] : L[static_cast<size_t>(j - i) * n + i];
  };
  // Scale by a power of two to max |a_ij| ∈ [0.5, 1) (exact; undone on the eigenvalues): the
  // inverse iteration squares entries, which would underflow for a matrix of norm ~1e-140.
  double amax = 0.0;
  for (double x : L) amax = std::max(amax, std::fabs(x));
  int scale_exp = 0;
  if (amax > 0.0 && std::isfinite(amax)) {
    std::frexp(amax, &scale_exp);
    for (double& x : L) x = std::ldexp(x, -scale_exp);
  }
  ws.rot_p.clear();
  ws.rot_c.clear();
  ws.rot_s.clear();
  // Rotate rows/columns (p, p+1) so that entry (p+1, c0) vanishes. Rows p and p+1 hold entries
  // only in columns [p − w, p + 1 + w] (the band, the bulge being removed at c0 = p − w or inside
  // the band, and the new bulge at p + 1 + w).
  auto annihilate = [&](int p, int c0) {
    const int qq = p + 1;
    const double ap = at(p, c0), aq = at(qq, c0);
    // hypot only where squaring could leave the double range (a libm call per rotation otherwise)
    const double mx = std::max(std::fabs(ap), std::fabs(aq));
    const double r = (mx > 1e-150 && mx < 1e150) ? std::sqrt(ap * ap + aq * aq) : std::hypot(ap, aq);
    if (r == 0.0) return;
    const double c = ap / r, s = aq / r;
    const int lo = std::max(0, p - w), hi = std::min(n - 1, qq + w);
    for (int j = lo; j <= hi; ++j) {
      if (j == p || j == qq) continue;
      double& xp = at(p, j);
      double& xq = at(qq, j);
      const double vp = xp, vq = xq;
      xp = c * vp + s * vq;
      xq = -s * vp + c * vq;
    }
    const double app = at(p, p), apq = at(qq, p), aqq = at(qq, qq);
    at(p, p) = c * c * app + 2.0 * c * s * apq + s * s * aqq;
    at(qq, qq) = s * s * app - 2.0 * c * s * apq + c * c * aqq;
    at(qq, p) = (c * c - s * s) * apq + c * s * (aqq - app);
    at(qq, c0) = 0.0;
    ws.rot_p.push_back(p);
    ws.rot_c.push_back(c);
    ws.rot_s.push_back(s);
  };
  for (int k = 0; k + 2 < n; ++k)
    for (int i = std::min(k + w, n - 1); i >= k + 2; --i) {
      if (at(i, k) == 0.0) continue;
      annihilate(i - 1, k);
      for (int r = i; r + w < n; r += w) {  // chase the bulge at (r + w, r − 1)
        if (at(r + w, r - 1) == 0.0) break;
        annihilate(r + w - 1, r - 1);
      }
    }
  ws.d.assign(L.begin(), L.begin() + n);
  ws.e.assign(n, 0.0);
  if (n > 1) std::copy(L.begin() + n, L.begin() + 2 * static_cast<size_t>(n) - 1, ws.e.begin());
  q = std::min(q, n);
  if (n <= 10) {
    std::vector<double> dd(ws.d), ee(ws.e);
    if (!tridiagonal_ql(n, dd.data(), ee.data(), nullptr)) return false;
    std::sort(dd.begin(), dd.end(), std::greater<double>());
    std::copy(dd.begin(), dd.begin() + q, lam);
  } else {
    ws.glo.resize(nguess);
    ws.ghi.resize(nguess);
    for (int i = 0; i < nguess; ++i) {  // the guesses in the scaled units
      ws.glo[i] = std::ldexp(glo[i], -scale_exp);
      ws.ghi[i] = std::ldexp(ghi[i], -scale_exp);
    }
    tridiagonal_top_eigenvalues(n, ws.d.data(), ws.e.data(), q, lam, ws.bis, ws.glo.data(), ws.ghi.data(), nguess);
  }
  for (int i = 0; i < q; ++i)
    if (!std::isfinite(lam[i])) return false;
  tridiagonal_vectors(n, ws.d.data(), ws.e.data(), lam, q, z, ws.tv);
  // z_A = G_1ᵀ ⋯ G_Nᵀ z_T: the last rotation first.
  for (size_t t = ws.rot_p.size(); t-- > 0;) {
    const int p = ws.rot_p[t];
    const double c = ws.rot_c[t], s = ws.rot_s[t];
    double* zp = z.data() + static_cast<size_t>(p) * q;
    double* zq = zp + q;
    for (int j = 0; j < q; ++j) {
      const double xp = zp[j], xq = zq[j];
      zp[j] = c * xp - s * xq;
      zq[j] = s * xp + c * xq;
    }
  }
  for (double x : z)
    if (!std::isfinite(x)) return false;
  for (int i = 0; i < q; ++i) lam[i] = std::ldexp(lam[i], scale_exp);
  return true;
}

// Bisection warm start for a check: the last check's Ritz values θ_i with residuals r_i. Ritz
// values of a larger space interlace (θ_i can only grow), so [θ_i − slack, θ_i + max(r_i, slack)]
// brackets where the new θ_i is likely to be; the guesses only place the first sweep's points.
// Fills lo/hi and returns how many (≤ q).
int interlacing_guesses(const std::vector<double>& theta, const std::vector<double>& resid, int q, double norm_est,
                        std::vector<double>& lo, std::vector<double>& hi) {
  const int ng = std::min<int>(q, static_cast<int>(theta.size()));
  lo.resize(ng);
  hi.resize(ng);
  const double slack = 4.0 * DBL_EPSILON * norm_est;
  for (int i = 0; i < ng; ++i) {
    lo[i] = theta[i] - slack;
    hi[i] = theta[i] + std::max(resid[i], slack);
  }
  return ng;
}

// Steps until a process's next convergence check, from the readiness measure (stop_progress) at
// this check (step m) and the last one (step last_m; ≤ 0: none yet, use first_gap): its geometric
// decay between the two predicts the remaining distance. 3/4 of that distance while it is long
// (the rate is a two-point estimate); the whole of it once it is at most `whole_below` steps:
// Lanczos residuals fall faster than geometrically near convergence, and at that point every
// extra check (bisection + inverse iteration) costs more than the step it might save on small
// problems.
int check_gap(double progress, double last_progress, int m, int last_m, int first_gap, double whole_below,
              int max_gap) {
  if (last_m <= 0 || !(progress < last_progress)) return first_gap;
  const double rate = std::log(progress / last_progress) / (m - last_m);
  const double more = std::log(1.0 / progress) / rate;
  return std::clamp(more <= whole_below ? static_cast<int>(std::ceil(more)) : static_cast<int>(0.75 * more), 1, max_gap);
}

// One classical Gram–Schmidt pass: w −= Σ_{i∈[i0,i1)} (v_iᵀw) v_i over the basis vectors at V
// (stride s). The pass's coefficients go to c[i0..i1) and are added to coef[i0..i1). Dots in
// groups of four from i0, each dot whole (one thread per group when the pass is large and
// threads > 1); the update sweeps w once per four basis vectors (the one-at-a-time loop was bound
// by its stores), in blocks of the vector length, each element through the same operations in
// the same order: results do not depend on the thread count.
void cgs_pass(const double* V, int64_t s, int i0, int i1, double* w, double* c, double* coef, int threads) {
  if (i1 <= i0) return;
  const bool par = threads > 1 && static_cast<int64_t>(i1 - i0) * s >= kParallelPassWork;
  const int64_t groups = (i1 - i0 + 3) / 4;
  for_each_index(0, groups, par, threads, [&](int64_t g) {
    const int64_t i = i0 + 4 * g;
    if (i + 4 <= i1) {
      const double* v = V + i * s;
      lanczos_dot4(v, v + s, v + 2 * s, v + 3 * s, w, s, c + i);
    } else {
      for (int64_t t = i; t < i1; ++t) c[t] = lanczos_dot(V + t * s, w, s);
    }
  });
  const int64_t block = 2048;
  const int64_t nblocks = (s + block - 1) / block;
  for_each_index(0, nblocks, par, threads, [&](int64_t b) {
    const int64_t lo = b * block, hi = std::min(s, lo + block);
    int i = i0;
    for (; i + 4 <= i1; i += 4) {
      const double c0 = c[i], c1 = c[i + 1], c2 = c[i + 2], c3 = c[i + 3];
      const double* v0 = V + static_cast<int64_t>(i) * s;
      const double *v1 = v0 + s, *v2 = v1 + s, *v3 = v2 + s;
      for (int64_t x = lo; x < hi; ++x) {
        double t = w[x];
        t -= c0 * v0[x];
        t -= c1 * v1[x];
        t -= c2 * v2[x];
        t -= c3 * v3[x];
        w[x] = t;
      }
    }
    for (; i < i1; ++i) {
      const double ci = c[i];
      const double* vi = V + static_cast<int64_t>(i) * s;
      for (int64_t x = lo; x < hi; ++x) w[x] -= ci * vi[x];
    }
  });
  for (int i = i0; i < i1; ++i) coef[i] += c[i];
}

// Orthogonalise w against the n basis vectors at V: one pass against [lo_local, n) first (the
// newest vectors carry the recurrence's large coefficients), then full passes until one keeps
// ≥ 1/√2 of the norm ("twice is enough": such a pass leaves w orthogonal to working precision).
// The coefficients are ADDED to coef[0..n); c is scratch of n.
void cgs_orthogonalize(const double* V, int64_t s, int n, int lo_local, double* w, double* coef, double* c,
                       int threads) {
  cgs_pass(V, s, lo_local, n, w, c, coef, threads);
  double before = std::sqrt(lanczos_dot(w, w, s));
  for (int pass = 0; pass < 3; ++pass) {
    cgs_pass(V, s, 0, n, w, c, coef, threads);
    const double after = std::sqrt(lanczos_dot(w, w, s));
    if (after >= 0.7071 * before) break;
    before = after;
  }
}

// The readiness rule of a Lanczos process (see Run::stop_progress); shared by both process kinds.
double stop_progress(const std::vector<double>& theta_, const std::vector<double>& resid_, int need, int m,
                   double th1, const SolveOptions& opt_) {
  const int q = std::min(need + 1, m);
  const double floor_abs = 16.0 * DBL_EPSILON * th1, sig1 = std::sqrt(th1);
  double progress = 0.0;
  int c0 = 0;
  while (c0 < q && c0 < need) {
    int c1 = c0 + 1;
    while (c1 < q && theta_[c1 - 1] - theta_[c1] <= resid_[c1 - 1] + resid_[c1] + floor_abs) ++c1;
    double gap = -1.0;
    if (c1 < q) {
      gap = theta_[c1 - 1] - theta_[c1] - resid_[c1];
      if (c0 > 0) gap = std::min(gap, theta_[c0 - 1] - theta_[c0] - resid_[c0 - 1]);
    }
    double R2 = 0.0;
    for (int i = c0; i < c1; ++i) R2 += resid_[i] * resid_[i];
    for (int i = c0; i < c1 && i < need; ++i) {
      const double t = std::max(theta_[i], 0.0), sc = std::max(theta_[i], 1e-8 * th1);
      // A tol tighter than the default tightens this rule with it (tol asks for more accuracy).
      const double T = sigma_target(std::sqrt(t), sig1, opt_.tol) * std::min(1.0, opt_.tol / 1e-5);
      const double e = 0.5 * T * (T + std::sqrt(t));
      double rstar = opt_.tol * sc;  // the residual rule
      if (gap > 0 && c1 - c0 == 1) rstar = std::max(rstar, std::sqrt(e * gap));
      if (c1 - c0 > 1 && std::sqrt(R2) <= e) rstar = std::max(rstar, std::sqrt(R2));  // Weyl bound suffices
      progress = std::max(progress, rstar > 0 ? resid_[i] / rstar : (resid_[i] > 0 ? HUGE_VAL : 0.0));
    }
    c0 = c1;
  }
  return progress;
}


// ---------------------------------------------------------------- one Lanczos process
class Run {
 public:
  enum Status { Running, Converged, Exhausted };

  Run(int64_t s, const SolveOptions& opt, int run_index, int threads)
      : opt_(opt), s_(s), threads_(threads) {
    const int64_t kk = std::min<int64_t>(opt.k, s_);
    const int64_t mb = opt.max_basis > 0 ? opt.max_basis : std::max<int64_t>(3 * kk + 60, 240);
    mb_ = static_cast<int>(std::min<int64_t>(mb, s_));
    V_.reserve(static_cast<size_t>(s_) * std::min(mb_ + 1, 64));
    V_.resize(s_);
    w_.assign(s_, 0.0);
    h_.assign(mb_ + 1, 0.0);
    h2_.assign(mb_ + 1, 0.0);
    alpha_.assign(mb_ + 1, 0.0);
    beta_.assign(mb_ + 1, 0.0);
    rng_ = start_stream(opt_.seed, run_index);
    random_unit(V_.data(), 0);
  }

  Status status() const { return status_; }
  const double* v() const { return V_.data() + static_cast<int64_t>(j_) * s_; }
  double* w() { return w_.data(); }
  int64_t restarts() const { return restarts_; }
  int applied() const { return j_ + 1; }
  int64_t dim() const { return s_; }
  const std::vector<double>& theta() const { return theta_; }  // top Ritz values at the last check
  const std::vector<double>& resid() const { return resid_; }
  double worst() const { return worst_; }

  // Absorbs w = G v (already written into w()), then checks convergence when due and advances.
  Status step() {
    double* w = w_.data();
    orthogonalize(nb_, w);
    bj_ = std::sqrt(lanczos_dot(w, w, s_));
    const int j = j_;
    if (!restarted_) {
      alpha_[j] = h_[j];
    } else {
      for (int i = 0; i <= j; ++i) H_[i * (mb_ + 1) + j] = H_[j * (mb_ + 1) + i] = h_[i];
    }
    norm_est_ = std::max(norm_est_, std::fabs(h_[j]) + bj_);
    const int m = j + 1;
    // Rounding-level remainder: the Krylov space is invariant. Continue with a fresh random
    // direction (coupling ≤ 1e-15·‖G‖ dropped), so repeated and unreached eigenvalues are found.
    breakdown_ = bj_ <= 1e-15 * norm_est_;
    if (breakdown_) bj_ = 0.0;
    beta_[j] = bj_;
    const bool exhausted = nb_ == s_;
    const bool full = nb_ == mb_;
    const int need = static_cast<int>(std::min<int64_t>(opt_.k, s_));
    // No Lanczos run certifies a top-k before ~12 steps on a real layer; earlier checks only cost.
    const int min_m = static_cast<int>(std::min<int64_t>(s_, std::max(need + 3, 12)));
    // Convergence checks cost O(m²) (QL on T); predict when the residual reaches tol from its
    // geometric decay between the last two checks and check a bit before that.
    if (exhausted || ((m >= min_m) && (m >= next_check_ || full))) {
      compute_ritz(m, need);
      const double th1 = std::max(theta_[0], 0.0);
      worst_ = 0.0;
      for (int i = 0; i < need && i < m; ++i) {
        const double sc = std::max(theta_[i], 1e-8 * th1);
        worst_ = std::max(worst_, sc > 0 ? resid_[i] / sc : 0.0);
      }
      // progress ≤ 1: this run is ready for certify() (which alone decides; see stop_progress).
      const double progress = stop_progress(need, m, th1);
      if (exhausted) {
        status_ = Exhausted;
        return status_;
      }
      if (progress <= 1.0) {
        status_ = Converged;
        return status_;
      }
      const int gap = restarted_ ? 5 : check_gap(progress, last_worst_, m, last_check_m_, 3, 6.0, 16);
      last_check_m_ = m;
      last_worst_ = progress;
      next_check_ = m + gap;
    }
    advance();
    return status_;
  }

  // When is this run worth certifying? Each of the top `need` Ritz pairs must either have a
  // relative residual ≤ tol (ARPACK's rule) or an error bound, estimated from this run alone
  // exactly as certify() bounds the union (clusters of overlapping residual intervals,
  // min(R, R²/gap) with the gap to the neighbours' intervals), that already meets half the
  // contract target. Returns max_i r_i / r*_i, where r*_i is the largest residual meeting either
  // rule: ≤ 1 means ready (T is scaled by tol/1e-5 when tol < 1e-5). The eigenvalue error e that gives a σ error ≤ T is taken as
  // ½T(T+σ_i) (then dsig = e/(√(θ+e)+√(θ−e)) ≤ 0.71·T), and R²/gap ≤ e needs R ≤ √(e·gap).
  // This only schedules certify(): certification, agreement and bounds are computed there on the
  // union, and a run whose estimate was optimistic is resumed. Stopping on the bound instead of
  // the residual alone saves the steps that push r from √(e·gap) down to tol·θ (typically 10×).
  double stop_progress(int need, int m, double th1) const {
    return fspai::stop_progress(theta_, resid_, need, m, th1, opt_);
  }

  // Continue a converged run for at least `extra` more steps before its next check.
  void resume(int extra) {
    if (status_ != Converged) return;
    status_ = Running;
    next_check_ = applied() + std::max(extra, 1);
    advance();
  }

  // Top-q Ritz vectors of the current basis, their values and their images under G
  // (G y = θ y + b·u with u the normalised remainder): Y and GY are q×s row-major.
  void ritz_vectors(int q, std::vector<double>& theta, std::vector<double>& Y, std::vector<double>& GY) const {
    const int m = applied();
    std::vector<double> w, z;
    int zc = m;  // columns of z
    q = std::min(q, m);
    bool done = false;
    if (!restarted_ && zq_m_ == m && zq_q_ >= q) {
      // The last check (at this very m: a run is certified only right after one) already holds
      // the top Ritz values of T and their eigenvectors.
      w.assign(theta_.begin(), theta_.begin() + q);
      z = zq_;
      zc = zq_q_;
      done = true;
    } else if (!restarted_) {
      TridiagWork ws;
      std::vector<double> bw;
      w.resize(q);
      if (top_tridiagonal(m, q, w.data(), bw, nullptr, nullptr, 0)) {
        tridiagonal_vectors(m, alpha_.data(), beta_.data(), w.data(), q, z, ws);
        zc = q;
        done = all_finite(z);
      }
    }
    if (!done) {
      std::vector<double> a = projected(m);
      small_eigen(m, a, false, w, z);
      zc = m;
    }
    theta.assign(w.begin(), w.begin() + q);
    Y.assign(static_cast<size_t>(q) * s_, 0.0);
    GY.assign(static_cast<size_t>(q) * s_, 0.0);
    for (int i = 0; i < q; ++i) {
      double* y = Y.data() + static_cast<int64_t>(i) * s_;
      for (int jj = 0; jj < m; ++jj) {
        const double c = z[static_cast<size_t>(jj) * zc + i];
        const double* vj = V_.data() + static_cast<int64_t>(jj) * s_;
        for (int64_t x = 0; x < s_; ++x) y[x] += c * vj[x];
      }
      double* gy = GY.data() + static_cast<int64_t>(i) * s_;
      const double b = bj_ * z[static_cast<size_t>(m - 1) * zc + i];
      for (int64_t x = 0; x < s_; ++x) gy[x] = w[i] * y[x];
      if (bj_ > 0) {
        const double f = b / bj_;
        for (int64_t x = 0; x < s_; ++x) gy[x] += f * w_[x];
      }
    }
  }

 private:
  void random_unit(double* v, int nb) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      for (int64_t i = 0; i < s_; ++i) v[i] = uniform_pm1(rng_);
      if (nb > 0) orthogonalize(nb, v);
      const double nrm = std::sqrt(lanczos_dot(v, v, s_));
      if (nrm > 1e-8) {
        for (int64_t i = 0; i < s_; ++i) v[i] /= nrm;
        return;
      }
    }
    throw std::runtime_error("Lanczos: could not draw a start vector orthogonal to the basis");
  }

  // Append the next basis vector (or thick-restart when the basis is full).
  void advance() {
    const int m = applied();
    if (nb_ == mb_) {
      if (restarts_ >= opt_.max_restarts)
        throw std::runtime_error("Lanczos did not converge: relative residual " + std::to_string(worst_) +
                                 " > tol " + std::to_string(opt_.tol) + " after " + std::to_string(restarts_) +
                                 " restarts (basis " + std::to_string(mb_) + "); raise max_basis or tol");
      thick_restart(m);
      ++restarts_;
      nb_ = keep_ + 1;
      j_ = keep_;
      return;
    }
    V_.resize(static_cast<size_t>(nb_ + 1) * s_);
    double* vn = V_.data() + static_cast<int64_t>(nb_) * s_;
    if (breakdown_) {
      random_unit(vn, nb_);
    } else {
      const double inv = 1.0 / bj_;
      for (int64_t i = 0; i < s_; ++i) vn[i] = w_[i] * inv;
    }
    ++nb_;
    ++j_;
  }

  // Orthogonalise w against the basis (cgs_orthogonalize; local pass over the newest two
  // vectors); h_ receives the total coefficients.
  void orthogonalize(int nb, double* w) {
    std::fill(h_.begin(), h_.begin() + nb, 0.0);
    cgs_orthogonalize(V_.data(), s_, nb, std::max(0, nb - 2), w, h_.data(), h2_.data(), threads_);
  }

  std::vector<double> projected(int m) const {
    std::vector<double> a(static_cast<size_t>(m) * m, 0.0);
    if (restarted_) {
      for (int i = 0; i < m; ++i)
        for (int jj = 0; jj < m; ++jj) a[static_cast<size_t>(i) * m + jj] = H_[i * (mb_ + 1) + jj];
    } else {
      for (int i = 0; i < m; ++i) {
        a[static_cast<size_t>(i) * m + i] = alpha_[i];
        if (i + 1 < m) a[static_cast<size_t>(i) * m + i + 1] = a[static_cast<size_t>(i + 1) * m + i] = beta_[i];
      }
    }
    return a;
  }

  static bool all_finite(const std::vector<double>& v) {
    for (double x : v)
      if (!std::isfinite(x)) return false;
    return true;
  }

  // Top-q eigenvalues (descending) of the Lanczos tridiagonal T_m (alpha_, beta_). Bisection
  // (Sturm counts) costs O(m·q) per sweep against O(m²) for QL on all of T; up to m = 10 QL is
  // cheaper. Returns false on non-finite results.
  bool top_tridiagonal(int m, int q, double* lam, std::vector<double>& work, const double* glo, const double* ghi,
                       int nguess) const {
    if (m <= 10) {
      work.assign(alpha_.begin(), alpha_.begin() + m);
      work.resize(2 * static_cast<size_t>(m));
      double* d = work.data();
      double* e = d + m;
      for (int i = 0; i < m; ++i) e[i] = i + 1 < m ? beta_[i] : 0.0;
      if (!tridiagonal_ql(m, d, e, nullptr)) return false;
      std::sort(d, d + m, std::greater<double>());
      std::copy(d, d + q, lam);
    } else {
      tridiagonal_top_eigenvalues(m, alpha_.data(), beta_.data(), q, lam, work, glo, ghi, nguess);
    }
    for (int i = 0; i < q; ++i)
      if (!std::isfinite(lam[i])) return false;
    return true;
  }

  // Top q = need+1 Ritz values (descending) and residual norms |β_m · z_{m,i}| (the only ones
  // step(), stop_progress() and certify() read). Not restarted: eigenvalues of T by bisection,
  // warm-started from the previous check (Cauchy interlacing: θ_i can only grow with m; the
  // guesses only place the first sweep's points), their eigenvectors by inverse iteration,
  // cached for ritz_vectors(). Restarted: Jacobi on the dense projected matrix.
  void compute_ritz(int m, int need) {
    const int q = std::min(need + 1, m);
    zq_m_ = -1;
    if (!restarted_) {
      const int ng = interlacing_guesses(theta_, resid_, q, norm_est_, guess_lo_, guess_hi_);
      lam_.resize(q);
      if (top_tridiagonal(m, q, lam_.data(), bis_work_, guess_lo_.data(), guess_hi_.data(), ng)) {
        tridiagonal_vectors(m, alpha_.data(), beta_.data(), lam_.data(), q, zq_, tv_work_);
        if (all_finite(zq_)) {
          theta_.assign(lam_.begin(), lam_.end());
          resid_.resize(q);
          for (int i = 0; i < q; ++i) resid_[i] = std::fabs(bj_ * zq_[static_cast<size_t>(m - 1) * q + i]);
          zq_m_ = m;
          zq_q_ = q;
          return;
        }
      }
    }
    theta_.clear();
    resid_.clear();
    if (!restarted_) {
      std::vector<double> d(alpha_.begin(), alpha_.begin() + m), e(m, 0.0), z(m, 0.0);
      for (int i = 0; i + 1 < m; ++i) e[i] = beta_[i];
      z[m - 1] = 1.0;
      if (tridiagonal_ql(m, d.data(), e.data(), z.data())) {
        std::vector<int> ord(m);
        std::iota(ord.begin(), ord.end(), 0);
        std::stable_sort(ord.begin(), ord.end(), [&](int a, int b) { return d[a] > d[b]; });
        for (int i : ord) {
          theta_.push_back(d[i]);
          resid_.push_back(std::fabs(bj_ * z[i]));
        }
        return;
      }
    }
    std::vector<double> a = projected(m), w, v;
    symmetric_eigen_jacobi(m, a.data(), w, v);
    theta_ = w;
    for (int i = 0; i < m; ++i) resid_.push_back(std::fabs(bj_ * v[static_cast<size_t>(m - 1) * m + i]));
  }

  // Keep the top `keep_` Ritz vectors plus the residual direction (Wu–Simon thick restart).
  void thick_restart(int m) {
    std::vector<double> a = projected(m), theta, Y;
    symmetric_eigen_jacobi(m, a.data(), theta, Y);
    keep_ = static_cast<int>(std::min<int64_t>(m - 2, std::max<int64_t>(opt_.k + 2, m / 2)));
    keep_ = std::max(keep_, 1);
    std::vector<double> Vn(static_cast<size_t>(s_) * keep_, 0.0);
    for (int64_t i = 0; i < keep_; ++i) {
      double* dst = Vn.data() + i * s_;
      for (int jj = 0; jj < m; ++jj) {
        const double y = Y[static_cast<size_t>(jj) * m + i];
        const double* src = V_.data() + static_cast<int64_t>(jj) * s_;
        for (int64_t x = 0; x < s_; ++x) dst[x] += y * src[x];
      }
    }
    std::copy(Vn.begin(), Vn.end(), V_.begin());
    V_.resize(static_cast<size_t>(keep_ + 1) * s_);
    double* vr = V_.data() + static_cast<int64_t>(keep_) * s_;
    if (breakdown_) {
      random_unit(vr, keep_);
    } else {
      for (int64_t x = 0; x < s_; ++x) vr[x] = w_[x] / bj_;
    }
    H_.assign(static_cast<size_t>(mb_ + 1) * (mb_ + 1), 0.0);
    for (int64_t i = 0; i < keep_; ++i) {
      H_[i * (mb_ + 1) + i] = theta[i];
      const double b = bj_ * Y[static_cast<size_t>(m - 1) * m + i];
      H_[i * (mb_ + 1) + keep_] = H_[keep_ * (mb_ + 1) + i] = b;
    }
    restarted_ = true;
  }

  SolveOptions opt_;
  int64_t s_;
  int threads_;
  int mb_ = 0;
  int nb_ = 1, j_ = 0, next_check_ = 0, last_check_m_ = 0, keep_ = 0;
  double last_worst_ = 0.0, worst_ = 0.0, bj_ = 0.0;
  int64_t restarts_ = 0;
  double norm_est_ = 0.0;
  bool restarted_ = false, breakdown_ = false;
  Status status_ = Running;
  uint64_t rng_ = 0;
  std::vector<double> V_, w_, h_, h2_, alpha_, beta_, H_, theta_, resid_;
  // compute_ritz(): eigenvectors of T for theta_ (m × zq_q_, valid while zq_m_ == applied()) and
  // scratch reused across checks.
  std::vector<double> zq_, lam_, bis_work_, guess_lo_, guess_hi_;
  TridiagWork tv_work_;
  int zq_m_ = -1, zq_q_ = 0;
};

// ---------------------------------------------------------------- one block Lanczos process
// The b random starts of a problem as ONE block Krylov process: X_0 = the b start vectors
// (orthonormalised), W = G X_j orthogonalised against the whole basis (CGS2, column by column),
// W = X_{j+1} B_j (Gram–Schmidt within the block). The projection of G on the basis is
// block-tridiagonal with diagonal blocks A_j = X_jᵀ G X_j and couplings B_j: a band of
// half-width b (band_top_eigen). Its space after j steps is K_j(v_1) + … + K_j(v_b), the union of
// what b independent runs would have explored with the same mat-vecs, so its Ritz values converge
// at least as fast as every single run's, and an eigenvector is missed only if EVERY start is
// deficient along it (the same ~δ^b as independent runs that must agree; see the header). No
// thick restart: a process that fills its basis (or reaches the end of the space with less than
// a block left) reports Full and the driver solves the problem with independent restarted runs.
class BlockRun {
 public:
  enum Status { Running, Converged, Exhausted, Full };

  BlockRun(int64_t s, const SolveOptions& opt, int b, int threads) : opt_(opt), s_(s), b_(b), threads_(threads) {
    const int64_t kk = std::min<int64_t>(opt.k, s_);
    const int64_t mb = opt.max_basis > 0 ? opt.max_basis : std::max<int64_t>(3 * kk + 60, 240);
    mb_ = static_cast<int>(std::min<int64_t>(mb, s_));
    V_.reserve(static_cast<size_t>(s_) * std::min(mb_ + b_, 80));
    V_.assign(static_cast<size_t>(s_) * b_, 0.0);
    W_.assign(static_cast<size_t>(s_) * b_, 0.0);
    Xn_.assign(static_cast<size_t>(s_) * b_, 0.0);
    h_.assign(static_cast<size_t>(b_) * (mb_ + b_), 0.0);
    // The same start vectors as the independent runs (start_stream).
    for (int t = 0; t < b_; ++t) {
      uint64_t rng = start_stream(opt_.seed, t);
      double* x = V_.data() + static_cast<int64_t>(t) * s_;
      for (int64_t i = 0; i < s_; ++i) x[i] = uniform_pm1(rng);
    }
    rng_ = opt_.seed * 0x2545F4914F6CDD1DULL + 0x51ED27A1ULL;
    // Orthonormalise the starts (a dependent one is replaced by a fresh direction).
    for (int t = 0; t < b_; ++t) {
      double* x = V_.data() + static_cast<int64_t>(t) * s_;
      orth_against(x, V_.data(), t);
      const double nrm = std::sqrt(lanczos_dot(x, x, s_));
      if (!(nrm > 1e-8)) {
        random_direction(x, 0, V_.data(), t);
      } else {
        for (int64_t i = 0; i < s_; ++i) x[i] /= nrm;
      }
    }
    nb_ = b_;
  }

  Status status() const { return status_; }
  int width() const { return b_; }
  const double* v(int t) const { return V_.data() + static_cast<int64_t>(nb_ - b_ + t) * s_; }
  double* w(int t) { return W_.data() + static_cast<int64_t>(t) * s_; }
  int applied() const { return nb_; }  // basis vectors whose images are known after step()
  int64_t dim() const { return s_; }
  int64_t restarts() const { return 0; }
  const std::vector<double>& theta() const { return theta_; }
  const std::vector<double>& resid() const { return resid_; }

  // Absorbs W = G X_j (written into w(0..b)), checks convergence when due, and advances.
  Status step(bool parallel) {
    const int n = nb_, j0 = n - b_;
    // 1. Every column against the whole basis, two columns at a time (each basis vector read once
    //    for both; the pairing depends only on b), pairs in parallel when large.
    const int pairs = (b_ + 1) / 2;
    for_each_index(0, pairs, parallel, threads_, [&](int64_t pr) {
      const int t = static_cast<int>(2 * pr);
      double* h0 = h_.data() + static_cast<size_t>(t) * (mb_ + b_);
      if (t + 1 < b_)
        orthogonalize2(n, W_.data() + static_cast<int64_t>(t) * s_, W_.data() + static_cast<int64_t>(t + 1) * s_, h0,
                       h0 + (mb_ + b_));
      else
        orthogonalize(n, W_.data() + static_cast<int64_t>(t) * s_, h0);
    });
    std::vector<double> A(static_cast<size_t>(b_) * b_), B(static_cast<size_t>(b_) * b_, 0.0);
    // 2. W = X_{j+1} B_j within the block; a column that vanishes (invariant subspace or rank
    //    deficiency) continues with a fresh random direction and no coupling, as a single run does.
    //    A column that loses most of its norm to the block's earlier columns (nearly dependent
    //    images: a dominant σ1) is orthogonalised against the basis and those columns again, until
    //    a round keeps ≥ 1/√2 of its norm: normalising the small remainder would otherwise
    //    magnify its rounding-level components along the basis.
    const bool exhausted = n >= s_;  // the basis spans the space: Ritz values are exact
    bool no_room = false;             // less than a block of the space is left
    auto block_A = [&]() {
      for (int r = 0; r < b_; ++r)
        for (int t = 0; t < b_; ++t)
          A[r * b_ + t] = 0.5 * (h_[static_cast<size_t>(t) * (mb_ + b_) + j0 + r] +
                                 h_[static_cast<size_t>(r) * (mb_ + b_) + j0 + t]);
    };
    block_A();
    double arow = 0.0;  // ‖A_j‖_∞: with the coupling norms, the scale of G seen so far
    for (int r = 0; r < b_; ++r) {
      double row = 0.0;
      for (int t = 0; t < b_; ++t) row += std::fabs(A[r * b_ + t]);
      arow = std::max(arow, row);
    }
    std::vector<double> round_c;  // scratch of the extra rounds
    for (int t = 0; t < b_ && !exhausted; ++t) {
      double* wt = W_.data() + static_cast<int64_t>(t) * s_;
      double* ht = h_.data() + static_cast<size_t>(t) * (mb_ + b_);
      double before = std::sqrt(lanczos_dot(wt, wt, s_)), nrm = before;
      for (int round = 0; round < 4 && t > 0; ++round) {
        for (int pass = 0; pass < 2; ++pass)
          for (int r = 0; r < t; ++r) {
            const double* xr = Xn_.data() + static_cast<int64_t>(r) * s_;
            const double c = lanczos_dot(xr, wt, s_);
            for (int64_t i = 0; i < s_; ++i) wt[i] -= c * xr[i];
            B[r * b_ + t] += c;
          }
        nrm = std::sqrt(lanczos_dot(wt, wt, s_));
        if (nrm >= 0.7071 * before) break;
        round_c.resize(n);
        cgs_orthogonalize(V_.data(), s_, n, std::max(0, n - 2 * b_), wt, ht, round_c.data(), 1);  // adds to ht
        before = std::sqrt(lanczos_dot(wt, wt, s_));
        nrm = before;
      }
      norm_est_ = std::max(norm_est_, arow + nrm);
      double* xt = Xn_.data() + static_cast<int64_t>(t) * s_;
      if (nrm <= 1e-15 * norm_est_) {
        B[t * b_ + t] = 0.0;  // the remainder is dropped; couplings to the block's earlier columns are real
        if (n + t >= s_) {
          no_room = true;
          break;
        }
        random_direction(xt, n, Xn_.data(), t);
      } else {
        B[t * b_ + t] = nrm;
        for (int64_t i = 0; i < s_; ++i) xt[i] = wt[i] / nrm;
      }
    }
    block_A();  // with any coefficients the extra rounds added
    A_.insert(A_.end(), A.begin(), A.end());
    Bj_ = B;
    const int need = static_cast<int>(std::min<int64_t>(opt_.k, s_));
    const int steps = n / b_;
    // No certificate before ~16 basis vectors on a real layer (about 0.7× the vectors of one
    // independent run's first check, ×b); earlier checks only cost.
    const int min_steps = std::max(3, (std::max(need + 3, 16) + b_ - 1) / b_);
    const bool full = !exhausted && (no_room || n + b_ > std::min<int64_t>(mb_, s_));
    if (exhausted || full || (steps >= min_steps && steps >= next_check_)) {
      compute_ritz(n, need);
      const double th1 = theta_.empty() ? 0.0 : std::max(theta_[0], 0.0);
      const double progress = stop_progress(theta_, resid_, need, n, th1, opt_);
      if (exhausted) return status_ = Exhausted;
      if (progress <= 1.0) return status_ = Converged;
      if (full) return status_ = Full;
      const int gap = check_gap(progress, last_progress_, steps, last_check_, 2, 5.0, 12);
      last_check_ = steps;
      last_progress_ = progress;
      next_check_ = steps + gap;
    }
    advance();
    return status_;
  }

  // Continue a converged process for at least `extra` more block steps before its next check.
  void resume(int extra) {
    if (status_ != Converged) return;
    status_ = Running;
    next_check_ = nb_ / b_ + std::max(extra, 1);
    if (nb_ + b_ > std::min<int64_t>(mb_, s_)) {
      status_ = Full;
      return;
    }
    advance();
  }

  // Top-q Ritz vectors of the basis, their values and images: G y = θ y + X_{j+1} B_j z_last.
  void ritz_vectors(int q, std::vector<double>& theta, std::vector<double>& Y, std::vector<double>& GY) {
    const int n = nb_;
    q = std::min(q, n);
    if (zq_n_ != n || zq_q_ < q) compute_ritz(n, q - 1);
    theta.assign(theta_.begin(), theta_.begin() + q);
    const int zc = zq_q_;
    Y.assign(static_cast<size_t>(q) * s_, 0.0);
    GY.assign(static_cast<size_t>(q) * s_, 0.0);
    const int j0 = n - b_;
    for (int i = 0; i < q; ++i) {
      double* y = Y.data() + static_cast<int64_t>(i) * s_;
      for (int jj = 0; jj < n; ++jj) {
        const double c = zq_[static_cast<size_t>(jj) * zc + i];
        const double* vj = V_.data() + static_cast<int64_t>(jj) * s_;
        for (int64_t x = 0; x < s_; ++x) y[x] += c * vj[x];
      }
      double* gy = GY.data() + static_cast<int64_t>(i) * s_;
      for (int64_t x = 0; x < s_; ++x) gy[x] = theta[i] * y[x];
      for (int r = 0; r < b_; ++r) {  // coefficient of next-block column r: (B_j z_last)_r
        double f = 0.0;
        for (int t = 0; t < b_; ++t) f += Bj_[r * b_ + t] * zq_[static_cast<size_t>(j0 + t) * zc + i];
        if (f == 0.0) continue;
        const double* xr = Xn_.data() + static_cast<int64_t>(r) * s_;
        for (int64_t x = 0; x < s_; ++x) gy[x] += f * xr[x];
      }
    }
  }

 private:
  // w ← w − Σ_i (v_iᵀw) v_i over the n basis vectors (cgs_orthogonalize; local pass over the
  // last two blocks, which carry the large A_j, B_{j−1} components); coef[0..n) receives the total
  // coefficients.
  void orthogonalize(int n, double* w, double* coef) const {
    std::fill(coef, coef + n, 0.0);
    std::vector<double> c(n);
    cgs_orthogonalize(V_.data(), s_, n, std::max(0, n - 2 * b_), w, coef, c.data(), 1);
  }

  // orthogonalize() for two columns at once: the same passes, each basis vector read once for
  // both; repeated while either column loses more than 1 − 1/√2 of its norm.
  void orthogonalize2(int n, double* w0, double* w1, double* coef0, double* coef1) const {
    std::fill(coef0, coef0 + n, 0.0);
    std::fill(coef1, coef1 + n, 0.0);
    std::vector<double> c0(n), c1(n);
    cgs_pass2(std::max(0, n - 2 * b_), n, w0, w1, c0.data(), c1.data(), coef0, coef1);
    double b0 = std::sqrt(lanczos_dot(w0, w0, s_)), b1 = std::sqrt(lanczos_dot(w1, w1, s_));
    for (int pass = 0; pass < 3; ++pass) {
      cgs_pass2(0, n, w0, w1, c0.data(), c1.data(), coef0, coef1);
      const double a0 = std::sqrt(lanczos_dot(w0, w0, s_)), a1 = std::sqrt(lanczos_dot(w1, w1, s_));
      if (a0 >= 0.7071 * b0 && a1 >= 0.7071 * b1) break;
      b0 = a0;
      b1 = a1;
    }
  }

  void cgs_pass2(int i0, int i1, double* w0, double* w1, double* c0, double* c1, double* coef0,
                 double* coef1) const {
    int i = i0;
    for (; i + 4 <= i1; i += 4) {
      const double* v0 = V_.data() + static_cast<int64_t>(i) * s_;
      const double *v1 = v0 + s_, *v2 = v1 + s_, *v3 = v2 + s_;
      double a0 = 0, a1 = 0, a2 = 0, a3 = 0, e0 = 0, e1 = 0, e2 = 0, e3 = 0;
#ifdef FSPAI_OPENMP
#pragma omp simd reduction(+ : a0, a1, a2, a3, e0, e1, e2, e3)
#endif
      for (int64_t x = 0; x < s_; ++x) {
        const double p = w0[x], q = w1[x];
        a0 += v0[x] * p;
        a1 += v1[x] * p;
        a2 += v2[x] * p;
        a3 += v3[x] * p;
        e0 += v0[x] * q;
        e1 += v1[x] * q;
        e2 += v2[x] * q;
        e3 += v3[x] * q;
      }
      c0[i] = a0, c0[i + 1] = a1, c0[i + 2] = a2, c0[i + 3] = a3;
      c1[i] = e0, c1[i + 1] = e1, c1[i + 2] = e2, c1[i + 3] = e3;
    }
    for (; i < i1; ++i) {
      c0[i] = lanczos_dot(V_.data() + static_cast<int64_t>(i) * s_, w0, s_);
      c1[i] = lanczos_dot(V_.data() + static_cast<int64_t>(i) * s_, w1, s_);
    }
    i = i0;
    for (; i + 4 <= i1; i += 4) {
      const double p0 = c0[i], p1 = c0[i + 1], p2 = c0[i + 2], p3 = c0[i + 3];
      const double q0 = c1[i], q1 = c1[i + 1], q2 = c1[i + 2], q3 = c1[i + 3];
      const double* v0 = V_.data() + static_cast<int64_t>(i) * s_;
      const double *v1 = v0 + s_, *v2 = v1 + s_, *v3 = v2 + s_;
      for (int64_t x = 0; x < s_; ++x) {
        const double y0 = v0[x], y1 = v1[x], y2 = v2[x], y3 = v3[x];
        w0[x] = (((w0[x] - p0 * y0) - p1 * y1) - p2 * y2) - p3 * y3;
        w1[x] = (((w1[x] - q0 * y0) - q1 * y1) - q2 * y2) - q3 * y3;
      }
    }
    for (; i < i1; ++i) {
      const double* vi = V_.data() + static_cast<int64_t>(i) * s_;
      for (int64_t x = 0; x < s_; ++x) {
        w0[x] -= c0[i] * vi[x];
        w1[x] -= c1[i] * vi[x];
      }
    }
    for (int t = i0; t < i1; ++t) {
      coef0[t] += c0[t];
      coef1[t] += c1[t];
    }
  }

  // v −= Σ_r (x_rᵀv) x_r over `count` vectors at `vecs` (stride s), two passes.
  void orth_against(double* v, const double* vecs, int count) const {
    for (int pass = 0; pass < 2; ++pass)
      for (int r = 0; r < count; ++r) {
        const double* x = vecs + static_cast<int64_t>(r) * s_;
        const double c = lanczos_dot(x, v, s_);
        for (int64_t i = 0; i < s_; ++i) v[i] -= c * x[i];
      }
  }

  // A fresh random unit direction orthogonal to the first n_basis basis vectors and to the
  // `n_extra` vectors at `extra` (a dependent start, or a block column that vanished).
  void random_direction(double* v, int n_basis, const double* extra, int n_extra) {
    std::vector<double> scratch(n_basis);
    for (int attempt = 0; attempt < 8; ++attempt) {
      for (int64_t i = 0; i < s_; ++i) v[i] = uniform_pm1(rng_);
      if (n_basis > 0) orthogonalize(n_basis, v, scratch.data());
      orth_against(v, extra, n_extra);
      const double nrm = std::sqrt(lanczos_dot(v, v, s_));
      if (nrm > 1e-8) {
        for (int64_t i = 0; i < s_; ++i) v[i] /= nrm;
        return;
      }
    }
    throw std::runtime_error("block Lanczos: could not draw a direction orthogonal to the basis");
  }

  void advance() {  // the next block joins the basis, its coupling the band
    V_.insert(V_.end(), Xn_.begin(), Xn_.end());
    Bs_.insert(Bs_.end(), Bj_.begin(), Bj_.end());
    nb_ += b_;
  }

  // Top q = need+1 Ritz values of the band projection (A_i diagonal blocks, B_i couplings) and
  // residual norms ‖B_j z_last‖; eigenvectors cached for ritz_vectors().
  void compute_ritz(int n, int need) {
    const int q = std::min(need + 1, n);
    // Lower band storage of T: T_[d·n + i] = T(i+d, i), d = 0..b, plus the bulge diagonal b + 1.
    T_.assign(static_cast<size_t>(b_ + 2) * n, 0.0);
    auto lower = [&](int i, int j) -> double& { return T_[static_cast<size_t>(i - j) * n + j]; };
    const int nblk = n / b_;
    for (int blk = 0; blk < nblk; ++blk) {
      const double* A = A_.data() + static_cast<size_t>(blk) * b_ * b_;
      for (int r = 0; r < b_; ++r)
        for (int t = 0; t <= r; ++t) lower(blk * b_ + r, blk * b_ + t) = A[r * b_ + t];
      if (blk + 1 < nblk) {
        // B is upper triangular: T((blk+1)·b + r, blk·b + t) = B[r][t] lies within the band.
        const double* B = Bs_.data() + static_cast<size_t>(blk) * b_ * b_;
        for (int r = 0; r < b_; ++r)
          for (int t = r; t < b_; ++t) lower((blk + 1) * b_ + r, blk * b_ + t) = B[r * b_ + t];
      }
    }
    const int ng = interlacing_guesses(theta_, resid_, q, norm_est_, guess_lo_, guess_hi_);
    lam_.resize(q);
    if (!band_top_eigen(n, b_, T_, q, lam_.data(), zq_, bw_, guess_lo_.data(), guess_hi_.data(), ng))
      throw std::runtime_error("block Lanczos: non-finite Ritz values");
    theta_.assign(lam_.begin(), lam_.end());
    resid_.assign(q, 0.0);
    const int j0 = n - b_;
    for (int i = 0; i < q; ++i) {
      double r2 = 0.0;
      for (int r = 0; r < b_; ++r) {
        double f = 0.0;
        for (int t = 0; t < b_; ++t) f += Bj_[r * b_ + t] * zq_[static_cast<size_t>(j0 + t) * q + i];
        r2 += f * f;
      }
      resid_[i] = std::sqrt(r2);
    }
    zq_n_ = n;
    zq_q_ = q;
  }

  SolveOptions opt_;
  int64_t s_;
  int b_, threads_, mb_ = 0, nb_ = 0;
  int next_check_ = 0, last_check_ = 0;
  double last_progress_ = 0.0, norm_est_ = 0.0;
  Status status_ = Running;
  uint64_t rng_ = 0;
  std::vector<double> V_, W_, Xn_, h_, A_, Bs_, Bj_, T_, theta_, resid_, zq_, lam_, guess_lo_, guess_hi_;
  BandWork bw_;
  int zq_n_ = -1, zq_q_ = 0;
};

// ---------------------------------------------------------------- certification
struct Certified {
  bool ok = false;
  std::vector<double> theta;          // top `need` union Ritz values (scaled operator)
  std::vector<double> X;              // their Ritz vectors (need × s)
  std::vector<double> bound;          // certified eigenvalue error bounds
  std::vector<double> resid;
  std::vector<bool> run_agrees;       // per run: reproduces every distinct union value
};

// Rayleigh–Ritz on the union of the runs' top-(k+1) Ritz vectors, agreement test, error bounds.
template <typename Proc>
Certified certify(const std::vector<Proc*>& runs, int64_t s, int need, double tol) {
  Certified out;
  std::vector<std::vector<double>> Ys, GYs;
  std::vector<double> Q, GQ;  // orthonormal union basis and its image
  int nq = 0;
  for (Proc* r : runs) {
    std::vector<double> th, Y, GY;
    r->ritz_vectors(need + 1, th, Y, GY);
    const int q = static_cast<int>(th.size());
    for (int i = 0; i < q; ++i) {
      std::vector<double> y(Y.begin() + static_cast<int64_t>(i) * s, Y.begin() + static_cast<int64_t>(i + 1) * s);
      std::vector<double> gy(GY.begin() + static_cast<int64_t>(i) * s, GY.begin() + static_cast<int64_t>(i + 1) * s);
      const double n0 = std::sqrt(lanczos_dot(y.data(), y.data(), s));
      for (int pass = 0; pass < 2; ++pass) {
        for (int j = 0; j < nq; ++j) {
          const double c = lanczos_dot(Q.data() + static_cast<int64_t>(j) * s, y.data(), s);
          const double* qj = Q.data() + static_cast<int64_t>(j) * s;
          const double* gqj = GQ.data() + static_cast<int64_t>(j) * s;
          for (int64_t x = 0; x < s; ++x) {
            y[x] -= c * qj[x];
            gy[x] -= c * gqj[x];
          }
        }
      }
      const double nrm = std::sqrt(lanczos_dot(y.data(), y.data(), s));
      // Directions already (nearly) in the union add nothing but amplified rounding in G·y.
      if (!(nrm > 1e-2 * n0)) continue;
      for (int64_t x = 0; x < s; ++x) {
        y[x] /= nrm;
        gy[x] /= nrm;
      }
      Q.insert(Q.end(), y.begin(), y.end());
      GQ.insert(GQ.end(), gy.begin(), gy.end());
      ++nq;
    }
  }
  std::vector<double> M(static_cast<size_t>(nq) * nq);
  for (int i = 0; i < nq; ++i)
    for (int j = 0; j <= i; ++j) {
      const double a = lanczos_dot(Q.data() + static_cast<int64_t>(i) * s, GQ.data() + static_cast<int64_t>(j) * s, s);
      const double b = lanczos_dot(Q.data() + static_cast<int64_t>(j) * s, GQ.data() + static_cast<int64_t>(i) * s, s);
      M[static_cast<size_t>(i) * nq + j] = M[static_cast<size_t>(j) * nq + i] = 0.5 * (a + b);
    }
  std::vector<double> w, z;
  symmetric_eigen_jacobi(nq, M.data(), w, z);
  // Residuals of every union Ritz pair, computed explicitly.
  std::vector<double> rr(nq), X(static_cast<size_t>(nq) * s);
  std::vector<double> gx(s);
  for (int i = 0; i < nq; ++i) {
    double* xi = X.data() + static_cast<int64_t>(i) * s;
    std::fill(gx.begin(), gx.end(), 0.0);
    for (int j = 0; j < nq; ++j) {
      const double c = z[static_cast<size_t>(j) * nq + i];
      const double* qj = Q.data() + static_cast<int64_t>(j) * s;
      const double* gqj = GQ.data() + static_cast<int64_t>(j) * s;
      for (int64_t x = 0; x < s; ++x) {
        xi[x] += c * qj[x];
        gx[x] += c * gqj[x];
      }
    }
    double r2 = 0;
    for (int64_t x = 0; x < s; ++x) {
      const double d = gx[x] - w[i] * xi[x];
      r2 += d * d;
    }
    rr[i] = std::sqrt(r2);
  }
  const double th1 = std::max(w.empty() ? 0.0 : w[0], 0.0);
  const double floor_abs = 16.0 * DBL_EPSILON * th1;  // rounding level of the Gram operator
  need = std::min(need, nq);
  // Clusters of overlapping residual intervals; Kato–Temple-type bound per cluster.
  std::vector<double> bound(nq, 0.0);
  int c0 = 0;
  while (c0 < nq) {
    int c1 = c0 + 1;
    while (c1 < nq && w[c1 - 1] - w[c1] <= rr[c1 - 1] + rr[c1] + floor_abs) ++c1;
    double R2 = 0;
    for (int i = c0; i < c1; ++i) R2 += rr[i] * rr[i];
    const double R = std::sqrt(R2);
    // Gap from the cluster to the nearest other eigenvalue, each neighbour placed by its own
    // Ritz value and residual; below the last union value nothing is known (Weyl bound only).
    double gap = -1.0;
    if (c1 < nq) {
      gap = w[c1 - 1] - w[c1] - rr[c1];
      if (c0 > 0) gap = std::min(gap, w[c0 - 1] - w[c0] - rr[c0 - 1]);
    }
    double e = R;
    if (gap > 0) e = std::min(R, R2 / gap);
    e = std::max(e, 0.0);
    for (int i = c0; i < c1; ++i) bound[i] = e;
    c0 = c1;
  }
  // Agreement: every distinct value in the union's top `need` must appear in each run's top need.
  out.run_agrees.assign(runs.size(), true);
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const std::vector<double>& th = runs[ri]->theta();
    const std::vector<double>& rs = runs[ri]->resid();
    for (int i = 0; i < need; ++i) {
      bool found = false;
      for (int j = 0; j < need && j < static_cast<int>(th.size()); ++j)
        if (std::fabs(th[j] - w[i]) <= rs[j] + rr[i] + bound[i] + floor_abs) found = true;
      if (!found) out.run_agrees[ri] = false;
    }
  }
  bool ok = std::all_of(out.run_agrees.begin(), out.run_agrees.end(), [](bool b) { return b; });
  // σ-error implied by the eigenvalue bounds against the contract target.
  const double sig1 = std::sqrt(th1);
  for (int i = 0; i < need && ok; ++i) {
    const double t = std::max(w[i], 0.0), e = bound[i];
    const double dsig = e / (std::sqrt(t + e) + std::sqrt(std::max(t - e, 0.0)) + 1e-300);
    if (dsig > sigma_target(std::sqrt(t), sig1, tol) && e > floor_abs) ok = false;
  }
  out.ok = ok;
  out.theta.assign(w.begin(), w.begin() + need);
  out.resid.assign(rr.begin(), rr.begin() + need);
  out.bound.assign(bound.begin(), bound.begin() + need);
  out.X.assign(X.begin(), X.begin() + static_cast<int64_t>(need) * s);
  return out;
}

// Advance every process of this round (each reorthogonalises against its own basis: independent
// work). On several threads the processes go in parallel once their reorthogonalisation
// outweighs the cost of opening a parallel region; an exception inside the region is carried out
// of it (a throw escaping an OpenMP region would terminate the process). A lone block process
// splits its columns over the threads instead.
void step_all(const std::vector<Run*>& who, const std::vector<BlockRun*>& blocks, int threads) {
  const int64_t count = static_cast<int64_t>(who.size() + blocks.size());
  int64_t work = 0;
  for (const Run* r : who) work += r->dim() * r->applied();
  for (const BlockRun* r : blocks) work += r->dim() * r->applied();
  const bool par = threads > 1 && count > 1 && work >= kParallelStepWork;
  const bool par_cols = threads > 1 && count == 1 && work >= kParallelStepWork;
  if (!par) {
    for (Run* r : who) r->step();
    for (BlockRun* r : blocks) r->step(par_cols);
    return;
  }
  std::vector<std::exception_ptr> errors(count);
  const int64_t nw = static_cast<int64_t>(who.size());
  for_each_index_dynamic(0, count, true, threads, [&](int64_t t) {
    try {
      if (t < nw)
        who[t]->step();
      else
        blocks[t - nw]->step(false);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  });
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

// Smallest Gram side solved by one block process (below it the independent restarted runs reach
// the end of the space, which a block process without restarts would not handle more cheaply).
constexpr int64_t kBlockMinSide = 64;

struct Problem {
  int64_t s = 0;
  int need = 0;
  int starts = 0;
  std::unique_ptr<BlockRun> block;  // the starts as one block process, or
  std::vector<Run> runs;            // as independent runs (small sides, or after a block filled up)
  bool done = false;
  int cert_failures = 0;
  std::vector<double> theta, bound, resid, X;

  void take(const Certified& c) {
    theta = c.theta;
    bound = c.bound;
    resid = c.resid;
    X = c.X;
    done = true;
  }
  void fail_if_stuck(int k) {
    if (++cert_failures > 60)
      throw std::runtime_error("Lanczos could not certify the top-" + std::to_string(k) +
                               " eigenvalues (independent starts keep disagreeing or the error bound stays "
                               "above the contract); raise tol or max_basis");
  }
};

}  // namespace

std::vector<std::vector<double>> lanczos_topk_sv_batch(GramStepBatch& op, const SolveOptions& opt,
                                                       std::vector<SolveInfo>* info) {
  const int nprob = op.size();
  const int threads = resolve_threads(opt.threads);
  std::vector<SolveInfo> inf(nprob);
  std::vector<Problem> P(nprob);
  for (int i = 0; i < nprob; ++i) {
    P[i].s = op.dim(i);
    P[i].need = static_cast<int>(std::min<int64_t>(opt.k, P[i].s));
    // max(2, k) starts resolve multiplicities up to k (capped at 16: a repeat of more than 16
    // copies among the top k is beyond what the certificate covers; documented).
    const int starts = opt.starts > 0 ? opt.starts : std::min(16, std::max(2, P[i].need));
    P[i].starts = starts;
    inf[i].route = op.route();
    if (P[i].s <= 0) {
      P[i].done = true;
      continue;
    }
    inf[i].lanczos_components = 1;
    inf[i].starts = starts;
    if (starts >= 2 && P[i].s >= std::max<int64_t>(kBlockMinSide, 8 * starts))
      P[i].block = std::make_unique<BlockRun>(P[i].s, opt, starts, threads);
    else
      for (int r = 0; r < starts; ++r) P[i].runs.emplace_back(P[i].s, opt, r, threads);
  }
  std::vector<int> ids;
  std::vector<const double*> xs;
  std::vector<double*> ys;
  std::vector<Run*> who;
  std::vector<BlockRun*> blocks;
  for (;;) {
    ids.clear();
    xs.clear();
    ys.clear();
    who.clear();
    blocks.clear();
    for (int i = 0; i < nprob; ++i) {
      if (P[i].done) continue;
      if (P[i].block) {
        BlockRun& b = *P[i].block;
        if (b.status() != BlockRun::Running) continue;
        for (int t = 0; t < b.width(); ++t) {
          ids.push_back(i);
          xs.push_back(b.v(t));
          ys.push_back(b.w(t));
        }
        blocks.push_back(&b);
        continue;
      }
      for (Run& r : P[i].runs)
        if (r.status() == Run::Running) {
          ids.push_back(i);
          xs.push_back(r.v());
          ys.push_back(r.w());
          who.push_back(&r);
        }
    }
    if (ids.empty()) break;
    op.apply(static_cast<int>(ids.size()), ids.data(), xs.data(), ys.data());
    for (size_t t = 0; t < ids.size(); ++t) inf[ids[t]].steps++;
    step_all(who, blocks, threads);
    for (int i = 0; i < nprob; ++i) {
      Problem& p = P[i];
      if (p.done) continue;
      if (p.block) {
        BlockRun& b = *p.block;
        const BlockRun::Status st = b.status();
        if (st == BlockRun::Running) continue;
        if (st == BlockRun::Full) {
          // The basis filled up before certification: independent restarted runs take over.
          p.block.reset();
          for (int r = 0; r < p.starts; ++r) p.runs.emplace_back(p.s, opt, r, threads);
          continue;
        }
        std::vector<BlockRun*> one{&b};
        Certified c = certify(one, p.s, p.need, opt.tol);
        if (c.ok || st == BlockRun::Exhausted) {
          p.take(c);
          inf[i].block_components = 1;
          continue;
        }
        p.fail_if_stuck(opt.k);
        b.resume(std::max(2, b.applied() / (8 * b.width())));
        if (b.status() == BlockRun::Full) {
          p.block.reset();
          for (int r = 0; r < p.starts; ++r) p.runs.emplace_back(p.s, opt, r, threads);
        }
        continue;
      }
      bool waiting = false, exhausted = false;
      for (Run& r : p.runs) {
        if (r.status() == Run::Running) waiting = true;
        if (r.status() == Run::Exhausted) exhausted = true;
      }
      if (exhausted) {
        // The basis spans the whole space: Ritz values are the exact spectrum.
        for (Run& r : p.runs)
          if (r.status() == Run::Exhausted) {
            std::vector<Run*> one{&r};
            p.take(certify(one, p.s, p.need, opt.tol));
            Run kept = std::move(r);
            p.runs.clear();
            p.runs.push_back(std::move(kept));
            break;
          }
        p.done = true;
        continue;
      }
      if (waiting) continue;
      std::vector<Run*> all;
      for (Run& r : p.runs) all.push_back(&r);
      Certified c = certify(all, p.s, p.need, opt.tol);
      if (c.ok) {
        p.take(c);
        continue;
      }
      p.fail_if_stuck(opt.k);
      bool any = false;
      for (size_t ri = 0; ri < p.runs.size(); ++ri)
        if (!c.run_agrees[ri]) {
          p.runs[ri].resume(std::max(4, p.runs[ri].applied() / 4));
          any = true;
        }
      if (!any)
        for (Run& r : p.runs) r.resume(std::max(3, r.applied() / 8));
    }
  }
  // Singular values of the unscaled operators.
  std::vector<std::vector<double>> out(nprob);
  std::vector<int> hid;
  std::vector<const double*> hx;
  std::vector<std::pair<int, int>> hwhere;
  for (int i = 0; i < nprob; ++i) {
    Problem& p = P[i];
    const int n = static_cast<int>(p.theta.size());
    out[i].resize(n);
    const double th1 = n > 0 ? std::max(p.theta[0], 0.0) : 0.0;
    for (int j = 0; j < n; ++j) {
      out[i][j] = std::sqrt(std::max(p.theta[j], 0.0));
      if (p.theta[j] < 1e-6 * th1) {
        hid.push_back(i);
        hx.push_back(p.X.data() + static_cast<int64_t>(j) * p.s);
        hwhere.emplace_back(i, j);
      }
    }
    double worst = 0.0, eb = 0.0;
    for (int j = 0; j < n; ++j) {
      const double sc = std::max(p.theta[j], 1e-8 * th1);
      worst = std::max(worst, sc > 0 ? p.resid[j] / sc : 0.0);
      const double t = std::max(p.theta[j], 0.0), e = p.bound[j];
      const double dsig = e / (std::sqrt(t + e) + std::sqrt(std::max(t - e, 0.0)) + 1e-300);
      if (th1 > 0) eb = std::max(eb, dsig / std::sqrt(th1));
    }
    inf[i].max_residual = worst;
    inf[i].error_bound = eb;
    for (const Run& r : p.runs) inf[i].restarts += r.restarts();
  }
  if (!hid.empty()) {
    std::vector<double> nrm(hid.size());
    if (op.half_norms(static_cast<int>(hid.size()), hid.data(), hx.data(), nrm.data()))
      for (size_t t = 0; t < hid.size(); ++t) out[hwhere[t].first][hwhere[t].second] = nrm[t];
  }
  for (int i = 0; i < nprob; ++i) {
    const double c = op.scale(i);
    for (double& x : out[i]) x /= c;
    std::sort(out[i].begin(), out[i].end(), std::greater<double>());
  }
  if (info) *info = inf;
  return out;
}

std::vector<std::vector<double>> lanczos_topk_batch(GramStepBatch& op, const SolveOptions& opt,
                                                    std::vector<SolveInfo>* info) {
  std::vector<std::vector<double>> sv = lanczos_topk_sv_batch(op, opt, info);
  for (auto& v : sv)
    for (double& x : v) x *= x;
  return sv;
}

bool band_top_eigenpairs(int n, int w, std::vector<double>& A, int q, std::vector<double>& lam, std::vector<double>& z) {
  if (n < 1 || w < 1 || q < 1 || static_cast<int64_t>(A.size()) != static_cast<int64_t>(n) * n)
    throw std::invalid_argument("band_top_eigenpairs: need n, w, q >= 1 and an n×n matrix");
  std::vector<double> L(static_cast<size_t>(w + 2) * n, 0.0);
  for (int d = 0; d <= w; ++d)
    for (int i = 0; i + d < n; ++i) L[static_cast<size_t>(d) * n + i] = A[static_cast<size_t>(i + d) * n + i];
  BandWork ws;
  q = std::min(q, n);
  lam.assign(q, 0.0);
  return band_top_eigen(n, w, L, q, lam.data(), z, ws);
}

}  // namespace fspai
