// Route "csr" / "csr_pair": the fused CSR step y = Cᵀ(C x), one pass over the indices per apply()
// for every vector of a part (pattern and weighted vectors, several starts of one problem).
//
// For each row r of C (the larger side): a_t = Σ_p v_t(p)·x_t[idx[p]] for every vector t, then
// y_t[idx[p]] += v_t(p)·a_t (v = 1 for the pattern, c·|w| for the weighted problem). The t
// vectors are interleaved (x[j·W + t]) so one index load and one cache line serve all of them.
//
// Determinism: rows are split into a number of chunks that depends only on the matrix (never on
// the thread count), each chunk accumulates into its own buffer, buffers are reduced in chunk
// order; so y is bit-identical for any thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "counting_sort.h"
#include "gram_routes.h"
#include "parallel.h"


namespace fspai {

std::vector<GramProblem> gram_problems(const std::vector<CsrView>& parts, bool want_pattern, bool want_weighted) {
  std::vector<GramProblem> out;
  for (size_t p = 0; p < parts.size(); ++p) {
    if (want_pattern) out.push_back({static_cast<int>(p), false});
    if (want_weighted && parts[p].weighted()) out.push_back({static_cast<int>(p), true});
  }
  return out;
}

double value_scale(const CsrView& c) {
  if (!c.weighted()) return 1.0;
  double mx = 0.0;
  const int64_t nnz = c.nnz();
  if (c.vtype == ValueType::Float32) {
    const float* v = static_cast<const float*>(c.values);
    float m32 = 0.0f;
    for (int64_t p = 0; p < nnz; ++p) m32 = std::max(m32, std::fabs(v[p]));
    mx = m32;
  } else {
    const double* v = static_cast<const double*>(c.values);
    for (int64_t p = 0; p < nnz; ++p) mx = std::max(mx, std::fabs(v[p]));
  }
  if (!(mx > 0.0) || !std::isfinite(mx)) return 1.0;
  int e = 0;
  std::frexp(mx, &e);  // mx = f·2^e, f ∈ [0.5, 1)
  return std::ldexp(1.0, -e);
}

double csr_half_norm(const CsrView& c, bool weighted, double scale, const double* x) {
  if (c.n_rows < c.n_cols) {  // x lives on the rows: ‖Aᵀx‖ by a scatter into the columns
    std::vector<double> z(c.n_cols, 0.0);
    for (int64_t r = 0; r < c.n_rows; ++r)
      for (int64_t p = c.indptr[r]; p < c.indptr[r + 1]; ++p)
        z[c.indices[p]] += (weighted ? scale * c.value(p) : 1.0) * x[r];
    double total = 0.0;
    for (double v : z) total += v * v;
    return std::sqrt(total);
  }
  double total = 0.0;
  for (int64_t r = 0; r < c.n_rows; ++r) {
    double a = 0.0;
    for (int64_t p = c.indptr[r]; p < c.indptr[r + 1]; ++p)
      a += (weighted ? scale * c.value(p) : 1.0) * x[c.indices[p]];
    total += a * a;
  }
  return std::sqrt(total);
}

namespace {

// Rows shorter than this on average are visited grouped by length (Part::order).
constexpr int64_t kShortRowLength = 24;
// A pass is cut into chunks of at least this many nonzeros (and 4 Gram-side lengths, the cost
// of merging a chunk's partial result); chunks run in parallel when threads > 1. The cut
// depends only on the matrix, never on the thread count, so results are the same for any
// thread count. 8k nonzeros (~10 µs of a 2-vector pass) outweigh opening a parallel region.
constexpr int64_t kMinChunkNnz = 8192;

struct Part {
  CsrView c;     // oriented: n_cols = Gram side
  CsrView orig;  // as given (value scale is computed on it)
  int64_t s = 0;
  std::vector<int64_t> bounds;  // chunk boundaries in pass order (positions in `order` when set)
  std::vector<int32_t> order;   // pass order of the rows (empty: 0..n_rows-1), see the constructor
  bool parallel = false;
};

// Row kernel for NP pattern and NW weighted vectors interleaved with stride W = NP + NW.
template <int NP, int NW, typename V>
void rows_kernel(const CsrView& c, const int32_t* ord, const V* val, double scale, int64_t r0, int64_t r1,
                 const double* x, double* y) {
  constexpr int W = NP + NW;
  const int64_t* ptr = c.indptr;
  const int32_t* idx = c.indices;
  for (int64_t k = r0; k < r1; ++k) {
    const int64_t r = ord ? ord[k] : k;
    const int64_t b = ptr[r], e = ptr[r + 1];
    double a0[W > 0 ? W : 1] = {}, a1[W > 0 ? W : 1] = {};
    int64_t p = b;
    for (; p + 2 <= e; p += 2) {
      const double* x0 = x + static_cast<int64_t>(idx[p]) * W;
      const double* x1 = x + static_cast<int64_t>(idx[p + 1]) * W;
      for (int t = 0; t < NP; ++t) {
        a0[t] += x0[t];
        a1[t] += x1[t];
      }
      if constexpr (NW > 0) {
        const double v0 = scale * std::fabs(static_cast<double>(val[p])), v1 = scale * std::fabs(static_cast<double>(val[p + 1]));
        for (int t = NP; t < W; ++t) {
          a0[t] += v0 * x0[t];
          a1[t] += v1 * x1[t];
        }
      }
    }
    for (; p < e; ++p) {
      const double* x0 = x + static_cast<int64_t>(idx[p]) * W;
      for (int t = 0; t < NP; ++t) a0[t] += x0[t];
      if constexpr (NW > 0) {
        const double v0 = scale * std::fabs(static_cast<double>(val[p]));
        for (int t = NP; t < W; ++t) a0[t] += v0 * x0[t];
      }
    }
    double a[W > 0 ? W : 1];
    for (int t = 0; t < W; ++t) a[t] = a0[t] + a1[t];
    for (p = b; p < e; ++p) {
      double* y0 = y + static_cast<int64_t>(idx[p]) * W;
      for (int t = 0; t < NP; ++t) y0[t] += a[t];
      if constexpr (NW > 0) {
        const double v0 = scale * std::fabs(static_cast<double>(val[p]));
        for (int t = NP; t < W; ++t) y0[t] += v0 * a[t];
      }
    }
  }
}

// W = 2 or 4 interleaved vectors as one GCC/Clang vector value (SSE2 / AVX, or split by the
// compiler where unavailable): one 16/32-byte load per gather and one load-add-store per
// scatter instead of W scalar ones. Lane t multiplies by 1 (pattern) or c·|w_p| (weighted; the
// stored value may be signed, see csr.h).
typedef double v2d __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

// Short rows by their length: f(std::integral_constant<int, L>) for 1 ≤ L ≤ 8 (true; also true,
// with nothing to do, for an empty row), false for longer rows (the caller's general loop).
template <typename F>
inline bool unrolled_row(int64_t length, F&& f) {
  switch (length) {
    case 0: return true;
    case 1: f(std::integral_constant<int, 1>{}); return true;
    case 2: f(std::integral_constant<int, 2>{}); return true;
    case 3: f(std::integral_constant<int, 3>{}); return true;
    case 4: f(std::integral_constant<int, 4>{}); return true;
    case 5: f(std::integral_constant<int, 5>{}); return true;
    case 6: f(std::integral_constant<int, 6>{}); return true;
    case 7: f(std::integral_constant<int, 7>{}); return true;
    case 8: f(std::integral_constant<int, 8>{}); return true;
    default: return false;
  }
}

// One row of exactly L entries (p = its first entry), fully unrolled: the same operations in the
// same order as the general loop of rows_vec (even/odd partial sums, then the scatter), so the
// result is bit-identical; only the loop control is gone. Rows visited grouped by length (Part::order)
// hit the same L row after row, so the dispatch below predicts well.
template <int L, int NP, int NW, typename VT, typename V>
inline void row_fixed(const int32_t* idx, const V* val, double scale, int64_t p, const double* x, double* y) {
  constexpr int W = NP + NW;
  VT m[L > 0 ? L : 1], xs[L > 0 ? L : 1];
  for (int t = 0; t < L; ++t) {
    std::memcpy(&xs[t], x + static_cast<int64_t>(idx[p + t]) * W, sizeof(VT));
    if constexpr (NW > 0) {
      const double v = scale * std::fabs(static_cast<double>(val[p + t]));
      for (int u = 0; u < W; ++u) m[t][u] = u < NP ? 1.0 : v;
    }
  }
  VT s0 = {}, s1 = {};
  for (int t = 0; t + 1 < L; t += 2) {
    if constexpr (NW == 0) {
      s0 += xs[t];
      s1 += xs[t + 1];
    } else {
      s0 += m[t] * xs[t];
      s1 += m[t + 1] * xs[t + 1];
    }
  }
  if constexpr (L % 2 == 1) {
    if constexpr (NW == 0) s0 += xs[L - 1];
    else s0 += m[L - 1] * xs[L - 1];
  }
  const VT a = s0 + s1;
  for (int t = 0; t < L; ++t) {
    double* yp = y + static_cast<int64_t>(idx[p + t]) * W;
    VT y0;
    std::memcpy(&y0, yp, sizeof(VT));
    if constexpr (NW == 0) y0 += a;
    else y0 += m[t] * a;
    std::memcpy(yp, &y0, sizeof(VT));
  }
}

template <int NP, int NW, typename VT, typename V>
void rows_vec(const CsrView& c, const int32_t* ord, const V* val, double scale, int64_t r0, int64_t r1,
              const double* x, double* y) {
  constexpr int W = NP + NW;
  static_assert(sizeof(VT) == W * sizeof(double), "vector width");
  const int64_t* ptr = c.indptr;
  const int32_t* idx = c.indices;
  // Lane multipliers, written through a reference (returning a 32-byte vector by value from a
  // non-AVX build would change the ABI: -Wpsabi).
  auto set_mult = [&](int64_t p, VT& m) {
    const double v = NW > 0 ? scale * std::fabs(static_cast<double>(val[p])) : 1.0;
    for (int t = 0; t < W; ++t) m[t] = t < NP ? 1.0 : v;
  };
  for (int64_t k = r0; k < r1; ++k) {
    const int64_t r = ord ? ord[k] : k;
    const int64_t b = ptr[r], e = ptr[r + 1];
    // Short rows (see Part::order): unrolled by length.
    if (ord && unrolled_row(e - b, [&](auto L) { row_fixed<decltype(L)::value, NP, NW, VT>(idx, val, scale, b, x, y); }))
      continue;
    VT s0 = {}, s1 = {};
    int64_t p = b;
    for (; p + 2 <= e; p += 2) {
      VT x0, x1;
      std::memcpy(&x0, x + static_cast<int64_t>(idx[p]) * W, sizeof(VT));
      std::memcpy(&x1, x + static_cast<int64_t>(idx[p + 1]) * W, sizeof(VT));
      if constexpr (NW == 0) {
        s0 += x0;
        s1 += x1;
      } else {
        VT m0, m1;
        set_mult(p, m0);
        set_mult(p + 1, m1);
        s0 += m0 * x0;
        s1 += m1 * x1;
      }
    }
    for (; p < e; ++p) {
      VT x0;
      std::memcpy(&x0, x + static_cast<int64_t>(idx[p]) * W, sizeof(VT));
      if constexpr (NW == 0) {
        s0 += x0;
      } else {
        VT m0;
        set_mult(p, m0);
        s0 += m0 * x0;
      }
    }
    const VT a = s0 + s1;
    for (p = b; p < e; ++p) {
      double* yp = y + static_cast<int64_t>(idx[p]) * W;
      VT y0;
      std::memcpy(&y0, yp, sizeof(VT));
      if constexpr (NW == 0) {
        y0 += a;
      } else {
        VT m0;
        set_mult(p, m0);
        y0 += m0 * a;
      }
      std::memcpy(yp, &y0, sizeof(VT));
    }
  }
}

// A row of exactly L entries for rows_pattern1, unrolled (same operations and order).
template <int L>
inline void row1_fixed(const int32_t* idx, int64_t p, const double* x, double* y) {
  double xs[L];
  for (int t = 0; t < L; ++t) xs[t] = x[idx[p + t]];
  double s[4] = {0, 0, 0, 0};
  int t = 0;
  for (; t + 4 <= L; t += 4)
    for (int u = 0; u < 4; ++u) s[u] += xs[t + u];
  for (; t < L; ++t) s[0] += xs[t];
  const double a = (s[0] + s[1]) + (s[2] + s[3]);
  for (int u = 0; u < L; ++u) y[idx[p + u]] += a;
}

// Single pattern vector: four independent gather chains (the common case, kept tight).
void rows_pattern1(const CsrView& c, const int32_t* ord, int64_t r0, int64_t r1, const double* x, double* y) {
  const int64_t* ptr = c.indptr;
  const int32_t* idx = c.indices;
  for (int64_t k = r0; k < r1; ++k) {
    const int64_t r = ord ? ord[k] : k;
    const int64_t b = ptr[r], e = ptr[r + 1];
    if (ord && unrolled_row(e - b, [&](auto L) { row1_fixed<decltype(L)::value>(idx, b, x, y); })) continue;
    int64_t p = b;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; p + 4 <= e; p += 4) {
      s0 += x[idx[p]];
      s1 += x[idx[p + 1]];
      s2 += x[idx[p + 2]];
      s3 += x[idx[p + 3]];
    }
    for (; p < e; ++p) s0 += x[idx[p]];
    const double a = (s0 + s1) + (s2 + s3);
    for (p = b; p < e; ++p) y[idx[p]] += a;
  }
}

class GramCsrCpu final : public GramStepBatch {
 public:
  GramCsrCpu(const std::vector<CsrView>& parts, bool want_pattern, bool want_weighted, int threads)
      : threads_(threads), problems_(gram_problems(parts, want_pattern, want_weighted)) {
    owned_.reserve(parts.size());
    for (const CsrView& given : parts) {
      Part P;
      P.orig = given;
      CsrView c = given;
      if (c.n_rows < c.n_cols) {  // the fused pass needs the smaller side as columns
        owned_.push_back(transpose(given, threads_));
        c = owned_.back().view();
      }
      P.c = c;
      P.s = c.n_cols;
      const int64_t nnz = c.nnz();
      // Short rows (a sparse layer's long side: ~5 entries per row at 1 % density) make the
      // row loops' exits mispredict. Visiting the rows grouped by length makes the trip counts
      // predictable: a 2-vector pass on 512×4608 went from 1.8 to 1.4 ns per nonzero at 1 % and
      // from 1.6 to 1.2 at 3 % (same-process A/B; long rows run at ~1.2). Any order gives the same
      // Gram product (each row adds its own rank-one term); the order is fixed by the matrix, so
      // results stay deterministic. Long rows keep the storage order (sequential streaming).
      if (c.n_rows > 0 && nnz < kShortRowLength * c.n_rows && c.n_rows <= INT32_MAX)
        P.order = order_by_key(c.n_rows, [&](int64_t r) { return c.indptr[r + 1] - c.indptr[r]; }).order;
      int64_t chunks = nnz / std::max<int64_t>(4 * P.s, kMinChunkNnz);
      chunks = std::clamp<int64_t>(chunks, 1, 16);
      P.bounds.push_back(0);
      if (P.order.empty()) {
        for (int64_t t = 1; t < chunks; ++t) {
          const int64_t target = nnz * t / chunks;
          const int64_t* it = std::lower_bound(c.indptr, c.indptr + c.n_rows + 1, target);
          P.bounds.push_back(std::max<int64_t>(P.bounds.back(), it - c.indptr));
        }
      } else {
        int64_t acc = 0, t = 1;
        for (int64_t k = 0; k < c.n_rows && t < chunks; ++k) {
          acc += c.indptr[P.order[k] + 1] - c.indptr[P.order[k]];
          if (acc >= nnz * t / chunks) {
            P.bounds.push_back(k + 1);
            ++t;
          }
        }
      }
      P.bounds.push_back(c.n_rows);
      P.parallel = threads_ > 1 && chunks > 1;
      parts_.push_back(std::move(P));
    }
    for (const GramProblem& g : problems_) {
      scale_.push_back(g.weighted ? value_scale(parts[g.part]) : 1.0);
      if (g.weighted) has_weighted_ = true;
      else has_pattern_ = true;
    }
  }

