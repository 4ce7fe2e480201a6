// Top-k singular values of a CSR matrix B: components, the exact dense path, and the batched
// Lanczos driver (csrc/lanczos.cpp) over the CPU step operators (csrc/cpu/gram_*_cpu.cpp).
//
// Pipeline:
//  1. Connected components of the bipartite graph (a one-component fast path that grows the
//     component from the first row with column flags, else union-find over rows ∪ columns). Repeated
//     σ1 = σ2 across components (disconnected layers) is exact because each component is solved
//     on its own and the per-component values are merged; within a component λ1 of the Gram is
//     simple (Perron–Frobenius), and the driver's independent starts resolve repeats below it.
//  2. Components whose smaller side is ≤ dense_max use the exact dense path: scaled Gram
//     (csr_gram_dense), Householder tridiagonalisation + Sturm bisection for the top k; when some
//     σ_i < 1e-6·σ1 the eigenvectors are computed (Jacobi) and σ_i = ‖C y_i‖, which avoids the
//     √ε·σ1 floor of sqrt(λ_i).
//  3. Every other component becomes one problem of ONE batched, lockstep Lanczos solve:
//     the route orients it (Gram on the smaller side), served by the step operator that the
//     route factory (make_cpu_gram_step) picks, pattern and weighted problems sharing passes.
//
// Determinism: every operator and the driver are bit-identical for any thread count.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bit_pack.h"
#include "dense_eig.h"
#include "gram_routes.h"
#include "singular_values.h"

