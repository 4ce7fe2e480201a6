// Top-k singular values of a CSR matrix B by Lanczos on the Gram operator of its smaller side.
//
// Pipeline:
//  1. Connected components of the bipartite graph (union-find over rows ∪ columns). Within a
//     connected component the top eigenvalue of the (nonnegative, irreducible) Gram matrix is
//     simple (Perron–Frobenius), so a single-vector Lanczos cannot miss a repeated σ1; repeated
//     σ1 = σ2 across components (disconnected layers) is exact because each component is solved
//     on its own and the per-component values are merged.
//  2. Components whose smaller side is tiny use the exact dense path (Gram + Householder + QL).
//  3. Otherwise Lanczos on G = CᵀC, C = the component's CSR oriented so that its columns are the
//     smaller side: one fused pass y = Cᵀ(Cx) per step reads each index once and touches only
//     s-length vectors (s = smaller side), which stay in L1/L2. Full reorthogonalisation (CGS2),
//     unrestarted up to max_basis, thick restart only if needed (60–110 steps usually suffice).
//
// Determinism: the fused operator splits rows into a number of chunks that depends only on the
// matrix (never on the thread count), each chunk accumulating into its own buffer, reduced in a
// fixed order; dot products are computed whole by one thread. So results are bit-identical for
// any thread count.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "dense_eig.h"
#include "singular_values.h"

#ifdef FSPAI_OPENMP
#include <omp.h>
#endif

