// Host-side logic of the CUDA path (csrc/cuda/gram_plan.h), compiled in every build, plus a host
// emulation of the device pipeline so the CPU test suite checks the plan, the problem
// descriptors, value scaling and result assembly against the CPU path. The emulation's step
// operator is the host twin of the GPU kernels in csrc/cuda/gram_step_cuda.cu (same descriptor
// semantics, sequential summation order).
#include <algorithm>
#include <chrono>
#include <mutex>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "cuda/gram_lane.h"
#include "cuda/gram_plan.h"
#include "gram_step.h"

namespace fspai {
namespace cuda {

namespace {
std::mutex g_stats_mutex;
StepStats g_stats;
}  // namespace

void record_step(int64_t vectors, double seconds, int64_t h2d, int64_t d2h) {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_stats.rounds += 1;
  g_stats.vectors += vectors;
  g_stats.seconds += seconds;
  g_stats.bytes_h2d += h2d;
  g_stats.bytes_d2h += d2h;
}

StepStats step_stats(bool reset) {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  StepStats s = g_stats;
  if (reset) g_stats = StepStats();
  return s;
}

int32_t lanes_for(int64_t nnz, int64_t rows) {
  if (rows <= 0) return 1;
  const double mean = static_cast<double>(nnz) / static_cast<double>(rows);
  int32_t g = 1;
  while (g < 32 && 2.0 * g <= mean * 1.5) g *= 2;  // nearest power of two (round up past 3/4)
  return g;
}

double value_scale(double vmax) {
  if (!(vmax > 0.0) || !std::isfinite(vmax)) return 1.0;
  int e = 0;
  std::frexp(vmax, &e);
  e = std::max(-1000, std::min(1000, e));
  return std::ldexp(1.0, -e);
}

bool want_bitmap(const std::string& route, int64_t nnz, int64_t L, int64_t s) {
  if (route == "csr") return false;
  const double nw1 = std::ceil(s / 32.0), nw2 = std::ceil(L / 32.0);
  const double bitmap_bytes = 4.0 * (L * nw1 + s * nw2);
  if (bitmap_bytes > double(1ull << 31)) return false;  // keep device memory bounded
  if (route == "bitmap") return true;
  const double csr_bytes = 8.0 * nnz + 16.0 * (L + s);
  return bitmap_bytes < 0.5 * csr_bytes;
}

bool take_bitmap_route(const std::string& route, DeviceGramProblem& G) {
  if (!want_bitmap(route, G.nnz, G.L, G.s)) return false;
  G.route = kRouteBitmap;
  G.nw1 = (G.s + 31) / 32;
  G.nw2 = (G.L + 31) / 32;
  return true;
}

LayerPlan make_plan(const std::vector<int64_t>& row_deg, const std::vector<int64_t>& col_deg, bool subgraphs,
                    int min_nodes) {
  LayerPlan P;
  const int64_t n_rows = static_cast<int64_t>(row_deg.size()), n_cols = static_cast<int64_t>(col_deg.size());
  if (subgraphs) {
    std::map<int64_t, std::vector<int32_t>> by_degree;
    for (int64_t c = 0; c < n_cols; ++c)
      if (col_deg[c] > 0) by_degree[col_deg[c]].push_back(static_cast<int32_t>(c));
    std::vector<char> used(n_cols, 0);
    for (auto& [deg, cols] : by_degree) {
      if (static_cast<int64_t>(cols.size()) < min_nodes) continue;
      P.groups.push_back({deg, static_cast<int32_t>(P.perm.size()), static_cast<int32_t>(cols.size())});
      for (int32_t c : cols) {
        P.perm.push_back(c);
        used[c] = 1;
      }
      P.group_columns.push_back(cols);
    }
    for (int64_t c = 0; c < n_cols; ++c)
      if (!used[c]) P.perm.push_back(static_cast<int32_t>(c));
  }
  for (const DegreeGroup& g : P.groups) P.gstart.push_back(g.start);
  P.gstart.push_back(P.groups.empty() ? 0 : P.groups.back().start + P.groups.back().size);
  P.ptr.assign(n_rows + 1, 0);
  for (int64_t r = 0; r < n_rows; ++r) P.ptr[r + 1] = P.ptr[r] + row_deg[r];
  P.ptrT.assign(n_cols + 1, 0);
  for (int64_t cp = 0; cp < n_cols; ++cp) P.ptrT[cp + 1] = P.ptrT[cp] + col_deg[P.perm.empty() ? cp : P.perm[cp]];
  P.nnz = P.ptr[n_rows];
  if (P.ptrT[n_cols] != P.nnz) throw std::runtime_error("fspai CUDA: row and column degree sums disagree");
  return P;
}

void build_problems(const std::vector<LayerArrays>& arrays, const std::vector<LayerPlan>& plans,
                    const LayerSpectraOptions& opt, std::vector<DeviceGramProblem>* problems,
                    std::vector<ProblemSlot>* slots, std::vector<LayerSpectra>* res) {
  const int nl = static_cast<int>(arrays.size());
  res->assign(nl, LayerSpectra());
  problems->clear();
  slots->clear();
  const std::vector<double> zeros(opt.solve.k, 0.0);
  for (int i = 0; i < nl; ++i) {
    const LayerArrays& A = arrays[i];
    const LayerPlan& P = plans[i];
    LayerSpectra& R = (*res)[i];
    const bool do_w = A.vtype != kValNone, do_p = opt.pattern || !do_w;
    const double c = do_w ? value_scale(A.wmax) : 1.0;
    if (do_p) R.sv = zeros;
    if (do_w) R.wsv = zeros;
    R.subgraphs.resize(P.groups.size());
    R.subgraph_columns = P.group_columns;
    auto add = [&](DeviceGramProblem G, int group) {
      if (do_p) {
        problems->push_back(G);
        slots->push_back({i, group, false});
      }
      if (do_w) {
        G.vtype = A.vtype;
        G.vscale = c;
        problems->push_back(G);
        slots->push_back({i, group, true});
      }
    };
    if (P.nnz > 0) {  // whole layer, Gram on its smaller side
      const bool cols_small = A.n_cols <= A.n_rows;
      DeviceGramProblem G;
      G.p1b = cols_small ? A.ptr : A.ptrT;
      G.p1i = cols_small ? A.idx : A.idxT;
      G.p1v = cols_small ? A.val : A.valT;
      G.p2b = cols_small ? A.ptrT : A.ptr;
      G.p2i = cols_small ? A.idxT : A.idx;
      G.p2v = cols_small ? A.valT : A.val;
      G.p1e = G.p1b + 1;
      G.p2e = G.p2b + 1;
      G.L = cols_small ? A.n_rows : A.n_cols;
      G.s = cols_small ? A.n_cols : A.n_rows;
      G.nnz = P.nnz;
      G.lanes1 = lanes_for(P.nnz, G.L);
      G.lanes2 = lanes_for(P.nnz, G.s);
      add(G, -1);
    }
    for (size_t q = 0; q < P.groups.size(); ++q) {
      const DegreeGroup& g = P.groups[q];
      SubgraphSpectra& S = R.subgraphs[q];
      S.degree = g.degree;
      S.n_in = g.size;
      S.nnz = g.degree * g.size;
      if (do_p) S.sv = zeros;
      if (do_w) S.wsv = zeros;
      // Gram on the smaller of (group columns, all outputs): the group's rows of B' are the slices
      // [bnd_q[r], bnd_{q+1}[r]) (column ids offset by the group start), its columns are rows
      // start..start+size of B'ᵀ.
      const int64_t* rb = A.bnd + q * A.n_rows;
      const int64_t* re = A.bnd + (q + 1) * A.n_rows;
      const int64_t* cb = A.ptrT + g.start;
      DeviceGramProblem G;
      G.nnz = S.nnz;
      if (g.size <= A.n_rows) {  // C = B'[:, group] (L = outputs, s = group columns)
        G.p1b = rb, G.p1e = re, G.p1i = A.idx, G.p1v = A.val, G.p1c0 = g.start, G.L = A.n_rows;
        G.p2b = cb, G.p2e = cb + 1, G.p2i = A.idxT, G.p2v = A.valT, G.p2c0 = 0, G.s = g.size;
      } else {  // C = B'[:, group]ᵀ (L = group columns, s = outputs; outputs without an edge add zeros)
        G.p1b = cb, G.p1e = cb + 1, G.p1i = A.idxT, G.p1v = A.valT, G.p1c0 = 0, G.L = g.size;
        G.p2b = rb, G.p2e = re, G.p2i = A.idx, G.p2v = A.val, G.p2c0 = g.start, G.s = A.n_rows;
      }
      G.lanes1 = lanes_for(S.nnz, G.L);
      G.lanes2 = lanes_for(S.nnz, G.s);
      add(G, static_cast<int>(q));
    }
  }
}

void drop_skipped_groups(const LayerSpectraOptions& opt, std::vector<DeviceGramProblem>* problems,
                         std::vector<ProblemSlot>* slots, std::vector<LayerSpectra>* res) {
  if (opt.solve_invalid_subgraphs) return;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<char>> skip(res->size());
  for (size_t i = 0; i < res->size(); ++i) {
    LayerSpectra& R = (*res)[i];
    skip[i].assign(R.subgraphs.size(), 0);
    for (size_t q = 0; q < R.subgraphs.size(); ++q) {
      SubgraphSpectra& S = R.subgraphs[q];
      if (!opt.skips_group(S.degree, S.n_in, S.n_out)) continue;
      skip[i][q] = 1;
      if (!S.sv.empty()) S.sv.assign(opt.solve.k, nan);
      if (!S.wsv.empty()) S.wsv.assign(opt.solve.k, nan);
    }
  }
  size_t w = 0;
  for (size_t j = 0; j < slots->size(); ++j) {
    const ProblemSlot& sl = (*slots)[j];
    if (sl.group >= 0 && skip[sl.layer][sl.group]) continue;
    (*slots)[w] = sl;
    (*problems)[w] = (*problems)[j];
    ++w;
  }
  slots->resize(w);
  problems->resize(w);
}

void assemble(const std::vector<ProblemSlot>& slots, const std::vector<std::vector<double>>& sigma,
              const std::vector<SolveInfo>& infos, int k, std::vector<LayerSpectra>* res) {
  if (sigma.size() != slots.size()) throw std::runtime_error("Lanczos driver returned a wrong number of results");
  for (size_t j = 0; j < slots.size(); ++j) {
    const ProblemSlot& sl = slots[j];
    std::vector<double> sv(k, 0.0);  // padded with zeros when the problem is smaller than k
    for (int q = 0; q < k && q < static_cast<int>(sigma[j].size()); ++q) sv[q] = sigma[j][q];
    LayerSpectra& R = (*res)[sl.layer];
    if (sl.group < 0) (sl.weighted ? R.wsv : R.sv) = sv;
    else (sl.weighted ? R.subgraphs[sl.group].wsv : R.subgraphs[sl.group].sv) = sv;
    if (j < infos.size()) (sl.weighted ? R.winfo : R.info).merge(infos[j]);
  }
}

StepMeta build_step_meta(const std::vector<DeviceGramProblem>& problems, int count, const int* ids) {
  StepMeta M;
  M.meta.assign(2 * static_cast<size_t>(count + 1) + 3 * static_cast<size_t>(count), 0);
  int64_t* w1off = M.meta.data();
  int64_t* w2off = w1off + count + 1;
  int64_t* prob = w2off + count + 1;
  int64_t* xoff = prob + count;
  int64_t* toff = xoff + count;
  for (int t = 0; t < count; ++t) {
    const DeviceGramProblem& P = problems.at(static_cast<size_t>(ids[t]));
    w1off[t] = M.w1;
    w2off[t] = M.w2;
    M.w1 += warps_for(P, 1);
    M.w2 += warps_for(P, 2);
    prob[t] = ids[t];
    xoff[t] = M.xlen;
    toff[t] = M.tlen;
    M.xlen += P.s;
    M.tlen += P.L;
  }
  w1off[count] = M.w1;
  w2off[count] = M.w2;
  return M;
}

// ---------------------------------------------------------------- host emulation
namespace {

// Host twin of gram_phase<Phase> in gram_step_cuda.cu: every warp of the phase, in order, with
// the same task table, lane partial sums (gram_lane.h) and shuffle-reduction order.
void emulate_phase(const std::vector<DeviceGramProblem>& probs, const StepMeta& M, int count, int phase,
                   const double* x, double* tmp, double* y) {
  const int64_t* meta = M.meta.data();
  const int64_t* woff = meta + (phase == 1 ? 0 : count + 1);
  const int64_t* prob = meta + 2 * (count + 1);
  const int64_t* xoff = prob + count;
  const int64_t* toff = xoff + count;
  const int64_t total = phase == 1 ? M.w1 : M.w2;
  for (int64_t warp = 0; warp < total; ++warp) {
    const int t = find_task(woff, count, warp);
    const DeviceGramProblem& P = probs[static_cast<size_t>(prob[t])];
    const int64_t wl = warp - woff[t];
    const double* in = phase == 1 ? x + xoff[t] : tmp + toff[t];
    double* out = phase == 1 ? tmp + toff[t] : y + xoff[t];
    double acc[32];
    int64_t row[32];
    for (int lane = 0; lane < 32; ++lane) {
      const LanePart lp = lane_partial(P, phase, in, wl, lane);
      acc[lane] = lp.acc;
      row[lane] = lp.row;
    }
    const int width = reduce_width(P, phase);
    gram_warp_reduce_host(acc, width);
    for (int lane = 0; lane < 32; lane += width)
      if (row[lane] >= 0) out[row[lane]] = acc[lane];
  }
}

class HostGramStepBatch final : public GramStepBatch {
 public:
  explicit HostGramStepBatch(std::vector<DeviceGramProblem> p) : p_(std::move(p)) {}
  int size() const override { return static_cast<int>(p_.size()); }
  int64_t dim(int i) const override { return p_.at(i).s; }
  const char* route() const override { return "cuda_host_emulation"; }
  double scale(int i) const override { return p_.at(i).vscale; }
  void apply(int count, const int* ids, const double* const* x, double* const* y) override {
    const auto t0 = std::chrono::steady_clock::now();
    const StepMeta M = stage(count, ids, x);
    emulate_phase(p_, M, count, 1, xs_.data(), ts_.data(), ys_.data());
    emulate_phase(p_, M, count, 2, xs_.data(), ts_.data(), ys_.data());
    const int64_t* xoff = M.meta.data() + 2 * (count + 1) + count;
    for (int t = 0; t < count; ++t) std::copy_n(ys_.data() + xoff[t], p_[ids[t]].s, y[t]);
    record_step(count, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0, 0);
  }
  bool half_norms(int count, const int* ids, const double* const* x, double* out) override {
    const StepMeta M = stage(count, ids, x);
    emulate_phase(p_, M, count, 1, xs_.data(), ts_.data(), ys_.data());
    const int64_t* toff = M.meta.data() + 2 * (count + 1) + 2 * count;
    for (int t = 0; t < count; ++t) {  // same order as CudaGramStepBatch::half_norms
      const double* v = ts_.data() + toff[t];
      const int64_t L = p_[ids[t]].L;
      double amax = 0.0, ss = 0.0;
      for (int64_t r = 0; r < L; ++r) amax = std::max(amax, std::fabs(v[r]));
      if (amax > 0.0)
        for (int64_t r = 0; r < L; ++r) ss += (v[r] / amax) * (v[r] / amax);
      out[t] = amax * std::sqrt(ss);
    }
    return true;
  }

