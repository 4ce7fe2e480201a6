// CPU route selection: a cost model with constants measured on the reference machine.
//
// Model (ns, one thread, large builds divided by the thread count; the lockstep driver applies 2
// vectors per problem per round):
//   csr        = R · (a · nnz + A_ROW · L)        fused pass; a = A_NNZ (pattern, 2 vectors),
//                                                  A_NNZ_W (|W|), A_NNZ_PAIR (2 pattern + 2 |W|),
//                                                  × A_BIG from s = 2048
//   dense_gram = pattern: s²/2 · (B_PAIR + B_WORD · ⌈L/64⌉) + R · (B_MV · s² + B_MV_ROW · s)
//                         (B_MV16 for a uint16 Gram, B_MV_BIG for a float32 one beyond L2)
//              + |W|:     B_UPD · Σ_long deg²/2 (or B_VISIT · tile visits, gram_tiles_pay)
//                         + B_ENTRY · s² + R · (B_MVD · s² + B_MV_ROW · s)
//                         (+ A_TRANSPOSE · nnz when the rows are the Gram side)
// with s the Gram side, L the other side and R = rounds_for(s), the expected rounds. One operator serves a batch,
// so the whole batch goes to one route. Measurement method (scripts outside the product; best of
// several × 10–200 calls, same process, threads=1): time GramStepBatch::apply for 2 vectors and
// the operator's construction through the private binding `_core._gram_apply` on random masks of
// 128×576 … 2048×4608 at 1 %, 3 %, 10 %, 50 %; divide by nnz and L (csr: 1.2–1.4 ns/nnz pattern,
// 1.5–1.6 weighted, plus a per-row cost that shows at 1 %), by s² (dense mat-vec: 0.12 ns float32
// at s = 512, 0.24 float64; 0.30 once G leaves L2), by s²/2 pairs (popcount build: 3.7, 7.3, 10.9,
// 12.3 ns/pair for 9, 18, 36, 72 words per bit row), by Σ deg²/2 (weighted build: 1.2 ns per
// update at s ≤ 512, 2.3 at 1024 for the scalar loop; 0.9–1.1 and 1.9 with 8-lane gather/scatter;
// the tiled build 10.5–14 ns per visit at 20–50 %, timed through the private hook
// _core._gram_dense) and s² (zeroing, mirror: 0.3 ns per entry while G ≤ 1 MiB,
// ~3 ns for a larger, freshly mapped G). Checked against whole solves of ResNet-34 layer shapes
// at 1–10 %, pattern and |W|: the model picks the faster route or one within ~10 % (the
// exceptions are 512×4608 near 2 %, where dense_gram is ~25 % faster and csr is picked, and ties
// below 0.2 ms). Large sides (same method, 1024×4608, 2048×5504, 4096×11008 at 1–10 %): csr
// 1.4–1.7 ns/nnz from s = 2048 (A_BIG), packed uint16 Gram mat-vec 0.13 ns per s² entry; whole solves
// agree with the pick except 1024×4608 at 3 % (dense_gram ~20 % faster). Priced for k = 2 (two
// starts); larger k favours dense_gram (more vectors per build).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "gram_routes.h"