namespace fspai {
namespace {

// Σ_p x[idx[p]] (pattern) over one row, four independent chains. (AVX-512 gathers were measured
// slower on the Zen 4 reference machine: 82.6 vs 70.6 ms CPU for ResNet-34 at 10 %.)
inline double row_gather_sum(const int32_t* idx, int64_t b, int64_t e, const double* x) {
  int64_t p = b;
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (; p + 4 <= e; p += 4) {
    a0 += x[idx[p]];
    a1 += x[idx[p + 1]];
    a2 += x[idx[p + 2]];
    a3 += x[idx[p + 3]];
  }
  for (; p < e; ++p) a0 += x[idx[p]];
  return (a0 + a1) + (a2 + a3);
}

// Σ_p val[p]·x[idx[p]] over one row (weighted).
template <typename V>
inline double row_gather_dot(const int32_t* idx, const V* val, int64_t b, int64_t e, const double* x) {
  int64_t p = b;
  double a0 = 0, a1 = 0;
  for (; p + 2 <= e; p += 2) {
    a0 += static_cast<double>(val[p]) * x[idx[p]];
    a1 += static_cast<double>(val[p + 1]) * x[idx[p + 1]];
  }
  for (; p < e; ++p) a0 += static_cast<double>(val[p]) * x[idx[p]];
  return a0 + a1;
}

// ---------------------------------------------------------------- random start vector
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline double uniform_pm1(uint64_t& state) {
  return (static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53) * 2.0 - 1.0;
}

// ---------------------------------------------------------------- dense kernels
inline double dot(const double* a, const double* b, int64_t n) {
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

// ---------------------------------------------------------------- fused Gram operator
// y = Cᵀ(C x) for C with n_rows = "large side" rows and n_cols = s.
class GramOperator {
 public:
  GramOperator(const CsrView& c, int threads) : c_(c), s_(c.n_cols), threads_(threads) {
    const int64_t nnz = c.nnz();
    // Chunk count depends only on the matrix: enough work per chunk to amortise the s-length
    // reduction, at most 16.
    int64_t chunks = nnz / std::max<int64_t>(4 * s_, 65536);
    chunks = std::clamp<int64_t>(chunks, 1, 16);
    bounds_.push_back(0);
    for (int64_t t = 1; t < chunks; ++t) {
      const int64_t target = nnz * t / chunks;
      const int64_t* it = std::lower_bound(c.indptr, c.indptr + c.n_rows + 1, target);
      bounds_.push_back(std::max<int64_t>(bounds_.back(), it - c.indptr));
    }
    bounds_.push_back(c.n_rows);
    // Below ~1M nonzeros a step is well under a millisecond and fork/join costs (much worse on
    // a shared machine) eat the gain; batched calls parallelise across layers instead.
    parallel_ = threads_ > 1 && nnz >= (1 << 20);
  }

  // y = Cᵀ(Cx); with use_values=false the values are ignored (the 0/1 pattern).
  void apply(const double* x, double* y, bool use_values) {
    run_chunks(1, [&](int64_t r0, int64_t r1, double* buf) { run_rows(r0, r1, x, buf, use_values); }, y);
  }

  // Pattern and weighted products in one pass over the indices: the two vectors are interleaved
  // so each nonzero costs one index load and one 16-byte gather/scatter.
  void apply2(const double* xp, const double* xw, double* yp, double* yw) {
    x2_.resize(2 * s_);
    y2_.resize(2 * s_);
    for (int64_t i = 0; i < s_; ++i) {
      x2_[2 * i] = xp[i];
      x2_[2 * i + 1] = xw[i];
    }
    const double* x2 = x2_.data();
    if (c_.vtype == ValueType::Float32)
      run_chunks(2, [&](int64_t r0, int64_t r1, double* buf) { run_rows2(static_cast<const float*>(c_.values), r0, r1, x2, buf); }, y2_.data());
    else
      run_chunks(2, [&](int64_t r0, int64_t r1, double* buf) { run_rows2(static_cast<const double*>(c_.values), r0, r1, x2, buf); }, y2_.data());
    for (int64_t i = 0; i < s_; ++i) {
      yp[i] = y2_[2 * i];
      yw[i] = y2_[2 * i + 1];
    }
  }

 private:
  // Runs `body(r0, r1, buffer)` over the fixed row chunks, each into its own zeroed buffer of
  // width*s doubles, then reduces the buffers into y in chunk order (deterministic).
  template <typename Body>
  void run_chunks(int width, Body body, double* y) {
    const int64_t chunks = static_cast<int64_t>(bounds_.size()) - 1;
    const int64_t len = width * s_;
    if (chunks == 1) {
      std::fill(y, y + len, 0.0);
      body(0, c_.n_rows, y);
      return;
    }
    if (static_cast<int64_t>(partial_.size()) < chunks * len) partial_.assign(chunks * len, 0.0);
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (parallel_)
#endif
    for (int64_t t = 0; t < chunks; ++t) {
      double* buf = partial_.data() + t * len;
      std::fill(buf, buf + len, 0.0);
      body(bounds_[t], bounds_[t + 1], buf);
    }
    const int64_t block = 4096;
    const int64_t nblocks = (len + block - 1) / block;
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_) if (parallel_ && nblocks > 1)
#endif
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t lo = b * block, hi = std::min(len, lo + block);
      for (int64_t i = lo; i < hi; ++i) y[i] = partial_[i];
      for (int64_t t = 1; t < chunks; ++t) {
        const double* buf = partial_.data() + t * len;
        for (int64_t i = lo; i < hi; ++i) y[i] += buf[i];
      }
    }
  }

  template <typename V>
  void run_rows2(const V* val, int64_t r0, int64_t r1, const double* x2, double* y2) const {
    const int64_t* ptr = c_.indptr;
    const int32_t* idx = c_.indices;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = ptr[r], e = ptr[r + 1];
      double ap0 = 0, ap1 = 0, aw0 = 0, aw1 = 0;
      int64_t p = b;
      for (; p + 2 <= e; p += 2) {
        const int64_t j0 = 2 * static_cast<int64_t>(idx[p]), j1 = 2 * static_cast<int64_t>(idx[p + 1]);
        ap0 += x2[j0];
        aw0 += static_cast<double>(val[p]) * x2[j0 + 1];
        ap1 += x2[j1];
        aw1 += static_cast<double>(val[p + 1]) * x2[j1 + 1];
      }
      for (; p < e; ++p) {
        const int64_t j = 2 * static_cast<int64_t>(idx[p]);
        ap0 += x2[j];
        aw0 += static_cast<double>(val[p]) * x2[j + 1];
      }
      const double ap = ap0 + ap1, aw = aw0 + aw1;
      for (p = b; p < e; ++p) {
        const int64_t j = 2 * static_cast<int64_t>(idx[p]);
        y2[j] += ap;
        y2[j + 1] += static_cast<double>(val[p]) * aw;
      }
    }
  }