namespace fspai {
namespace {

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

// Fast path of connected_components for the common case, a layer that is one component (plus
// isolated nodes): grow a component from the first non-empty row with byte flags on the columns.
// A row whose entries meet a flagged column joins and flags all of its columns; once every used
// column is flagged, a row joins by its first entry. Rows that met no flagged column are visited
// again (a few sweeps). All rows joined: one component, exactly (every used column belongs to a
// joined row). Otherwise false, and the caller runs the general union-find. On a dense layer this
// is a few byte loads per entry, against a find-root chase per entry for the union-find (with the
// column flags, the components were ~7 % of a ResNet-34 512×4608 solve at 10 %; ~3 % now).
bool one_component(const CsrView& a, const std::vector<uint8_t>& col_used, int64_t used_cols, int64_t active_rows,
                   Components& out) {
  const int64_t m = a.n_rows, n = a.n_cols;
  if (active_rows == 0) return false;
  std::vector<uint8_t> in(n, 0);
  uint8_t* flag = in.data();
  const int32_t* idx = a.indices;
  const int64_t* ptr = a.indptr;
  int64_t flagged = 0, joined = 0;
  std::vector<int32_t> later;  // rows that met no flagged column when visited
  auto visit = [&](int64_t r) {  // true if row r (non-empty) joins
    const int64_t b = ptr[r], e = ptr[r + 1];
    if (flagged == used_cols) return true;  // saturated: its first entry is flagged
    bool meets = joined == 0;
    for (int64_t p = b; p < e && !meets; ++p) meets = flag[idx[p]] != 0;
    if (!meets) return false;
    for (int64_t p = b; p < e; ++p) {
      flagged += flag[idx[p]] == 0;
      flag[idx[p]] = 1;
    }
    return true;
  };
  for (int64_t r = 0; r < m; ++r) {
    if (ptr[r + 1] == ptr[r]) continue;
    if (visit(r)) ++joined;
    else later.push_back(static_cast<int32_t>(r));
  }
  for (int sweep = 0; sweep < 4 && !later.empty(); ++sweep) {
    size_t keep = 0;
    for (int32_t r : later) {
      if (visit(r)) ++joined;
      else later[keep++] = r;
    }
    if (keep == later.size()) break;  // no progress: more than one component (or a long chain)
    later.resize(keep);
  }
  if (joined != active_rows) return false;
  out.comp_of_row.assign(m, -1);
  out.comp_of_col.assign(n, -1);
  out.rows = {active_rows};
  out.cols = {used_cols};
  out.nnz = {a.nnz()};
  for (int64_t r = 0; r < m; ++r)
    if (ptr[r + 1] > ptr[r]) out.comp_of_row[r] = 0;
  for (int64_t c = 0; c < n; ++c)
    if (col_used[c]) out.comp_of_col[c] = 0;
  return true;
}

Components connected_components(const CsrView& a) {
  const int64_t m = a.n_rows, n = a.n_cols, total = m + n;
  if (total > INT32_MAX) throw std::invalid_argument("matrix has more than 2^31-1 rows + columns");
  std::vector<int32_t> parent(total);
  std::iota(parent.begin(), parent.end(), 0);
  // Which columns hold an entry: byte flags set by plain stores (an increment of a per-column
  // count, re-reading nnz through the aliasing pointer on every entry, took ~1 ns per entry: a
  // tenth of a 10 % 512×4608 solve).
  std::vector<uint8_t> col_used(n, 0);
  flag_indices(col_used.data(), a.indices, 0, a.nnz());
  int64_t active_rows = 0, comps = 0;
  for (int64_t r = 0; r < m; ++r) active_rows += a.indptr[r + 1] > a.indptr[r];
  for (int64_t c = 0; c < n; ++c) comps += col_used[c];
  if (Components one; one_component(a, col_used, comps, active_rows, one)) return one;
  comps += active_rows;
  // Rows merge into their columns' trees. Rows not yet scanned are singletons, so once
  // comps == 1 + (unscanned active rows) every column is in one tree and each remaining row
  // needs only its first edge (dense layers stop scanning almost at once).
  int64_t unscanned = active_rows;
  bool saturated = false;
  for (int64_t r = 0; r < m; ++r) {
    const int64_t b = a.indptr[r], e = a.indptr[r + 1];
    if (b == e) continue;
    --unscanned;
    int32_t rr = find_root(parent, static_cast<int32_t>(r));
    const int64_t stop = saturated ? b + 1 : e;
    for (int64_t p = b; p < stop; ++p) {
      int32_t cr = find_root(parent, static_cast<int32_t>(m + a.indices[p]));
      if (cr != rr) {
        if (cr < rr) std::swap(cr, rr);
        parent[cr] = rr;
        --comps;
      }
      if (!saturated && comps == 1 + unscanned) {
        saturated = true;
        break;
      }
    }
  }
  Components cc;
  cc.comp_of_row.assign(m, -1);
  cc.comp_of_col.assign(n, -1);
  std::vector<int32_t> id_of_root(total, -1);
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
    if (!col_used[c]) continue;
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

// ---------------------------------------------------------------- dense exact path
// Top-k σ (descending) of C (n_cols = s small): scaled Gram, eigenvalues, and ‖C y‖ for the
// small ones.
std::vector<double> dense_singular_values(const CsrView& c, bool weighted, int k) {
  const int64_t s = c.n_cols;
  const double sc = weighted ? value_scale(c) : 1.0;
  auto gram = [&]() { return csr_gram_dense(c, weighted, sc); };
  std::vector<double> g = gram();
  const int n = static_cast<int>(std::min<int64_t>(k, s));
  std::vector<double> w = symmetric_eigenvalues(static_cast<int>(s), g.data(), n);
  const double th1 = std::max(w.empty() ? 0.0 : w[0], 0.0);
  std::vector<double> sv(n);
  bool tiny = false;
  for (int i = 0; i < n; ++i) {
    sv[i] = std::sqrt(std::max(w[i], 0.0));
    if (w[i] < 1e-6 * th1) tiny = true;
  }
  if (tiny) {
    std::vector<double> g2 = gram(), w2, v2, y(s);
    symmetric_eigen_jacobi(static_cast<int>(s), g2.data(), w2, v2);
    for (int i = 0; i < n; ++i) {
      if (!(w2[i] < 1e-6 * th1)) continue;
      for (int64_t j = 0; j < s; ++j) y[j] = v2[j * s + i];
      sv[i] = csr_half_norm(c, weighted, sc, y.data());
    }
    std::sort(sv.begin(), sv.end(), std::greater<double>());
  }
  for (double& x : sv) x /= sc;
  return sv;
}

bool has_zero_value(const CsrView& a) {
  for (int64_t p = 0; p < a.nnz(); ++p)
    if (a.value(p) == 0.0) return true;
  return false;
}

void take_top(const std::vector<double>& sv, int k, std::vector<double>& into) {
  std::vector<double> sorted(sv);
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  into.insert(into.end(), sorted.begin(), sorted.begin() + std::min<size_t>(sorted.size(), k));
}

std::vector<double> finish(std::vector<double> sv, int k) {
  std::sort(sv.begin(), sv.end(), std::greater<double>());
  sv.resize(k, 0.0);
  return sv;
}

// Pattern (want_p) and/or weighted (want_w) top-k σ of `a`. Components are found on the 0/1
// pattern; when a weighted value is exactly 0 the weighted graph's components differ, so the two
// are solved separately.
// Drops empty rows and relabels the used columns 0..c-1 (isolated nodes do not change σ).
// O(nnz log nnz + n_rows): no array of the declared column count is ever allocated.
CsrOwned compact(const CsrView& a) {
  std::vector<int32_t> used(a.indices, a.indices + a.nnz());
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  CsrOwned out;
  out.n_cols = static_cast<int64_t>(used.size());
  out.indptr.push_back(0);
  out.indices.reserve(a.nnz());
  for (int64_t r = 0; r < a.n_rows; ++r) {
    const int64_t b = a.indptr[r], e = a.indptr[r + 1];
    if (b == e) continue;
    for (int64_t p = b; p < e; ++p) {
      out.indices.push_back(static_cast<int32_t>(std::lower_bound(used.begin(), used.end(), a.indices[p]) - used.begin()));
      out.push_value(a, p);
    }
    out.indptr.push_back(static_cast<int64_t>(out.indices.size()));
  }
  out.n_rows = static_cast<int64_t>(out.indptr.size()) - 1;
  return out;
}

void topk_cpu(const CsrView& a, bool want_p, bool want_w, const SolveOptions& opt, std::vector<double>* sv_p,
              std::vector<double>* sv_w, SolveInfo* info_p, SolveInfo* info_w) {
  const int threads = resolve_threads(opt.threads);
  // Per-node arrays (components, Lanczos vectors) are sized by the declared shape: a huge shape
  // with few entries is compacted first so that it costs O(nnz).
  if (a.n_cols > 4 * a.nnz() + 4096 || a.n_rows > 4 * a.nnz() + 4096) {
    CsrOwned c = compact(a);
    topk_cpu(c.view(), want_p, want_w, opt, sv_p, sv_w, info_p, info_w);
    return;
  }
  if (want_p && want_w && has_zero_value(a)) {
    CsrView pat = a;
    pat.values = nullptr;
    pat.vtype = ValueType::None;
    topk_cpu(pat, true, false, opt, sv_p, nullptr, info_p, nullptr);
    topk_cpu(a, false, true, opt, nullptr, sv_w, nullptr, info_w);
    return;
  }
  SolveInfo ip, iw;
  std::vector<double> all_p, all_w;
  std::vector<CsrOwned> owned;  // extracted / transposed parts (views point into these)
  std::vector<CsrView> parts;
  if (a.nnz() > 0) {
    Components cc = connected_components(a);
    const int32_t ncomp = static_cast<int32_t>(cc.rows.size());
    ip.components = iw.components = ncomp;
    owned.reserve(2 * static_cast<size_t>(ncomp));
    // Orient so that the columns are the smaller side (transposing when needed).
    auto oriented = [&](const CsrView& v) -> CsrView {
      if (v.n_rows >= v.n_cols) return v;
      owned.push_back(transpose(v, threads));
      return owned.back().view();
    };
    auto dense = [&](const CsrView& c) {
      if (want_p) {
        take_top(dense_singular_values(c, false, opt.k), opt.k, all_p);
        ip.dense_components++;
        ip.add_route("dense");
      }
      if (want_w) {
        take_top(dense_singular_values(c, true, opt.k), opt.k, all_w);
        iw.dense_components++;
        iw.add_route("dense");
      }
    };
    auto handle = [&](const CsrView& v, int64_t small) {
      if (small <= opt.dense_max) {
        dense(oriented(v));
      } else {
        parts.push_back(v);  // routes orient themselves (the dense Gram route needs no transpose)
      }
    };
    std::vector<int32_t> col_map;
    if (ncomp == 1) {
      const int64_t small = std::min(cc.rows[0], cc.cols[0]);
      const bool has_isolated = cc.rows[0] < a.n_rows || cc.cols[0] < a.n_cols;
      if (has_isolated && small <= opt.dense_max) {
        col_map.assign(a.n_cols, -1);
        CsrOwned sub = extract_component(a, cc, 0, col_map);
        handle(sub.view(), small);
      } else {
        handle(a, small);
      }
    } else {
      col_map.assign(a.n_cols, -1);
      for (int32_t id = 0; id < ncomp; ++id) {
        const int64_t small = std::min(cc.rows[id], cc.cols[id]);
        CsrOwned sub = extract_component(a, cc, id, col_map);
        if (small <= opt.dense_max) {
          dense(oriented(sub.view()));
        } else {
          // Keep only the oriented copy (the CSR route would otherwise transpose it again).
          if (sub.n_rows < sub.n_cols) sub = transpose(sub.view(), threads);
          owned.push_back(std::move(sub));
          parts.push_back(owned.back().view());
        }
      }
    }
  }
  if (!parts.empty()) {
    std::unique_ptr<GramStepBatch> op = make_cpu_gram_step(parts, want_p, want_w, threads, opt.route);
    std::vector<SolveInfo> infos;
    std::vector<std::vector<double>> sv = lanczos_topk_sv_batch(*op, opt, &infos);
    const std::vector<GramProblem> probs = gram_problems(parts, want_p, want_w);
    for (size_t i = 0; i < probs.size(); ++i) {
      SolveInfo& into = probs[i].weighted ? iw : ip;
      into.merge(infos[i]);
      take_top(sv[i], opt.k, probs[i].weighted ? all_w : all_p);
    }
  }
  if (want_p) {
    *sv_p = finish(all_p, opt.k);
    if (info_p) *info_p = ip;
  }
  if (want_w) {
    *sv_w = finish(all_w, opt.k);
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
