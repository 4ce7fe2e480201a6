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
    if (chunks > 1) partial_.assign(static_cast<size_t>(chunks) * s_, 0.0);
    parallel_ = threads_ > 1 && nnz >= 200000;
  }

  void apply(const double* x, double* y) {
    const int64_t chunks = static_cast<int64_t>(bounds_.size()) - 1;
    if (chunks == 1) {
      std::fill(y, y + s_, 0.0);
      run_rows(0, c_.n_rows, x, y);
      return;
    }
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (parallel_)
#endif
    for (int64_t t = 0; t < chunks; ++t) {
      double* buf = partial_.data() + t * s_;
      std::fill(buf, buf + s_, 0.0);
      run_rows(bounds_[t], bounds_[t + 1], x, buf);
    }
    const int64_t block = 4096;
    const int64_t nblocks = (s_ + block - 1) / block;
#ifdef FSPAI_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_) if (parallel_ && nblocks > 1)
#endif
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t lo = b * block, hi = std::min(s_, lo + block);
      for (int64_t i = lo; i < hi; ++i) y[i] = partial_[i];
      for (int64_t t = 1; t < chunks; ++t) {
        const double* buf = partial_.data() + t * s_;
        for (int64_t i = lo; i < hi; ++i) y[i] += buf[i];
      }
    }
  }

 private:
  void run_rows(int64_t r0, int64_t r1, const double* x, double* y) const {
    const int64_t* ptr = c_.indptr;
    const int32_t* idx = c_.indices;
    if (c_.vtype == ValueType::None) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = ptr[r], e = ptr[r + 1];
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t p = b;
        for (; p + 4 <= e; p += 4) {
          a0 += x[idx[p]];
          a1 += x[idx[p + 1]];
          a2 += x[idx[p + 2]];
          a3 += x[idx[p + 3]];
        }
        for (; p < e; ++p) a0 += x[idx[p]];
        const double a = (a0 + a1) + (a2 + a3);
        for (p = b; p < e; ++p) y[idx[p]] += a;
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
      double a0 = 0, a1 = 0;
      int64_t p = b;
      for (; p + 2 <= e; p += 2) {
        a0 += static_cast<double>(val[p]) * x[idx[p]];
        a1 += static_cast<double>(val[p + 1]) * x[idx[p + 1]];
      }
      for (; p < e; ++p) a0 += static_cast<double>(val[p]) * x[idx[p]];
      const double a = a0 + a1;
      for (p = b; p < e; ++p) y[idx[p]] += static_cast<double>(val[p]) * a;
    }
  }

  const CsrView& c_;
  int64_t s_;
  int threads_;
  bool parallel_ = false;
  std::vector<int64_t> bounds_;
  std::vector<double> partial_;
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

class LanczosSolver {
 public:
  LanczosSolver(const CsrView& c, const SolveOptions& opt, int threads)
      : c_(c), opt_(opt), s_(c.n_cols), op_(c, threads), threads_(threads) {
    int mb = opt.max_basis > 0 ? opt.max_basis : std::max(3 * opt.k + 60, 240);
    mb_ = static_cast<int>(std::min<int64_t>(mb, s_));
  }