namespace fspai {
namespace {

constexpr double A_NNZ = 1.25;   // ns per nonzero per 2-vector fused pass (pattern)
constexpr double A_NNZ_W = 1.6;  // ns per nonzero per 2-vector fused pass (weighted: values read and scaled)
constexpr double A_NNZ_PAIR = 2.0;  // ns per nonzero per 4-vector pass (2 pattern + 2 weighted)
constexpr double A_ROW = 2.0;    // ns per row of the long side per 2-vector fused pass
constexpr double B_MV = 0.125;   // ns per Gram entry per 2-vector dense mat-vec (4-row blocked kernel)
constexpr double B_MVD = 0.25;   // same with a float64 Gram (twice the bytes), G ≤ 4 MiB
constexpr double B_MVD_BIG = 0.31;  // float64 Gram beyond the L2 caches
constexpr double B_MV_ROW = 5.0; // ns per Gram row per 2-vector dense mat-vec (reductions, stores)
constexpr double B_PAIR = 4.0;   // ns per (i, j) Gram pair built (reduction, store, mirror)
constexpr double B_WORD = 0.12;  // ns per AND+popcount word of one pair
constexpr double B_UPD = 1.0;    // ns per scattered multiply-add of the weighted Gram build (8 lanes per
                                 // gather/scatter), G ≤ 2 MiB
constexpr double B_UPD_BIG = 2.0;  // same when G spills the L2 cache
constexpr double B_VISIT = 8.0;   // ns per 64-wide tile visit of the tiled |W| build (gram_tiles_pay): fitted
                                  // to whole threads=1 solves against csr (ResNet-34 512×4608 / 512×2304 /
                                  // 256×2304 at 50 %: dense_gram 1.3–2.2× faster; the build alone ran
                                  // 9.7–13 ns per visit while the csr pass ran 2.0–3.4 ns per entry)
constexpr double B_ENTRY = 0.3;  // ns per Gram entry zeroed and mirrored (weighted build), G ≤ 1 MiB
constexpr double B_ENTRY_BIG = 3.0;  // same for a freshly mapped G (page faults dominate)
constexpr double A_TRANSPOSE = 3.0;  // ns per nonzero of a transposed copy
constexpr double A_BIG = 1.3;    // CSR pass cost factor once the Gram side's x and y leave L1 (s ≥ 2048;
                                 // 1.6–1.7 ns/nnz measured at 4096×11008 against 1.25)
constexpr double B_MV16 = 0.13;  // ns per Gram entry (s²) per 2-vector mat-vec, packed uint16 lower triangle
constexpr double B_MV_BIG = 0.29;  // same with a float32 Gram beyond the L2 cache (s ≥ 1024, L ≥ 2^16)
// Typical 2-vector rounds to certification (block Lanczos with two starts): ~32 for ResNet-34
// layers (s = 512: 29–39; s = 128: 20–24; s = 256: 23–28), more for larger Gram sides, whose
// bulk-edge eigenvalues crowd closer (1024: 40–49, 2048: 38–45, 4096: ~44); modelled as
// 32·(s/512)^(1/4).
inline double rounds_for(double s) { return 32.0 * std::pow(std::max(1.0, s / 512.0), 0.25); }
constexpr int64_t DENSE_MAX_SIDE = 4096;    // pattern G in float32 ≤ 64 MiB
constexpr int64_t DENSE_MAX_SIDE_W = 2048;  // weighted G in float64 ≤ 32 MiB

bool dense_pattern_possible(const CsrView& c) {
  return gram_dim(c) <= DENSE_MAX_SIDE && std::max(c.n_rows, c.n_cols) < (int64_t(1) << 24);
}

// Σ over the long side's nodes of deg²/2: the multiply-adds of the weighted Gram build.
double half_sum_deg2(const CsrView& c) {
  if (c.n_rows >= c.n_cols) return gram_row_updates(c);
  std::vector<int64_t> deg(c.n_cols, 0);
  for (int64_t p = 0; p < c.nnz(); ++p) ++deg[c.indices[p]];
  double total = 0.0;
  for (int64_t d : deg) total += static_cast<double>(d) * (static_cast<double>(d) + 1.0);
  return 0.5 * total;
}

}  // namespace

std::unique_ptr<GramStepBatch> make_cpu_gram_step(const std::vector<CsrView>& parts, bool want_pattern,
                                                  bool want_weighted, int threads, const std::string& force_route) {
  if (force_route == "csr") return make_gram_csr_cpu(parts, want_pattern, want_weighted, threads);
  if (force_route == "dense_gram") {
    for (const CsrView& c : parts) {
      if (want_pattern && std::max(c.n_rows, c.n_cols) >= (int64_t(1) << 24))
        throw std::invalid_argument("route 'dense_gram': too many rows");
      if (gram_dim(c) > (int64_t(1) << 15))
        throw std::invalid_argument("route 'dense_gram': Gram side " + std::to_string(gram_dim(c)) +
                                    " is too large for a dense s×s matrix");
    }
    return make_gram_dense_cpu(parts, want_pattern, want_weighted, threads);
  }
  if (!force_route.empty()) throw std::invalid_argument("unknown route '" + force_route + "' (csr, dense_gram)");
  // Cost model over the whole batch (one operator serves it): every part on the fused CSR pass,
  // or every part as dense Grams.
  double csr = 0, dense = 0;
  // A Gram build of over ~1 ms splits into independent bands / blocks and scales with the threads
  // (1.7–1.9× on 2 cores); the per-round passes and mat-vecs, and small builds, gain far less
  // (1.2–1.4×, or nothing), so only large builds are divided by the thread count.
  auto build_time = [threads](double ns) { return threads > 1 && ns >= 1e6 ? ns / threads : ns; };
  for (const CsrView& c : parts) {
    const bool p = want_pattern, w = want_weighted && c.weighted();
    const int64_t side = gram_dim(c), other = std::max(c.n_rows, c.n_cols);
    const double s = static_cast<double>(side), L = static_cast<double>(other);
    const double nnz = static_cast<double>(c.nnz());
    if ((p && !dense_pattern_possible(c)) || (w && side > DENSE_MAX_SIDE_W))
      return make_gram_csr_cpu(parts, want_pattern, want_weighted, threads);
    const double a_nnz = (p && w ? A_NNZ_PAIR : w ? A_NNZ_W : A_NNZ) * (s >= 2048 ? A_BIG : 1.0);
    const double R = rounds_for(s);
    csr += R * (a_nnz * nnz + A_ROW * L);
    if (p) {
      // The storage gram_dense_cpu.cpp will use (uint16 packed, float32 beyond L2, float32 in L2).
      const double mv = pattern_gram_uint16(side, other) ? B_MV16 : side >= kGramUint16MinSide ? B_MV_BIG : B_MV;
      dense += build_time(s * s * 0.5 * (B_PAIR + B_WORD * std::ceil(L / 64.0))) + R * (mv * s * s + B_MV_ROW * s);
    }
    if (w) {
      const double upd = s <= 512 ? B_UPD : B_UPD_BIG, mvd = s <= 724 ? B_MVD : B_MVD_BIG;
      const double entry = s * s * 8.0 <= 1048576.0 ? B_ENTRY : B_ENTRY_BIG;
      const double updates = half_sum_deg2(c);
      const double build = gram_tiles_pay(updates, nnz, side) ? B_VISIT * gram_tile_visits(nnz, side) : upd * updates;
      dense += build_time(build + (c.n_rows < c.n_cols ? A_TRANSPOSE * nnz : 0.0)) + entry * s * s +
               R * (mvd * s * s + B_MV_ROW * s);
    }
  }
  if (!parts.empty() && dense < csr) return make_gram_dense_cpu(parts, want_pattern, want_weighted, threads);
  return make_gram_csr_cpu(parts, want_pattern, want_weighted, threads);
}

}  // namespace fspai