  void run_rows(int64_t r0, int64_t r1, const double* x, double* y, bool use_values) const {
    const int64_t* ptr = c_.indptr;
    const int32_t* idx = c_.indices;
    if (c_.vtype == ValueType::None || !use_values) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = ptr[r], e = ptr[r + 1];
        const double a = row_gather_sum(idx, b, e, x);
        for (int64_t p = b; p < e; ++p) y[idx[p]] += a;
      }
    } else if (c_.vtype == ValueType::Float32) {
      run_weighted(static_cast<const float*>(c_.values), r0, r1, x, y);
    } else {
      run_weighted(static_cast<const double*>(c_.values), r0, r1, x, y);
    }
  }
  template <typename V>
  void run_weighted(const V* val, int64_t r0, int64_t r1, const double* x, double* y) const {
    const int64_t* ptr = c_.indptr;
    const int32_t* idx = c_.indices;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = ptr[r], e = ptr[r + 1];
      const double a = row_gather_dot(idx, val, b, e, x);
      for (int64_t p = b; p < e; ++p) y[idx[p]] += static_cast<double>(val[p]) * a;
    }
  }

  const CsrView& c_;
  int64_t s_;
  int threads_;
  bool parallel_ = false;
  std::vector<int64_t> bounds_;
  std::vector<double> partial_, x2_, y2_;
};

// ---------------------------------------------------------------- dense exact path
// Eigenvalues (descending) of CᵀC for a small number of columns s.
std::vector<double> dense_gram_eigenvalues(const CsrView& c) {
  const int64_t s = c.n_cols;
  std::vector<double> g(static_cast<size_t>(s) * s, 0.0);
  for (int64_t r = 0; r < c.n_rows; ++r) {
    const int64_t b = c.indptr[r], e = c.indptr[r + 1];
    for (int64_t p = b; p < e; ++p) {
      const double vp = c.value(p);
      double* row = g.data() + static_cast<int64_t>(c.indices[p]) * s;
      for (int64_t q = b; q < e; ++q) row[c.indices[q]] += vp * c.value(q);
    }
  }
  std::vector<double> w = symmetric_eigenvalues(static_cast<int>(s), g.data());
  for (double& x : w) x = std::max(x, 0.0);
  return w;
}

// ---------------------------------------------------------------- Lanczos
struct Ritz {
  std::vector<double> theta;  // descending
  std::vector<double> resid;  // |β · last component|
};

// One Lanczos process on a Gram operator of size s, driven from outside: the caller applies the
// operator to v() into w() and calls step(); step() returns true once the top-k Ritz values
// have converged (result()). Several processes can share one pass over the matrix.
class Lanczos {
 public:
  Lanczos(int64_t s, int64_t nnz, const SolveOptions& opt, int threads)
      : opt_(opt), s_(s), nnz_(nnz), threads_(threads) {
    const int mb = opt.max_basis > 0 ? opt.max_basis : std::max(3 * opt.k + 60, 240);
    mb_ = static_cast<int>(std::min<int64_t>(mb, s_));
    // The basis grows on demand: most solves stop after 30–60 vectors, far below max_basis, and
    // zero-filling (and page-faulting) s × max_basis doubles up front dominated small solves.
    V_.reserve(static_cast<size_t>(s_) * std::min(mb_ + 1, 64));
    V_.resize(s_);
    w_.assign(s_, 0.0);
    h_.assign(mb_ + 1, 0.0);
    h2_.assign(mb_ + 1, 0.0);
    alpha_.assign(mb_ + 1, 0.0);
    beta_.assign(mb_ + 1, 0.0);
    uint64_t st = opt_.seed * 0x2545F4914F6CDD1DULL + 0x1234567ULL;
    double* v0 = V_.data();
    for (int64_t i = 0; i < s_; ++i) v0[i] = uniform_pm1(st);
    const double nrm = std::sqrt(dot(v0, v0, s_));
    for (int64_t i = 0; i < s_; ++i) v0[i] /= nrm;
  }