  // Returns eigenvalues of CᵀC, descending, at least min(k, s) of them (fewer only on an
  // invariant subspace smaller than k, reported through `short_krylov`).
  std::vector<double> solve(SolveInfo& info, bool& short_krylov) {
    short_krylov = false;
    const int k = opt_.k;
    V_.assign(static_cast<size_t>(s_) * (mb_ + 1), 0.0);
    std::vector<double> w(s_), h(mb_ + 1), h2(mb_ + 1);
    std::vector<double> alpha(mb_ + 1), beta(mb_ + 1);
    std::vector<double> H;  // dense projected matrix once restarted ((mb+1)²)
    bool restarted = false;

    uint64_t st = opt_.seed * 0x2545F4914F6CDD1DULL + 0x1234567ULL;
    double* v0 = V_.data();
    for (int64_t i = 0; i < s_; ++i) v0[i] = uniform_pm1(st);
    double nrm = std::sqrt(dot(v0, v0, s_));
    for (int64_t i = 0; i < s_; ++i) v0[i] /= nrm;

    int nb = 1;      // basis vectors in V (columns 0..nb-1)
    int j = 0;       // column being computed
    int since_check = 0;
    int64_t restarts = 0;
    double norm_est = 0.0;  // running estimate of ‖G‖ for the breakdown test
    const int64_t nnz = c_.nnz();

    for (;;) {
      double* vj = V_.data() + static_cast<int64_t>(j) * s_;
      op_.apply(vj, w.data());
      info.steps++;
      orthogonalize(nb, w.data(), h.data(), h2.data());
      const double bj = std::sqrt(dot(w.data(), w.data(), s_));
      if (!restarted) {
        alpha[j] = h[j];
      } else {
        for (int i = 0; i <= j; ++i) H[i * (mb_ + 1) + j] = H[j * (mb_ + 1) + i] = h[i];
      }
      beta[j] = bj;
      const int m = j + 1;

      // Convergence checks cost O(m²) (tridiagonal) — skip some when the operator is cheap.
      // Keep the O(m²) QL check under ~10 % of the step cost (units: ~ns); skipping a check can
      // only overshoot by stride-1 steps.
      const double step_cost = 1.0 * nnz + 1.0 * s_ * m;
      const double check_cost = 8.0 * m * m;
      const int stride = restarted ? 5 : std::clamp(static_cast<int>(check_cost / (0.1 * step_cost)), 1, 8);
      const bool exhausted = nb == s_;
      const bool full = nb == mb_;
      ++since_check;
      norm_est = std::max(norm_est, std::fabs(h[j]) + bj);
      const bool breakdown = bj <= 1e-12 * norm_est;
      if (m >= std::min<int64_t>(k, s_) && (since_check >= stride || exhausted || full || breakdown)) {
        since_check = 0;
        Ritz rz = restarted ? ritz_dense(H, m, bj) : ritz_tridiagonal(alpha, beta, m, bj);
        const double theta1 = std::max(rz.theta[0], 0.0);
        bool converged = true;
        double worst = 0.0;
        const int need = static_cast<int>(std::min<int64_t>(k, m));
        for (int i = 0; i < need; ++i) {
          const double rel = theta1 > 0 ? rz.resid[i] / theta1 : 0.0;
          worst = std::max(worst, rel);
          if (!(rel <= opt_.tol)) converged = false;
        }
        if (exhausted || breakdown) {
          converged = true;
          worst = breakdown ? worst : 0.0;
          if (m < k && m < s_) short_krylov = true;
        }
        if (converged) {
          info.max_residual = std::max(info.max_residual, worst);
          info.restarts += restarts;
          std::vector<double> out(rz.theta.begin(), rz.theta.begin() + std::min<int64_t>(m, k));
          for (double& x : out) x = std::max(x, 0.0);
          return out;
        }
        if (full) {
          if (restarts >= opt_.max_restarts)
            throw std::runtime_error("Lanczos did not converge: relative residual " + std::to_string(worst) +
                                     " > tol " + std::to_string(opt_.tol) + " after " +
                                     std::to_string(restarts) + " restarts (basis " + std::to_string(mb_) +
                                     "); raise max_basis or tol");
          thick_restart(rz, m, bj, w.data(), H, restarted, alpha, beta);
          ++restarts;
          nb = static_cast<int>(keep_) + 1;
          j = static_cast<int>(keep_);
          continue;
        }
      }
      // Extend the basis.
      double* vn = V_.data() + static_cast<int64_t>(nb) * s_;
      for (int64_t i = 0; i < s_; ++i) vn[i] = w[i] / bj;
      ++nb;
      ++j;
    }
  }