 private:
  StepMeta stage(int count, const int* ids, const double* const* x) {
    StepMeta M = build_step_meta(p_, count, ids);
    // NaN-filled like uninitialised device memory: a row the kernels' mapping missed poisons the
    // result instead of silently reading 0.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    xs_.assign(static_cast<size_t>(M.xlen), 0.0);
    ts_.assign(static_cast<size_t>(std::max<int64_t>(M.tlen, 1)), nan);
    ys_.assign(static_cast<size_t>(std::max<int64_t>(M.xlen, 1)), nan);
    const int64_t* xoff = M.meta.data() + 2 * (count + 1) + count;
    for (int t = 0; t < count; ++t) std::copy_n(x[t], p_[ids[t]].s, xs_.data() + xoff[t]);
    return M;
  }
  std::vector<double> xs_, ts_, ys_;

  std::vector<DeviceGramProblem> p_;
};

// What the device conversion kernels produce, built on the host from a canonical CSR of B.
struct HostArrays {
  std::vector<int32_t> idx, idxT;
  std::vector<float> val32, valT32;
  std::vector<double> val64, valT64;
  std::vector<int64_t> bnd;
  std::vector<uint32_t> nout;
};

void bitmap_host(const int64_t* rb, const int64_t* re, const int32_t* idx, int64_t rows, int64_t nw,
                 std::vector<uint32_t>* out) {
  out->assign(static_cast<size_t>(rows * nw), 0u);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = rb[r]; p < re[r]; ++p) (*out)[r * nw + (idx[p] >> 5)] |= 1u << (idx[p] & 31);
}

}  // namespace

namespace {

// The host emulation's counterpart of the device conversion (owning every array the problem
// descriptors point into).
struct HostPrepared {
  std::vector<LayerPlan> plans;
  std::vector<HostArrays> H;
  std::vector<LayerArrays> A;
  std::vector<DeviceGramProblem> probs;
  std::vector<ProblemSlot> slots;
  std::vector<LayerSpectra> res;
  std::vector<std::vector<uint32_t>> bitmaps;
};

void prepare_host(const std::vector<CsrView>& layers, const LayerSpectraOptions& opt, const std::string& route,
                  HostPrepared& HP) {
  const int nl = static_cast<int>(layers.size());
  std::vector<LayerPlan>& plans = HP.plans;
  std::vector<HostArrays>& H = HP.H;
  std::vector<LayerArrays>& A = HP.A;
  plans.resize(nl);
  H.resize(nl);
  A.resize(nl);
  for (int i = 0; i < nl; ++i) {
    const CsrView& a = layers[i];
    std::vector<int64_t> rdeg(a.n_rows), cdeg(a.n_cols, 0);
    for (int64_t r = 0; r < a.n_rows; ++r) rdeg[r] = a.indptr[r + 1] - a.indptr[r];
    for (int64_t p = 0; p < a.nnz(); ++p) ++cdeg[a.indices[p]];
    LayerPlan& P = plans[i];
    P = make_plan(rdeg, cdeg, opt.subgraphs, opt.min_nodes);
    std::vector<int32_t> cp_of(a.n_cols);
    for (int64_t cp = 0; cp < a.n_cols; ++cp) cp_of[P.perm.empty() ? cp : P.perm[cp]] = static_cast<int32_t>(cp);
    HostArrays& h = H[i];
    const int32_t vt = a.vtype == ValueType::Float32 ? kValF32 : a.vtype == ValueType::Float64 ? kValF64 : kValNone;
    const int64_t nnz = a.nnz();
    h.idx.resize(nnz);
    h.idxT.resize(nnz);
    if (vt == kValF32) h.val32.resize(nnz), h.valT32.resize(nnz);
    if (vt == kValF64) h.val64.resize(nnz), h.valT64.resize(nnz);
    double wmax = 0.0;
    std::vector<int64_t> fillT(P.ptrT.begin(), P.ptrT.end() - 1);
    std::vector<std::pair<int32_t, int64_t>> row;  // (permuted column, source entry)
    for (int64_t r = 0; r < a.n_rows; ++r) {  // B' rows: entries sorted by permuted column
      row.clear();
      for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) row.push_back({cp_of[a.indices[p]], p});
      std::sort(row.begin(), row.end());
      int64_t q = P.ptr[r];
      for (const auto& [cp, p] : row) {
        const double v = std::fabs(a.value(p));
        wmax = std::max(wmax, v);
        const int64_t qt = fillT[cp]++;  // rows visited ascending: B'ᵀ rows come out sorted
        h.idx[q] = cp;
        h.idxT[qt] = static_cast<int32_t>(r);
        if (vt == kValF32) h.val32[q] = h.valT32[qt] = static_cast<float>(v);
        if (vt == kValF64) h.val64[q] = h.valT64[qt] = v;
        ++q;
      }
    }
    const size_t G = P.groups.size();
    if (G) {
      h.bnd.assign((G + 1) * a.n_rows, 0);
      h.nout.assign(G, 0);
      for (int64_t r = 0; r < a.n_rows; ++r) {
        int64_t p = P.ptr[r], prev = 0;
        for (size_t q = 0; q <= G; ++q) {
          while (p < P.ptr[r + 1] && h.idx[p] < P.gstart[q]) ++p;
          h.bnd[q * a.n_rows + r] = p;
          if (q > 0 && p > prev) ++h.nout[q - 1];
          prev = p;
        }
      }
    }
    LayerArrays& L = A[i];
    L.n_rows = a.n_rows;
    L.n_cols = a.n_cols;
    L.ptr = P.ptr.data();
    L.idx = h.idx.data();
    L.ptrT = P.ptrT.data();
    L.idxT = h.idxT.data();
    L.val = vt == kValF32 ? static_cast<const void*>(h.val32.data()) : h.val64.data();
    L.valT = vt == kValF32 ? static_cast<const void*>(h.valT32.data()) : h.valT64.data();
    L.bnd = h.bnd.data();
    L.vtype = vt;
    L.wmax = wmax;
  }
  std::vector<DeviceGramProblem>& probs = HP.probs;
  std::vector<ProblemSlot>& slots = HP.slots;
  std::vector<LayerSpectra>& res = HP.res;
  build_problems(A, plans, opt, &probs, &slots, &res);
  for (int i = 0; i < nl; ++i)
    for (size_t q = 0; q < plans[i].groups.size(); ++q) res[i].subgraphs[q].n_out = H[i].nout[q];
  drop_skipped_groups(opt, &probs, &slots, &res);
  std::vector<std::vector<uint32_t>>& bitmaps = HP.bitmaps;
  bitmaps.reserve(2 * probs.size());
  for (size_t j = 0; j < probs.size(); ++j) {
    DeviceGramProblem& G = probs[j];
    if (!slots[j].whole_layer_pattern() || !take_bitmap_route(route, G)) continue;
    bitmaps.emplace_back();
    bitmap_host(G.p1b, G.p1e, G.p1i, G.L, G.nw1, &bitmaps.back());
    G.bm1 = bitmaps.back().data();
    bitmaps.emplace_back();
    bitmap_host(G.p2b, G.p2e, G.p2i, G.s, G.nw2, &bitmaps.back());
    G.bm2 = bitmaps.back().data();
  }
}

}  // namespace