  const double* v() const { return V_.data() + static_cast<int64_t>(j_) * s_; }
  double* w() { return w_.data(); }
  const std::vector<double>& result() const { return result_; }
  // The Krylov space closed with fewer than k values (repeats it cannot resolve).
  bool short_krylov() const { return short_krylov_; }

  bool step(SolveInfo& info) {
    const int k = opt_.k;
    double* w = w_.data();
    orthogonalize(nb_, w);
    const double bj = std::sqrt(dot(w, w, s_));
    const int j = j_;
    if (!restarted_) {
      alpha_[j] = h_[j];
    } else {
      for (int i = 0; i <= j; ++i) H_[i * (mb_ + 1) + j] = H_[j * (mb_ + 1) + i] = h_[i];
    }
    beta_[j] = bj;
    const int m = j + 1;
    norm_est_ = std::max(norm_est_, std::fabs(h_[j]) + bj);

    // Convergence checks cost O(m²) (QL on T). Where that is negligible next to a step (big
    // matrices) check every step; otherwise predict the step at which the residual reaches tol
    // from its geometric decay between the last two checks, and check a bit before it.
    const double step_cost = 1.0 * nnz_ + 1.0 * s_ * m;
    const double check_cost = 20.0 * m * m;
    const bool cheap_check = check_cost <= 0.02 * step_cost;
    const bool exhausted = nb_ == s_;
    const bool full = nb_ == mb_;
    const bool breakdown = bj <= 1e-12 * norm_est_;
    if (m >= std::min<int64_t>(k, s_) && (cheap_check || m >= next_check_ || exhausted || full || breakdown)) {
      Ritz rz = restarted_ ? ritz_dense(m, bj) : ritz_tridiagonal(m, bj);
      // Each Ritz residual relative to its own θ_i (as ARPACK): σ2² can be hundreds of times
      // smaller than σ1², so a θ1-relative test stops σ2 far too early. θ_i below 1e-6·θ1
      // (σ_i < 1e-3·σ1, near-rank-deficient layers) are measured against 1e-6·θ1, which
      // keeps their error below ~1e-9·σ1.
      const double theta1 = std::max(rz.theta[0], 0.0);
      bool converged = true;
      double worst = 0.0;
      const int need = static_cast<int>(std::min<int64_t>(k, m));
      for (int i = 0; i < need; ++i) {
        const double scale = std::max(rz.theta[i], 1e-6 * theta1);
        const double rel = scale > 0 ? rz.resid[i] / scale : 0.0;
        worst = std::max(worst, rel);
        if (!(rel <= opt_.tol)) converged = false;
      }
      if (exhausted || breakdown) {
        converged = true;
        if (m < k && m < s_) short_krylov_ = true;
      }
      if (!converged) {
        int gap = restarted_ ? 5 : 2;
        if (!restarted_ && last_check_m_ > 0 && worst > 0 && worst < last_worst_) {
          const double rate = std::log(worst / last_worst_) / (m - last_check_m_);  // < 0
          const double need = std::log(opt_.tol / worst) / rate;
          gap = std::clamp(static_cast<int>(0.75 * need), 1, 16);
        }
        last_check_m_ = m;
        last_worst_ = worst;
        next_check_ = m + gap;
      }
      if (converged) {
        info.max_residual = std::max(info.max_residual, worst);
        info.restarts += restarts_;
        result_.assign(rz.theta.begin(), rz.theta.begin() + std::min<int64_t>(m, k));
        for (double& x : result_) x = std::max(x, 0.0);
        return true;
      }
      if (full) {
        if (restarts_ >= opt_.max_restarts)
          throw std::runtime_error("Lanczos did not converge: relative residual " + std::to_string(worst) +
                                   " > tol " + std::to_string(opt_.tol) + " after " + std::to_string(restarts_) +
                                   " restarts (basis " + std::to_string(mb_) + "); raise max_basis or tol");
        thick_restart(m, bj);
        ++restarts_;
        nb_ = static_cast<int>(keep_) + 1;
        j_ = static_cast<int>(keep_);
        return false;
      }
    }
    V_.resize(static_cast<size_t>(nb_ + 1) * s_);
    double* vn = V_.data() + static_cast<int64_t>(nb_) * s_;
    const double inv = 1.0 / bj;
    for (int64_t i = 0; i < s_; ++i) vn[i] = w[i] * inv;
    ++nb_;
    ++j_;
    return false;
  }