  int size() const override { return static_cast<int>(problems_.size()); }
  int64_t dim(int i) const override { return parts_[problems_[i].part].s; }
  double scale(int i) const override { return scale_[i]; }
  const char* route() const override { return has_pattern_ && has_weighted_ ? "csr_pair" : "csr"; }

  void apply(int count, const int* ids, const double* const* x, double* const* y) override {
    // Group the vectors by part (a counting sort into reused scratch: a batch of subgraphs has
    // hundreds of parts, and per-call vectors cost more than their small passes); within a part
    // run passes of up to 2 pattern + 2 weighted vectors, pattern first.
    const size_t np_ = parts_.size();
    head_.assign(np_ + 1, 0);
    for (int t = 0; t < count; ++t) ++head_[problems_[ids[t]].part + 1];
    for (size_t p = 0; p < np_; ++p) head_[p + 1] += head_[p];
    order_.resize(count);
    fill_.assign(head_.begin(), head_.end() - 1);
    for (int t = 0; t < count; ++t)
      if (!problems_[ids[t]].weighted) order_[fill_[problems_[ids[t]].part]++] = t;
    for (int t = 0; t < count; ++t)
      if (problems_[ids[t]].weighted) order_[fill_[problems_[ids[t]].part]++] = t;
    for (size_t p = 0; p < np_; ++p) {
      const int lo = head_[p], hi = head_[p + 1];
      if (lo == hi) continue;
      int mid = lo;  // [lo, mid) pattern vectors, [mid, hi) weighted ones
      while (mid < hi && !problems_[ids[order_[mid]]].weighted) ++mid;
      int ip = lo, iw = mid;
      while (ip < mid || iw < hi) {
        const int np = std::min(2, mid - ip), nw = std::min(2, hi - iw);
        sel_.assign(order_.begin() + ip, order_.begin() + ip + np);
        sel_.insert(sel_.end(), order_.begin() + iw, order_.begin() + iw + nw);
        pass(parts_[p], np, nw, sel_, ids, x, y);
        ip += np;
        iw += nw;
      }
    }
  }

