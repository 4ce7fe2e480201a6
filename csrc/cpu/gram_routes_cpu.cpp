// CPU route selection: a cost model with constants measured on the reference machine.
//
// Model (ns, one thread; the lockstep driver applies 2 vectors per problem per round):
//   csr        = R · (A_NNZ · nnz + A_ROW · L)                 (fused pass, 2 interleaved vectors)
//   dense_gram = s²/2 · (B_PAIR + B_WORD · ⌈L/64⌉) + R · (B_MV · s² + B_MV_ROW · s)
//                (popcount build + dense mat-vecs)
// with s the Gram side, L the other side and R = expected rounds. Measurement method (scripts
// outside the product; best of 40 × 10 calls, same process, threads=1): time GramStepBatch::apply
// for 2 vectors and the operator's construction through the private binding `_core._gram_apply`
// on random 0/1 masks of 128×576, 256×1152, 512×2304 and 512×4608 at 1 %, 3 %, 10 %; divide by
// nnz and L (csr: 1.2–1.4 ns/nnz at 3–10 %, plus a per-row cost that shows at 1 %), by s² (dense
// mat-vec: 0.12 ns at s = 512, 0.14 at 256), by s²/2 pairs (build: 3.7, 7.3, 10.9, 12.3 ns/pair
// for 9, 18, 36, 72 words per bit row). Checked against whole solves of ResNet-34 layer shapes at
// 1–10 %: the model picks the faster route or one within ~10 % (the exceptions are
// 512×4608 near 2 %, where dense_gram is ~25 % faster and csr is picked, and ties below 0.2 ms).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "gram_routes.h"

namespace fspai {
namespace {

constexpr double A_NNZ = 1.25;   // ns per nonzero per 2-vector fused pass
constexpr double A_ROW = 2.0;    // ns per row of the long side per 2-vector fused pass
constexpr double B_MV = 0.125;   // ns per Gram entry per 2-vector dense mat-vec (4-row blocked kernel)
constexpr double B_MV_ROW = 5.0; // ns per Gram row per 2-vector dense mat-vec (reductions, stores)
constexpr double B_PAIR = 4.0;   // ns per (i, j) Gram pair built (reduction, store, mirror)
constexpr double B_WORD = 0.12;  // ns per AND+popcount word of one pair
constexpr double ROUNDS = 40.0;  // typical 2-vector rounds to certification (ResNet-34 layers: 23–66)
constexpr int64_t DENSE_MAX_SIDE = 4096;  // G in float32 ≤ 64 MiB

bool dense_possible(const CsrView& c) {
  return !c.weighted() && gram_dim(c) <= DENSE_MAX_SIDE && std::max(c.n_rows, c.n_cols) < (int64_t(1) << 24);
}

}  // namespace

std::unique_ptr<GramStepBatch> make_cpu_gram_step(const std::vector<CsrView>& parts, bool want_pattern,
                                                  bool want_weighted, int threads, const std::string& force_route) {
  bool any_weighted = false;
  for (const CsrView& c : parts) any_weighted = any_weighted || (want_weighted && c.weighted());
  const bool pattern_only = want_pattern && !any_weighted;
  if (force_route == "csr") return make_gram_csr_cpu(parts, want_pattern, want_weighted, threads);
  if (force_route == "dense_gram") {
    if (!pattern_only) throw std::invalid_argument("route 'dense_gram' serves 0/1 patterns only");
    std::vector<CsrView> pat;
    for (CsrView c : parts) {
      c.values = nullptr;
      c.vtype = ValueType::None;
      if (std::max(c.n_rows, c.n_cols) >= (int64_t(1) << 24)) throw std::invalid_argument("route 'dense_gram': too many rows");
      pat.push_back(c);
    }
    return make_gram_dense_cpu(pat, threads);
  }
  if (!force_route.empty()) throw std::invalid_argument("unknown route '" + force_route + "' (csr, dense_gram)");
  if (pattern_only && !parts.empty()) {
    double csr = 0, dense = 0;
    bool ok = true;
    std::vector<CsrView> pat;
    for (CsrView c : parts) {
      c.values = nullptr;
      c.vtype = ValueType::None;
      if (!dense_possible(c)) {
        ok = false;
        break;
      }
      const double s = static_cast<double>(gram_dim(c));
      const double L = static_cast<double>(std::max(c.n_rows, c.n_cols));
      const double words = std::ceil(L / 64.0);
      csr += ROUNDS * (A_NNZ * static_cast<double>(c.nnz()) + A_ROW * L);
      dense += s * s * 0.5 * (B_PAIR + B_WORD * words) + ROUNDS * (B_MV * s * s + B_MV_ROW * s);
      pat.push_back(c);
    }
    if (ok && dense < csr) return make_gram_dense_cpu(pat, threads);
  }
  return make_gram_csr_cpu(parts, want_pattern, want_weighted, threads);
}

}  // namespace fspai