 private:
  // w -= V(Vᵀw) twice (CGS2); h_ receives the total coefficients.
  void orthogonalize(int nb, double* w) {
    for (int pass = 0; pass < 2; ++pass) {
      double* coef = pass == 0 ? h_.data() : h2_.data();
      const bool par = threads_ > 1 && static_cast<int64_t>(nb) * s_ >= 262144;
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_) if (par)
#endif
      for (int i = 0; i < nb; ++i) coef[i] = dot(V_.data() + static_cast<int64_t>(i) * s_, w, s_);
      const int64_t block = 2048;
      const int64_t nblocks = (s_ + block - 1) / block;
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_) if (par && nblocks > 1)
#endif
      for (int64_t b = 0; b < nblocks; ++b) {
        const int64_t lo = b * block, hi = std::min(s_, lo + block);
        for (int i = 0; i < nb; ++i) {
          const double ci = coef[i];
          const double* vi = V_.data() + static_cast<int64_t>(i) * s_;
          for (int64_t x = lo; x < hi; ++x) w[x] -= ci * vi[x];
        }
      }
    }
    for (int i = 0; i < nb; ++i) h_[i] += h2_[i];
  }

  Ritz ritz_tridiagonal(int m, double bj) {
    std::vector<double> d(alpha_.begin(), alpha_.begin() + m), e(m, 0.0), z(m, 0.0);
    for (int i = 0; i + 1 < m; ++i) e[i] = beta_[i];
    z[m - 1] = 1.0;
    if (!tridiagonal_ql(m, d.data(), e.data(), z.data()))
      throw std::runtime_error("tridiagonal QL failed to converge inside Lanczos");
    std::vector<int> ord(m);
    std::iota(ord.begin(), ord.end(), 0);
    std::sort(ord.begin(), ord.end(), [&](int a, int b) { return d[a] > d[b]; });
    Ritz rz;
    rz.theta.reserve(m);
    rz.resid.reserve(m);
    for (int i : ord) {
      rz.theta.push_back(d[i]);
      rz.resid.push_back(std::fabs(bj * z[i]));
    }
    return rz;
  }

  Ritz ritz_dense(int m, double bj) {
    std::vector<double> a(static_cast<size_t>(m) * m);
    for (int i = 0; i < m; ++i)
      for (int jj = 0; jj < m; ++jj) a[i * m + jj] = H_[i * (mb_ + 1) + jj];
    std::vector<double> w, v;
    symmetric_eigen_jacobi(m, a.data(), w, v);
    Ritz rz;
    rz.theta = w;
    for (int i = 0; i < m; ++i) rz.resid.push_back(std::fabs(bj * v[(m - 1) * m + i]));
    return rz;
  }

  // Keep the top `keep_` Ritz vectors plus the residual direction (Wu–Simon thick restart).
  void thick_restart(int m, double bj) {
    std::vector<double> a(static_cast<size_t>(m) * m, 0.0);
    if (restarted_) {
      for (int i = 0; i < m; ++i)
        for (int jj = 0; jj < m; ++jj) a[i * m + jj] = H_[i * (mb_ + 1) + jj];
    } else {
      for (int i = 0; i < m; ++i) {
        a[i * m + i] = alpha_[i];
        if (i + 1 < m) a[i * m + i + 1] = a[(i + 1) * m + i] = beta_[i];
      }
    }
    std::vector<double> theta, Y;
    symmetric_eigen_jacobi(m, a.data(), theta, Y);
    keep_ = std::min<int64_t>(m - 2, std::max<int64_t>(opt_.k + 2, m / 2));
    keep_ = std::max<int64_t>(keep_, 1);
    std::vector<double> Vn(static_cast<size_t>(s_) * keep_, 0.0);
    for (int64_t i = 0; i < keep_; ++i) {
      double* dst = Vn.data() + i * s_;
      for (int jj = 0; jj < m; ++jj) {
        const double y = Y[jj * m + i];
        const double* src = V_.data() + static_cast<int64_t>(jj) * s_;
        for (int64_t x = 0; x < s_; ++x) dst[x] += y * src[x];
      }
    }
    std::copy(Vn.begin(), Vn.end(), V_.begin());
    double* vr = V_.data() + keep_ * s_;
    for (int64_t x = 0; x < s_; ++x) vr[x] = w_[x] / bj;
    H_.assign(static_cast<size_t>(mb_ + 1) * (mb_ + 1), 0.0);
    for (int64_t i = 0; i < keep_; ++i) {
      H_[i * (mb_ + 1) + i] = theta[i];
      const double b = bj * Y[(m - 1) * m + i];
      H_[i * (mb_ + 1) + keep_] = H_[keep_ * (mb_ + 1) + i] = b;
    }
    restarted_ = true;
  }

  SolveOptions opt_;
  int64_t s_, nnz_;
  int threads_;
  int mb_ = 0;
  int nb_ = 1, j_ = 0, next_check_ = 0, last_check_m_ = 0;
  double last_worst_ = 0.0;
  int64_t restarts_ = 0, keep_ = 0;
  double norm_est_ = 0.0;  // running estimate of ‖G‖ for the breakdown test
  bool restarted_ = false, short_krylov_ = false;
  std::vector<double> V_, w_, h_, h2_, alpha_, beta_, H_, result_;
};