  bool half_norms(int count, const int* ids, const double* const* x, double* out) override {
    for (int t = 0; t < count; ++t) {
      const GramProblem& g = problems_[ids[t]];
      out[t] = csr_half_norm(parts_[g.part].c, g.weighted, scale_[ids[t]], x[t]);  // oriented copy
    }
    return true;
  }

 private:
  template <typename Body>
  void run_chunks(const Part& P, int width, Body body, double* y) {
    const int64_t chunks = static_cast<int64_t>(P.bounds.size()) - 1;
    const int64_t len = width * P.s;
    if (chunks == 1) {
      std::fill(y, y + len, 0.0);
      body(0, P.c.n_rows, y);
      return;
    }
    // Chunk 0 accumulates in y itself, chunk t ≥ 1 in partial_[t − 1]; y += each in chunk order.
    if (static_cast<int64_t>(partial_.size()) < (chunks - 1) * len) partial_.assign((chunks - 1) * len, 0.0);
    for_each_index_dynamic(0, chunks, P.parallel, threads_, [&](int64_t t) {
      double* buf = t == 0 ? y : partial_.data() + (t - 1) * len;
      std::fill(buf, buf + len, 0.0);
      body(P.bounds[t], P.bounds[t + 1], buf);
    });
    const int64_t block = 4096;
    const int64_t nblocks = (len + block - 1) / block;
    for_each_index(0, nblocks, P.parallel, threads_, [&](int64_t b) {
      const int64_t lo = b * block, hi = std::min(len, lo + block);
      for (int64_t t = 1; t < chunks; ++t) {
        const double* buf = partial_.data() + (t - 1) * len;
        for (int64_t i = lo; i < hi; ++i) y[i] += buf[i];
      }
    });
  }