std::vector<LayerSpectra> layer_spectra_host_emulation(const std::vector<CsrView>& layers,
                                                       const LayerSpectraOptions& opt, const std::string& route) {
  HostPrepared HP;
  prepare_host(layers, opt, route, HP);
  if (HP.probs.empty()) return std::move(HP.res);
  HostGramStepBatch op(HP.probs);
  std::vector<SolveInfo> infos;
  const std::vector<std::vector<double>> sig = lanczos_topk_sv_batch(op, opt.solve, &infos);
  assemble(HP.slots, sig, infos, opt.solve.k, &HP.res);
  return std::move(HP.res);
}

std::vector<DebugApply> debug_apply_op(GramStepBatch& op, const std::vector<ProblemSlot>& slots,
                                       const std::vector<DeviceGramProblem>& probs, uint64_t seed) {
  const int n = op.size();
  std::vector<DebugApply> out(n);
  uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
  auto uniform = [&state]() {  // splitmix64 -> [-1, 1)
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53 * 2.0 - 1.0;
  };
  std::vector<int> ids;
  std::vector<const double*> xs;
  std::vector<double*> ys;
  for (int i = 0; i < n; ++i) {
    DebugApply& D = out[i];
    D.layer = slots[i].layer;
    D.group = slots[i].group;
    D.weighted = slots[i].weighted;
    D.s = op.dim(i);
    D.scale = op.scale(i);
    D.route = probs[i].route == kRouteBitmap ? "bitmap" : "csr";
    D.x1.resize(D.s);
    D.x2.resize(D.s);
    for (double& v : D.x1) v = uniform();
    for (double& v : D.x2) v = uniform();
    D.y1.assign(D.s, 0.0);
    D.y2.assign(D.s, 0.0);
  }
  for (int i = 0; i < n; ++i) {  // one batched step, every problem twice (ids repeat as in the driver)
    ids.push_back(i);
    xs.push_back(out[i].x1.data());
    ys.push_back(out[i].y1.data());
  }
  for (int i = n - 1; i >= 0; --i) {
    ids.push_back(i);
    xs.push_back(out[i].x2.data());
    ys.push_back(out[i].y2.data());
  }
  if (n == 0) return out;
  op.apply(static_cast<int>(ids.size()), ids.data(), xs.data(), ys.data());
  std::vector<double> norms(n);
  if (!op.half_norms(n, ids.data(), xs.data(), norms.data())) throw std::runtime_error("half_norms unsupported");
  for (int i = 0; i < n; ++i) out[i].half_norm = norms[i];
  return out;
}

std::vector<DebugApply> debug_apply_host_emulation(const std::vector<CsrView>& layers, const LayerSpectraOptions& opt,
                                                   const std::string& route, uint64_t seed) {
  HostPrepared HP;
  prepare_host(layers, opt, route, HP);
  HostGramStepBatch op(HP.probs);
  return debug_apply_op(op, HP.slots, HP.probs, seed);
}

}  // namespace cuda
}  // namespace fspai