// ---------------------------------------------------------------- components
struct Components {
  std::vector<int32_t> comp_of_row, comp_of_col;  // -1 for isolated nodes
  std::vector<int64_t> rows, cols, nnz;             // per component
};

int32_t find_root(std::vector<int32_t>& parent, int32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

Components connected_components(const CsrView& a) {
  const int64_t m = a.n_rows, n = a.n_cols, total = m + n;
  if (total > INT32_MAX) throw std::invalid_argument("matrix has more than 2^31-1 rows + columns");
  std::vector<int32_t> parent(total);
  std::iota(parent.begin(), parent.end(), 0);
  int64_t merges = 0;
  // Rows merge into their columns' trees; stop scanning once everything touched is one tree is
  // not knowable early, so scan every edge (O(nnz), ~1 ns/edge with flat trees).
  for (int64_t r = 0; r < m; ++r) {
    const int64_t b = a.indptr[r], e = a.indptr[r + 1];
    if (b == e) continue;
    int32_t rr = find_root(parent, static_cast<int32_t>(r));
    for (int64_t p = b; p < e; ++p) {
      int32_t cr = find_root(parent, static_cast<int32_t>(m + a.indices[p]));
      if (cr != rr) {
        // Union by index keeps trees shallow enough with halving.
        if (cr < rr) std::swap(cr, rr);
        parent[cr] = rr;
        ++merges;
      }
    }
  }
  Components cc;
  cc.comp_of_row.assign(m, -1);
  cc.comp_of_col.assign(n, -1);
  std::vector<int32_t> id_of_root(total, -1);
  std::vector<int64_t> col_deg(n, 0);
  for (int64_t p = 0; p < a.nnz(); ++p) col_deg[a.indices[p]]++;
  auto comp_id = [&](int32_t node) {
    const int32_t root = find_root(parent, node);
    if (id_of_root[root] < 0) {
      id_of_root[root] = static_cast<int32_t>(cc.rows.size());
      cc.rows.push_back(0);
      cc.cols.push_back(0);
      cc.nnz.push_back(0);
    }
    return id_of_root[root];
  };
  for (int64_t r = 0; r < m; ++r) {
    const int64_t d = a.indptr[r + 1] - a.indptr[r];
    if (d == 0) continue;
    const int32_t id = comp_id(static_cast<int32_t>(r));
    cc.comp_of_row[r] = id;
    cc.rows[id]++;
    cc.nnz[id] += d;
  }
  for (int64_t c = 0; c < n; ++c) {
    if (col_deg[c] == 0) continue;
    const int32_t id = comp_id(static_cast<int32_t>(m + c));
    cc.comp_of_col[c] = id;
    cc.cols[id]++;
  }
  return cc;
}

// Compress component `id` of `a` into its own CSR (rows and columns relabelled in order).
CsrOwned extract_component(const CsrView& a, const Components& cc, int32_t id, std::vector<int32_t>& col_map) {
  CsrOwned out;
  out.n_rows = cc.rows[id];
  out.n_cols = cc.cols[id];
  out.indptr.reserve(out.n_rows + 1);
  out.indptr.push_back(0);
  out.indices.reserve(cc.nnz[id]);

  int32_t next = 0;
  for (int64_t c = 0; c < a.n_cols; ++c)
    if (cc.comp_of_col[c] == id) col_map[c] = next++;
  for (int64_t r = 0; r < a.n_rows; ++r) {
    if (cc.comp_of_row[r] != id) continue;
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
      out.indices.push_back(col_map[a.indices[p]]);
      out.push_value(a, p);
    }
    out.indptr.push_back(static_cast<int64_t>(out.indices.size()));
  }
  return out;
}