  template <int NP, int NW>
  void dispatch(const Part& P, double scale, const double* xi, double* yi) {
    constexpr int W = NP + NW;
    const CsrView& c = P.c;
    const int32_t* ord = P.order.empty() ? nullptr : P.order.data();
    if constexpr (NW == 0) {
      if constexpr (NP == 1) {
        run_chunks(P, 1, [&](int64_t r0, int64_t r1, double* buf) { rows_pattern1(c, ord, r0, r1, xi, buf); }, yi);
      } else if constexpr (NP == 2) {
        run_chunks(P, W, [&](int64_t r0, int64_t r1, double* buf) {
          rows_vec<2, 0, v2d, float>(c, ord, nullptr, 1.0, r0, r1, xi, buf);
        }, yi);
      } else {
        run_chunks(P, W, [&](int64_t r0, int64_t r1, double* buf) {
          rows_kernel<NP, 0, float>(c, ord, nullptr, 1.0, r0, r1, xi, buf);
        }, yi);
      }
    } else if (c.vtype == ValueType::Float32) {
      run_weighted(P, static_cast<const float*>(c.values), scale, xi, yi, std::integral_constant<int, NP>(),
                   std::integral_constant<int, NW>());
    } else {
      run_weighted(P, static_cast<const double*>(c.values), scale, xi, yi, std::integral_constant<int, NP>(),
                   std::integral_constant<int, NW>());
    }
  }

