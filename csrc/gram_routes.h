// Route selection for the CPU step operators: which GramStepBatch implementation serves which
// layer (fused CSR pass, dense Gram by AND+popcount, ...). The cost model and its measured
// constants live in csrc/cpu/gram_routes_cpu.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "csr.h"
#include "gram_step.h"

namespace fspai {

// Problem numbering of a batch built from `parts` (shared by every route and by callers):
// part p contributes, in this order, its pattern problem (if want_pattern) and its weighted
// problem (if want_weighted and the part has values). Parts may come in either orientation:
// the Gram is formed on the SMALLER side, dim = min(n_rows, n_cols) (a route that needs the
// other orientation makes its own copy). The views (and the buffers they point into) must
// outlive the operator.
struct GramProblem {
  int part = 0;
  bool weighted = false;
};
std::vector<GramProblem> gram_problems(const std::vector<CsrView>& parts, bool want_pattern, bool want_weighted);

// Route names accepted by `force_route` (empty: choose by the cost model).
//   "csr"        fused CSR pass y = Cᵀ(Cx), any values, any density;
//   "dense_gram" s×s Gram built once — AND+popcount on bit-packed rows for patterns (float32
//                counts, exact below 2^24; uint16 for large s), float64 outer products of the
//                rows for |W| —
//                steps are dense symmetric mat-vecs.
std::unique_ptr<GramStepBatch> make_cpu_gram_step(const std::vector<CsrView>& parts, bool want_pattern,
                                                  bool want_weighted, int threads,
                                                  const std::string& force_route = "");

// Power of two c with c·max|v| ∈ [0.5, 1) (1 for patterns): the pre-scaling every CPU route
// applies to weighted problems (GramStepBatch::scale).
double value_scale(const CsrView& c);
// ‖c̃·C x‖₂ with c̃ = scale for the weighted matrix, 1 for the pattern (sequential, fixed order),
// where C is `c` oriented with the smaller side as columns (x has min(n_rows, n_cols) entries).
double csr_half_norm(const CsrView& c, bool weighted, double scale, const double* x);
// The Gram side of a part.
inline int64_t gram_dim(const CsrView& c) { return c.n_rows < c.n_cols ? c.n_rows : c.n_cols; }

// Storage of a pattern's dense Gram (gram_dense_cpu.cpp; priced by the cost model): uint16 counts
// (exact: a count is at most L < 2^16) in a packed lower triangle once a float32 Gram would leave
// the L2 cache (s ≥ 1024), where the mat-vec streams G from memory (a quarter of the bytes); an
// L2-resident Gram stays full float32 (one conversion instruction per 8 entries instead of two).
constexpr int64_t kGramUint16MinSide = 1024;
inline bool pattern_gram_uint16(int64_t s, int64_t L) { return s >= kGramUint16MinSide && L < (int64_t(1) << 16); }

// Concrete constructors (csrc/cpu/gram_<route>_cpu.cpp).
std::unique_ptr<GramStepBatch> make_gram_csr_cpu(const std::vector<CsrView>& parts, bool want_pattern,
                                                 bool want_weighted, int threads);
std::unique_ptr<GramStepBatch> make_gram_dense_cpu(const std::vector<CsrView>& parts, bool want_pattern,
                                                   bool want_weighted, int threads);

// Dense s×s Gram c̃²·CᵀC (row-major, float64) of `c` oriented with the Gram side as columns
// (n_cols = s; rows are the long side): Σ over rows of the outer product of the row's values
// (1 for the pattern, scale·|v| weighted), upper triangle accumulated in row order, then mirrored.
// With threads > 1 and at least kParallelGramUpdates multiply-adds, bands of G rows are filled in
// parallel; every entry still sums its terms in row order, so the result does not depend on the
// thread count. Shared by the dense_gram route and the exact dense path of tiny components.
// Rows with many entries are built by 64×64 tiles instead (AVX-512 + FMA builds; same result to
// the bit): work ∝ entries × column blocks rather than Σ deg². gram_tiles_pay is the rule, shared by
// the build and the route cost model: `updates` = Σ over the long side's nodes of deg(deg+1)/2,
// one tile visit (8 vector FMAs) costs about 12 scattered updates (7 once G leaves the L2 cache).
constexpr double kParallelGramUpdates = 1 << 19;  // ~0.5 ms of scattered updates
constexpr int64_t kGramTile = 64;
inline double gram_tile_visits(double nnz, int64_t s) {
  return nnz * 0.5 * static_cast<double>((s + kGramTile - 1) / kGramTile + 1);
}
bool gram_tiles_pay(double updates, double nnz, int64_t s);
// Σ over c's rows of deg(deg+1)/2: the scattered multiply-adds csr_gram_dense does on c.
double gram_row_updates(const CsrView& c);
enum class GramBuild { Auto, Scatter, Tiles };  // Auto: by gram_tiles_pay (the others: tests)
std::vector<double> csr_gram_dense(const CsrView& c, bool weighted, double scale, int threads = 1,
                                   GramBuild build = GramBuild::Auto);

}  // namespace fspai