// Gram eigenvalues of a connected (or isolated-node-padded) matrix `a`, for the 0/1 pattern
// (want_p) and/or the weighted matrix (want_w), in one shared pass over the indices when both.
struct BlockResult {
  std::vector<double> p, w;
};

BlockResult solve_block(const CsrView& a, int64_t active_small_side, bool want_p, bool want_w,
                        const SolveOptions& opt, int threads, SolveInfo& ip, SolveInfo& iw) {
  BlockResult res;
  CsrOwned t;
  CsrView c = a;  // orient so that columns are the smaller side
  if (a.n_rows < a.n_cols) {
    t = transpose(a);
    c = t.view();
  }
  auto dense = [&](bool weighted, SolveInfo& info) {
    info.dense_components++;
    CsrView v = c;
    if (!weighted) {
      v.values = nullptr;
      v.vtype = ValueType::None;
    }
    return dense_gram_eigenvalues(v);
  };
  if (active_small_side <= opt.dense_max || c.n_cols <= opt.dense_max) {
    if (want_p) res.p = dense(false, ip);
    if (want_w) res.w = dense(true, iw);
    return res;
  }
  GramOperator op(c, threads);
  const int64_t s = c.n_cols;
  Lanczos P(s, c.nnz(), opt, threads), W(s, c.nnz(), opt, threads);
  bool done_p = !want_p, done_w = !want_w;
  if (want_p) ip.lanczos_components++;
  if (want_w) iw.lanczos_components++;
  while (!done_p || !done_w) {
    if (!done_p && !done_w) {
      op.apply2(P.v(), W.v(), P.w(), W.w());
      ip.steps++;
      iw.steps++;
      done_p = P.step(ip);
      done_w = W.step(iw);
    } else if (!done_p) {
      op.apply(P.v(), P.w(), false);
      ip.steps++;
      done_p = P.step(ip);
    } else {
      op.apply(W.v(), W.w(), true);
      iw.steps++;
      done_w = W.step(iw);
    }
  }
  // A Krylov space that closed with fewer than k values cannot resolve the repeats: fall back to
  // the exact dense path when affordable.
  auto finish = [&](const Lanczos& L, bool weighted, SolveInfo& info) {
    if (!L.short_krylov()) return L.result();
    if (c.n_cols <= 4096) return dense(weighted, info);
    throw std::runtime_error("Lanczos found an invariant subspace with fewer than k eigenvalues on a "
                             "matrix too large for the dense fallback; use a smaller k");
  };
  if (want_p) res.p = finish(P, false, ip);
  if (want_w) res.w = finish(W, true, iw);
  return res;
}