 private:
  // w -= V(Vᵀw) twice (CGS2); h receives the total coefficients.
  void orthogonalize(int nb, double* w, double* h, double* h2) {
    for (int pass = 0; pass < 2; ++pass) {
      double* coef = pass == 0 ? h : h2;
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
    for (int i = 0; i < nb; ++i) h[i] += h2[i];
  }

  Ritz ritz_tridiagonal(const std::vector<double>& alpha, const std::vector<double>& beta, int m, double bj) {
    std::vector<double> d(alpha.begin(), alpha.begin() + m), e(m, 0.0), z(m, 0.0);
    for (int i = 0; i + 1 < m; ++i) e[i] = beta[i];
    z[m - 1] = 1.0;
    if (!tridiagonal_ql(m, d.data(), e.data(), z.data()))
      throw std::runtime_error("tridiagonal QL failed to converge inside Lanczos");
    std::vector<int> ord(m);
    std::iota(ord.begin(), ord.end(), 0);
    std::sort(ord.begin(), ord.end(), [&](int a, int b) { return d[a] > d[b]; });
    Ritz rz;
    for (int i : ord) {
      rz.theta.push_back(d[i]);
      rz.resid.push_back(std::fabs(bj * z[i]));
    }
    return rz;
  }

  Ritz ritz_dense(const std::vector<double>& H, int m, double bj) {
    std::vector<double> a(static_cast<size_t>(m) * m);
    for (int i = 0; i < m; ++i)
      for (int jj = 0; jj < m; ++jj) a[i * m + jj] = H[i * (mb_ + 1) + jj];
    std::vector<double> w, v;
    symmetric_eigen_jacobi(m, a.data(), w, v);
    last_vectors_ = v;
    Ritz rz;
    rz.theta = w;
    for (int i = 0; i < m; ++i) rz.resid.push_back(std::fabs(bj * v[(m - 1) * m + i]));
    return rz;
  }

  // Keep the top `keep_` Ritz vectors plus the residual direction (Wu–Simon thick restart).
  void thick_restart(const Ritz& /*rz*/, int m, double bj, const double* w, std::vector<double>& H,
                     bool& restarted, std::vector<double>& alpha, std::vector<double>& beta) {
    // Full eigenvectors of the projected matrix.
    std::vector<double> a(static_cast<size_t>(m) * m, 0.0);
    if (restarted) {
      for (int i = 0; i < m; ++i)
        for (int jj = 0; jj < m; ++jj) a[i * m + jj] = H[i * (mb_ + 1) + jj];
    } else {
      for (int i = 0; i < m; ++i) {
        a[i * m + i] = alpha[i];
        if (i + 1 < m) a[i * m + i + 1] = a[(i + 1) * m + i] = beta[i];
      }
    }
    std::vector<double> theta, Y;
    symmetric_eigen_jacobi(m, a.data(), theta, Y);
    keep_ = std::min<int64_t>(m - 2, std::max<int64_t>(opt_.k + 2, m / 2));
    keep_ = std::max<int64_t>(keep_, 1);
    // V_new[:, i] = V[:, :m] · Y[:, i]
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
    for (int64_t x = 0; x < s_; ++x) vr[x] = w[x] / bj;
    H.assign(static_cast<size_t>(mb_ + 1) * (mb_ + 1), 0.0);
    for (int64_t i = 0; i < keep_; ++i) {
      H[i * (mb_ + 1) + i] = theta[i];
      const double b = bj * Y[(m - 1) * m + i];
      H[i * (mb_ + 1) + keep_] = H[keep_ * (mb_ + 1) + i] = b;
    }
    restarted = true;
  }

  const CsrView& c_;
  SolveOptions opt_;
  int64_t s_;
  GramOperator op_;
  int threads_;
  int mb_;
  int64_t keep_ = 0;
  std::vector<double> V_;
  std::vector<double> last_vectors_;
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

// Eigenvalues of the Gram matrix of a connected (or isolated-node-padded) matrix `a`.
std::vector<double> solve_block(const CsrView& a, int64_t active_small_side, const SolveOptions& opt,
                                int threads, SolveInfo& info) {
  // Orient so that columns are the smaller side.
  CsrOwned t;
  CsrView c = a;
  if (a.n_rows < a.n_cols) {
    t = transpose(a);
    c = t.view();
  }
  if (active_small_side <= opt.dense_max || c.n_cols <= opt.dense_max) {
    info.dense_components++;
    return dense_gram_eigenvalues(c);
  }
  info.lanczos_components++;
  LanczosSolver solver(c, opt, threads);
  bool short_krylov = false;
  std::vector<double> ev = solver.solve(info, short_krylov);
  if (short_krylov) {
    // The Krylov space closed with fewer than k values: the rest are repeats we cannot resolve
    // with one vector. Fall back to the exact dense path when affordable.
    if (c.n_cols <= 4096) {
      info.dense_components++;
      return dense_gram_eigenvalues(c);
    }
    throw std::runtime_error("Lanczos found an invariant subspace with fewer than k eigenvalues on a "
                             "matrix too large for the dense fallback; use a smaller k");
  }
  return ev;
}

}  // namespace

std::vector<double> topk_singular_values_cpu(const CsrView& a, const SolveOptions& opt, SolveInfo* info_out) {
  SolveInfo info;
  const int threads = resolve_threads(opt.threads);
  std::vector<double> eig;  // Gram eigenvalues gathered over components
  if (a.nnz() > 0) {
    Components cc = connected_components(a);
    const int32_t ncomp = static_cast<int32_t>(cc.rows.size());
    info.components = ncomp;
    if (ncomp == 1) {
      const int64_t small = std::min(cc.rows[0], cc.cols[0]);
      const bool has_isolated = cc.rows[0] < a.n_rows || cc.cols[0] < a.n_cols;
      if (small <= opt.dense_max && has_isolated) {
        std::vector<int32_t> col_map(a.n_cols, -1);
        CsrOwned sub = extract_component(a, cc, 0, col_map);
        eig = solve_block(sub.view(), small, opt, threads, info);
      } else {
        eig = solve_block(a, small, opt, threads, info);
      }
    } else {
      std::vector<int32_t> col_map(a.n_cols, -1);
      for (int32_t id = 0; id < ncomp; ++id) {
        CsrOwned sub = extract_component(a, cc, id, col_map);
        std::vector<double> ev = solve_block(sub.view(), std::min(cc.rows[id], cc.cols[id]), opt, threads, info);
        if (static_cast<int64_t>(ev.size()) > opt.k) ev.resize(opt.k);
        eig.insert(eig.end(), ev.begin(), ev.end());
      }
    }
  }
  std::sort(eig.begin(), eig.end(), std::greater<double>());
  std::vector<double> sv(opt.k, 0.0);
  for (int i = 0; i < opt.k && i < static_cast<int>(eig.size()); ++i) sv[i] = std::sqrt(std::max(eig[i], 0.0));
  if (info_out) *info_out = info;
  return sv;
}

}  // namespace fspai