  template <int NP, int NW, typename V>
  void run_weighted(const Part& P, const V* v, double scale, const double* xi, double* yi, std::integral_constant<int, NP>,
                    std::integral_constant<int, NW>) {
    constexpr int W = NP + NW;
    const CsrView& c = P.c;
    const int32_t* ord = P.order.empty() ? nullptr : P.order.data();
    if constexpr (W == 2) {
      run_chunks(P, W, [&](int64_t r0, int64_t r1, double* buf) { rows_vec<NP, NW, v2d>(c, ord, v, scale, r0, r1, xi, buf); }, yi);
    } else if constexpr (W == 4) {
      run_chunks(P, W, [&](int64_t r0, int64_t r1, double* buf) { rows_vec<NP, NW, v4d>(c, ord, v, scale, r0, r1, xi, buf); }, yi);
    } else {
      run_chunks(P, W, [&](int64_t r0, int64_t r1, double* buf) { rows_kernel<NP, NW>(c, ord, v, scale, r0, r1, xi, buf); }, yi);
    }
  }

  void pass(const Part& P, int np, int nw, const std::vector<int>& sel, const int* ids, const double* const* x,
            double* const* y) {
    const int W = np + nw;
    const int64_t s = P.s;
    const double scale = nw > 0 ? scale_[ids[sel[np]]] : 1.0;
    for (int t = np + 1; t < W; ++t)
      if (scale_[ids[sel[t]]] != scale) throw std::logic_error("csr route: weighted vectors of one part must share a scale");
    const double* xi;
    double* yi;
    if (W == 1) {
      xi = x[sel[0]];
      yi = y[sel[0]];
    } else {
      xbuf_.resize(static_cast<size_t>(W) * s);
      ybuf_.resize(static_cast<size_t>(W) * s);
      for (int t = 0; t < W; ++t) xs_[t] = x[sel[t]];
      interleave(W, xs_, s, xbuf_.data());
      xi = xbuf_.data();
      yi = ybuf_.data();
    }
    switch (np * 3 + nw) {
      case 1: dispatch<0, 1>(P, scale, xi, yi); break;
      case 2: dispatch<0, 2>(P, scale, xi, yi); break;
      case 3: dispatch<1, 0>(P, scale, xi, yi); break;
      case 4: dispatch<1, 1>(P, scale, xi, yi); break;
      case 5: dispatch<1, 2>(P, scale, xi, yi); break;
      case 6: dispatch<2, 0>(P, scale, xi, yi); break;
      case 7: dispatch<2, 1>(P, scale, xi, yi); break;
      case 8: dispatch<2, 2>(P, scale, xi, yi); break;
      default: throw std::logic_error("csr route: bad vector grouping");
    }
    if (W > 1) {
      for (int t = 0; t < W; ++t) ys_[t] = y[sel[t]];
      deinterleave(W, ybuf_.data(), s, ys_);
    }
  }