std::vector<double> to_singular_values(std::vector<double> eig, int k) {
  std::sort(eig.begin(), eig.end(), std::greater<double>());
  std::vector<double> sv(k, 0.0);
  for (int i = 0; i < k && i < static_cast<int>(eig.size()); ++i) sv[i] = std::sqrt(std::max(eig[i], 0.0));
  return sv;
}

bool has_zero_value(const CsrView& a) {
  for (int64_t p = 0; p < a.nnz(); ++p)
    if (a.value(p) == 0.0) return true;
  return false;
}

// Pattern (want_p) and/or weighted (want_w) top-k σ of `a`. Components are found on the 0/1
// pattern; when a weighted value is exactly 0 the weighted graph's components differ, so the two
// are solved separately.
void topk_cpu(const CsrView& a, bool want_p, bool want_w, const SolveOptions& opt, std::vector<double>* sv_p,
              std::vector<double>* sv_w, SolveInfo* info_p, SolveInfo* info_w) {
  const int threads = resolve_threads(opt.threads);
  SolveInfo ip, iw;
  std::vector<double> eig_p, eig_w;
  if (want_p && want_w && has_zero_value(a)) {
    CsrView pat = a;
    pat.values = nullptr;
    pat.vtype = ValueType::None;
    topk_cpu(pat, true, false, opt, sv_p, nullptr, info_p, nullptr);
    topk_cpu(a, false, true, opt, nullptr, sv_w, nullptr, info_w);
    return;
  }
  if (a.nnz() > 0) {
    Components cc = connected_components(a);
    const int32_t ncomp = static_cast<int32_t>(cc.rows.size());
    ip.components = iw.components = ncomp;
    auto add = [&](const BlockResult& r) {
      auto take = [&](const std::vector<double>& ev, std::vector<double>& into) {
        const size_t n = std::min<size_t>(ev.size(), static_cast<size_t>(opt.k));
        std::vector<double> sorted(ev);
        std::sort(sorted.begin(), sorted.end(), std::greater<double>());
        into.insert(into.end(), sorted.begin(), sorted.begin() + n);
      };
      take(r.p, eig_p);
      take(r.w, eig_w);
    };
    if (ncomp == 1) {
      const int64_t small = std::min(cc.rows[0], cc.cols[0]);
      const bool has_isolated = cc.rows[0] < a.n_rows || cc.cols[0] < a.n_cols;
      if (small <= opt.dense_max && has_isolated) {
        std::vector<int32_t> col_map(a.n_cols, -1);
        CsrOwned sub = extract_component(a, cc, 0, col_map);
        add(solve_block(sub.view(), small, want_p, want_w, opt, threads, ip, iw));
      } else {
        add(solve_block(a, small, want_p, want_w, opt, threads, ip, iw));
      }
    } else {
      std::vector<int32_t> col_map(a.n_cols, -1);
      for (int32_t id = 0; id < ncomp; ++id) {
        CsrOwned sub = extract_component(a, cc, id, col_map);
        add(solve_block(sub.view(), std::min(cc.rows[id], cc.cols[id]), want_p, want_w, opt, threads, ip, iw));
      }
    }
  }
  if (want_p) {
    *sv_p = to_singular_values(eig_p, opt.k);
    if (info_p) *info_p = ip;
  }
  if (want_w) {
    *sv_w = to_singular_values(eig_w, opt.k);
    if (info_w) *info_w = iw;
  }
}

}  // namespace

std::vector<double> topk_singular_values_cpu(const CsrView& a, const SolveOptions& opt, SolveInfo* info) {
  std::vector<double> sv;
  if (a.weighted())
    topk_cpu(a, false, true, opt, nullptr, &sv, nullptr, info);
  else
    topk_cpu(a, true, false, opt, &sv, nullptr, info, nullptr);
  return sv;
}

void topk_singular_values_pair_cpu(const CsrView& a, const SolveOptions& opt, std::vector<double>* sv_pattern,
                                   std::vector<double>* sv_weighted, SolveInfo* info_pattern,
                                   SolveInfo* info_weighted) {
  topk_cpu(a, true, a.weighted(), opt, sv_pattern, sv_weighted, info_pattern, info_weighted);
}

}  // namespace fspai
