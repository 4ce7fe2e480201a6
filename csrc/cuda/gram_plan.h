// Host-side logic of the CUDA path, in plain C++ so that every build compiles it and the CPU test
// suite exercises it (csrc/cuda_plan.cpp, and its host emulation of the device arrays):
//  * the problem descriptor the GPU step kernels read (DeviceGramProblem),
//  * the per-layer plan (degree groups = the regular decomposition, column order, CSR pointers),
//  * how a layer and its subgraphs become Gram problems (orientation, slices, value scaling),
//  * how the driver's results are assembled into LayerSpectra.
// The device code (csrc/cuda/*.cu) only converts arrays and multiplies.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gram_step.h"
#include "layer_spectra.h"

namespace fspai {
namespace cuda {

enum : int32_t { kRouteCsr = 0, kRouteBitmap = 1 };
enum : int32_t { kValNone = 0, kValF32 = 1, kValF64 = 2 };

// One Gram problem G = CᵀC (dimension s; C has L rows), as two row passes over arrays in one
// memory space (device for the kernels, host for the emulation):
//   phase 1:  t[r] = Σ_{p ∈ [p1b[r], p1e[r])} c·v1[p] · x[p1i[p] − p1c0]      r < L   (t = c·C x)
//   phase 2:  y[j] = Σ_{p ∈ [p2b[j], p2e[j])} c·v2[p] · t[p2i[p] − p2c0]       j < s   (y = c·Cᵀ t)
// (v ≡ 1 for pattern problems). Route bitmap (pattern only): bm1 holds C as bit rows (L × nw1
// words, bit j of row r = C[r, j]) and bm2 holds Cᵀ (s × nw2 words).
// POD: copied to the device as is.
struct DeviceGramProblem {
  const int64_t* p1b = nullptr;
  const int64_t* p1e = nullptr;
  const int32_t* p1i = nullptr;
  const void* p1v = nullptr;
  const int64_t* p2b = nullptr;
  const int64_t* p2e = nullptr;
  const int32_t* p2i = nullptr;
  const void* p2v = nullptr;
  const uint32_t* bm1 = nullptr;
  const uint32_t* bm2 = nullptr;
  int64_t L = 0, s = 0;
  int64_t nw1 = 0, nw2 = 0;
  int64_t nnz = 0;
  int32_t p1c0 = 0, p2c0 = 0;
  int32_t lanes1 = 1, lanes2 = 1;  // lanes per row (power of two ≤ 32), fixed per problem
  int32_t vtype = kValNone;        // kValNone: the 0/1 pattern (values ignored)
  int32_t route = kRouteCsr;
  double vscale = 1.0;             // c (a power of two): see GramStepBatch::scale
};

// Process-wide counters of the GPU step operator and of its host twin (for benchmarks: how much of
// a solve is the step, transfers included, and how much is the host-side driver).
struct StepStats {
  int64_t rounds = 0;          // apply() calls (one launch pair each)
  int64_t vectors = 0;         // Gram applications (sum of `count`)
  double seconds = 0.0;        // wall time inside apply(), staging + transfers + kernels
  int64_t bytes_h2d = 0, bytes_d2h = 0;
};
StepStats step_stats(bool reset);

// Adds one apply() to the counters.
void record_step(int64_t vectors, double seconds, int64_t h2d, int64_t d2h);

// Lanes per row for a pass with `nnz` entries over `rows` rows: the power of two nearest the
// mean row length, clamped to [1, 32].
int32_t lanes_for(int64_t nnz, int64_t rows);

// Power of two c with c·vmax in [0.5, 1) (1 for vmax = 0), clamped to the normal double range:
// weighted problems are applied as c²·G so no weight in the finite range overflows or underflows.
double value_scale(double vmax);

// Pattern route for a whole-layer problem: "csr" or "bitmap" forced, or "auto" (cost model:
// bitmap when its bytes per step are under half the CSR's, about density > 1/16; bitmaps are
// L2-resident for LLM-sized layers).
bool want_bitmap(const std::string& route, int64_t nnz, int64_t L, int64_t s);

// want_bitmap for problem G; when true, G is switched to the bitmap route (route id and the
// bitmap row widths nw1, nw2 in 32-bit words). Shared by the device path and its host emulation.
bool take_bitmap_route(const std::string& route, DeviceGramProblem& G);

struct DegreeGroup {
  int64_t degree = 0;
  int32_t start = 0, size = 0;  // column range in B' = B[:, perm]
};

// Per-layer plan from the degree counts (the regular decomposition's rule, as in
// regular_groups(): input columns grouped by exact degree > 0, groups of >= min_nodes, ascending
// degree, columns ascending). perm puts each group's columns in one contiguous range (kept groups
// first, then the rest); empty perm = identity (no subgraphs). ptr / ptrT are the CSR row
// pointers of B' and B'ᵀ.
struct LayerPlan {
  std::vector<int32_t> perm;
  std::vector<DegreeGroup> groups;
  std::vector<std::vector<int32_t>> group_columns;  // original column ids of each group
  std::vector<int64_t> ptr, ptrT;
  std::vector<int32_t> gstart;  // groups.size() + 1 column starts in B' (last: end of kept groups)
  int64_t nnz = 0;
};
LayerPlan make_plan(const std::vector<int64_t>& row_deg, const std::vector<int64_t>& col_deg, bool subgraphs,
                    int min_nodes);

// Where a layer's converted arrays live (device or host): CSR of B' (ptr/idx/val) and of B'ᵀ
// (ptrT/idxT/valT, rows = permuted columns, entries ascending), and the group bounds
// bnd[q * n_rows + r] = first entry of row r of B' with column >= gstart[q], q = 0..groups.
struct LayerArrays {
  int64_t n_rows = 0, n_cols = 0;
  const int64_t* ptr = nullptr;
  const int32_t* idx = nullptr;
  const void* val = nullptr;
  const int64_t* ptrT = nullptr;
  const int32_t* idxT = nullptr;
  const void* valT = nullptr;
  const int64_t* bnd = nullptr;
  int32_t vtype = kValNone;
  double wmax = 0.0;  // max |W| on the support (for the value scale)
};

// Problem list order and meaning (group −1: the whole layer).
struct ProblemSlot {
  int layer = 0;
  int group = -1;
  bool weighted = false;
  bool whole_layer_pattern() const { return group < 0 && !weighted; }
};

// Builds every Gram problem of a batch (per layer: pattern, weighted, then per group: pattern,
// weighted; layers without edges get none) and initialises `res` (zero spectra, subgraph
// tables except n_out). Route is CSR everywhere; the caller may switch whole-layer pattern
// problems to the bitmap route (it owns the bitmaps).
void build_problems(const std::vector<LayerArrays>& arrays, const std::vector<LayerPlan>& plans,
                    const LayerSpectraOptions& opt, std::vector<DeviceGramProblem>* problems,
                    std::vector<ProblemSlot>* slots, std::vector<LayerSpectra>* res);

// Once the groups' n_out are in `res`: with opt.solve_invalid_subgraphs false, removes the
// problems of every group opt.skips_group() rejects and sets its spectra to NaN (k entries; wsv
// only where the layer is weighted), as layer_spectra() does on the CPU.
void drop_skipped_groups(const LayerSpectraOptions& opt, std::vector<DeviceGramProblem>* problems,
                         std::vector<ProblemSlot>* slots, std::vector<LayerSpectra>* res);

// Stores the driver's singular values (descending, padded with zeros to k) and statistics.
void assemble(const std::vector<ProblemSlot>& slots, const std::vector<std::vector<double>>& sigma,
              const std::vector<SolveInfo>& infos, int k, std::vector<LayerSpectra>* res);

// Host emulation of the whole CUDA pipeline on host CSR layers (for the CPU test suite): the
// same plan, the same problem descriptors evaluated by a host twin of the GPU step kernels, the
// same driver. `route` as for want_bitmap.
std::vector<LayerSpectra> layer_spectra_host_emulation(const std::vector<CsrView>& layers,
                                                       const LayerSpectraOptions& opt, const std::string& route);

// Diagnostics: every Gram problem of a batch applied ONCE by a step operator (one batched call,
// each problem twice with different x, as the driver's several starts do) plus half_norms of x1,
// so a test can compare the step with a dense reference problem by problem.
struct DebugApply {
  int layer = 0, group = -1;
  bool weighted = false;
  int64_t s = 0;
  double scale = 1.0;  // y = scale² · G x
  std::string route;
  std::vector<double> x1, y1, x2, y2;
  double half_norm = 0.0;  // ‖scale · C x1‖
};
std::vector<DebugApply> debug_apply_op(GramStepBatch& op, const std::vector<ProblemSlot>& slots,
                                       const std::vector<DeviceGramProblem>& probs, uint64_t seed);
std::vector<DebugApply> debug_apply_host_emulation(const std::vector<CsrView>& layers, const LayerSpectraOptions& opt,
                                                   const std::string& route, uint64_t seed);

}  // namespace cuda
}  // namespace fspai
