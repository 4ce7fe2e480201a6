// CPU route selection: a cost model with constants measured on the reference machine.
//
// Model (ns, one thread; the lockstep driver applies 2 vectors per problem per round):
//   csr        = R · A_CSR · nnz                     (fused pass, 2 interleaved vectors)
//   dense_gram = B_POP · s²/2 · ⌈L/64⌉ + R · B_MV · s²  (popcount build + 2-vector dense mat-vecs)
// with R = expected rounds. Measurement method (tests/bench scripts outside the product; repeat
// 5×, median, same process): time GramStepBatch::apply for 2 vectors through the private binding
// `_core._gram_apply_bench` on random 0/1 masks of 512×4608, 256×2304, 1024×9216 and 4096×11008
// at 1 %, 10 %, 50 %, and divide by nnz (csr), by s² (dense mat-vec) and by s²/2·⌈L/64⌉ (build).
#include <algorithm>
#include <stdexcept>

#include "gram_routes.h"

namespace fspai {
namespace {

constexpr double A_CSR = 1.1;    // ns per nonzero per 2-vector fused pass
constexpr double B_MV = 0.16;    // ns per Gram entry per 2-vector dense mat-vec
constexpr double B_POP = 0.25;   // ns per AND+popcount word pair
constexpr double ROUNDS = 60.0;  // typical rounds to certification (measured 40–110)
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
      const double words = static_cast<double>((std::max(c.n_rows, c.n_cols) + 63) / 64);
      csr += ROUNDS * A_CSR * static_cast<double>(c.nnz());
      dense += B_POP * s * s * 0.5 * words + ROUNDS * B_MV * s * s;
      pat.push_back(c);
    }
    if (ok && dense < csr) return make_gram_dense_cpu(pat, threads);
  }
  return make_gram_csr_cpu(parts, want_pattern, want_weighted, threads);
}

}  // namespace fspai
