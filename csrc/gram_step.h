// The step-operator seam: everything an eigen-solver needs from a matrix, nothing more.
//
// The Lanczos driver (csrc/lanczos.cpp) owns the algorithm — start vectors, orthogonalisation,
// restarts, certification, stopping — and talks to matrices only through GramStepBatch. Step
// operators (CPU routes in csrc/cpu/gram_<route>_cpu.cpp, GPU ones in csrc/cuda/) contain no
// eigen-solver logic: they multiply.
#pragma once
#include <cstdint>
#include <vector>

#include "singular_values.h"  // SolveOptions, SolveInfo

namespace fspai {

// A batch of b symmetric positive semi-definite operators G_0..G_{b-1}: the Gram matrices CᵀC of
// CSR layers, of a layer's subgraphs, of the pattern and |W| of one layer, or of many candidate
// masks. They are applied together so an implementation can share one pass over memory (one
// index stream for pattern+weighted, disjoint column sets for subgraphs, one kernel launch on GPU).
class GramStepBatch {
 public:
  virtual ~GramStepBatch() = default;
  virtual int size() const = 0;              // b
  virtual int64_t dim(int i) const = 0;      // vector length s_i of problem i (its smaller side)
  // For t < count: y[t] = G_{ids[t]} x[t]. ids may repeat (several vectors of one problem).
  // x[t], y[t] are HOST arrays of length dim(ids[t]) (a device implementation copies them; the
  // matrices themselves stay where they live). Must be deterministic: the same x gives
  // bit-identical y whatever the thread count.
  virtual void apply(int count, const int* ids, const double* const* x, double* const* y) = 0;
  virtual const char* route() const = 0;     // "csr", "csr_pair", "dense_gram", "bitmap", "cuda_csr", ...

  // ---- optional members (defaults are correct for an operator that does not override them)

  // Problem i is applied pre-scaled: apply() computes G̃_i = c_i² · G_i with c_i = scale(i), a
  // power of two chosen by the operator so that neither G̃_i x nor the intermediate C x can
  // overflow or underflow (weights anywhere in the finite double range). The drivers return
  // the spectrum of the UNSCALED G_i (σ = σ̃ / c_i), so callers never see c_i.
  virtual double scale(int /*i*/) const { return 1.0; }

  // out[t] = ‖C̃_{ids[t]} x[t]‖₂ (C̃ = c·C, same scaling as apply) for the final Ritz vectors.
  // Gives σ of small singular values without the square-root loss of sqrt(xᵀG̃x): the Gram
  // eigenvalue carries an absolute error ≈ ε·σ1², so sqrt loses half the digits when σ ≪ σ1,
  // while ‖C x‖ is accurate to ≈ ε·σ1. Return false when not supported (the driver then uses
  // sqrt of the Ritz value, which is accurate for σ_i ≥ 1e-3·σ1).
  virtual bool half_norms(int /*count*/, const int* /*ids*/, const double* const* /*x*/, double* /*out*/) {
    return false;
  }
};

// One certified top-k Lanczos per problem, advanced in lockstep: each round calls op.apply once for
// all unconverged problems. Returns the top-k eigenvalues of each G_i (descending; fewer when the
// problem's dimension is smaller). Throws std::runtime_error when it cannot certify.
// (info, if given, is resized to op.size() and receives per-problem statistics.)
std::vector<std::vector<double>> lanczos_topk_batch(GramStepBatch& op, const SolveOptions& opt,
                                                    std::vector<SolveInfo>* info);

// Same solve, returning singular values σ_i = sqrt(λ_i(G_i)) (descending), computed without
// overflow for any finite scale (eigenvalues of a weighted Gram can exceed the double range
// when weights are ~1e200) and, where the operator supports half_norms, without square-root
// loss for tiny σ. This is what the CPU and GPU front ends call.
std::vector<std::vector<double>> lanczos_topk_sv_batch(GramStepBatch& op, const SolveOptions& opt,
                                                       std::vector<SolveInfo>* info);

}  // namespace fspai