  // x[j·W + t] = src[t][j] and back, with W a compile-time constant (vectorised shuffles; the
  // runtime-stride loops were ~8 % of a 1 % layer's pass).
  template <int W>
  static void interleave_w(const double* const* src, int64_t s, double* __restrict dst) {
    for (int64_t j = 0; j < s; ++j)
      for (int t = 0; t < W; ++t) dst[j * W + t] = src[t][j];
  }
  template <int W>
  static void deinterleave_w(const double* __restrict src, int64_t s, double* const* dst) {
    for (int t = 0; t < W; ++t) {
      double* __restrict d = dst[t];
      for (int64_t j = 0; j < s; ++j) d[j] = src[j * W + t];
    }
  }
  static void interleave(int W, const double* const* src, int64_t s, double* dst) {
    if (W == 2) return interleave_w<2>(src, s, dst);
    if (W == 3) return interleave_w<3>(src, s, dst);
    interleave_w<4>(src, s, dst);
  }
  static void deinterleave(int W, const double* src, int64_t s, double* const* dst) {
    if (W == 2) return deinterleave_w<2>(src, s, dst);
    if (W == 3) return deinterleave_w<3>(src, s, dst);
    deinterleave_w<4>(src, s, dst);
  }

  int threads_;
  std::vector<GramProblem> problems_;
  std::vector<Part> parts_;
  std::vector<CsrOwned> owned_;  // transposed copies (reserved up front: views stay valid)
  std::vector<double> scale_;
  bool has_pattern_ = false, has_weighted_ = false;
  std::vector<double> partial_, xbuf_, ybuf_;
  const double* xs_[4] = {};  // pass(): the W source / destination vectors
  double* ys_[4] = {};
  std::vector<int> head_, fill_, order_, sel_;  // apply() scratch
};

}  // namespace

std::unique_ptr<GramStepBatch> make_gram_csr_cpu(const std::vector<CsrView>& parts, bool want_pattern,
                                                 bool want_weighted, int threads) {
  return std::make_unique<GramCsrCpu>(parts, want_pattern, want_weighted, threads);
}

}  // namespace fspai
