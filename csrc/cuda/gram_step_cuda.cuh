// The GPU step operator of the shared Lanczos driver: a batch of Gram operators G_i = C_iᵀC_i
// applied in ONE pair of kernel launches per driver round (see gram_step.h, GramStepBatch).
//
// Each problem (DeviceGramProblem, gram_plan.h) is two "row passes" over device arrays:
// t = c·C x (phase 1, rows of C), then y = c·Cᵀ t (phase 2, rows of Cᵀ). Phase 2 reads a CSR copy of Cᵀ, which turns the scatter of the CPU kernel into a gather: no
// atomics, and every output is summed by a fixed set of lanes in a fixed order, so results are
// bit-for-bit reproducible run to run and independent of which other problems share the batch.
// Rows are given by (begin, end) pointer arrays so a degree-group subgraph is a slice of the
// layer's arrays (rows restricted to a contiguous column range, no copy).
//
// Route "bitmap" (pattern problems only): C and Cᵀ as bit rows (1 bit per matrix entry, L2
// resident for LLM-sized layers); each warp sums x over the set bits of one row.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "gram_plan.h"
#include "gram_step.h"

namespace fspai {
namespace cuda {

void check(cudaError_t e, const char* what);  // throws std::runtime_error naming `what`

// RAII device allocation (plain cudaMalloc; never managed memory).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) { resize(bytes); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  void resize(size_t bytes);   // discards contents; grows only
  void release() noexcept;
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return n_; }
 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// Pinned host staging buffer (grow-only).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void reserve(size_t bytes);
  template <typename T> T* as() const { return static_cast<T*>(p_); }
 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};


// Bit rows of a CSR slice: out[r * nw + (c − c0) / 32] has bit (c − c0) % 32 set for every entry
// c of row r. `out` (rows × nw words) is zeroed here. Asynchronous on `stream`.
void build_bitmap(const int64_t* rb, const int64_t* re, const int32_t* idx, int32_t c0, int64_t rows, int64_t nw,
                  uint32_t* out, cudaStream_t stream);

class CudaGramStepBatch final : public GramStepBatch {
 public:
  // `problems` point into device memory that outlives this object. `route_name` is reported by
  // route() ("cuda_csr", "cuda_bitmap" or "cuda_mixed").
  CudaGramStepBatch(std::vector<DeviceGramProblem> problems, int device, cudaStream_t stream);
  ~CudaGramStepBatch() override;
  int size() const override { return static_cast<int>(host_.size()); }
  int64_t dim(int i) const override { return host_.at(static_cast<size_t>(i)).s; }
  void apply(int count, const int* ids, const double* const* x, double* const* y) override;
  const char* route() const override { return route_name_.c_str(); }
  // c_i: the power of two the problem's values are multiplied by (weighted problems are scaled
  // so that max c·|v| is in [0.5, 1): no overflow or underflow for weights anywhere in the
  // finite range). apply() therefore computes c_i² G_i x, as the seam specifies.
  double scale(int i) const override { return host_.at(static_cast<size_t>(i)).vscale; }
  // ‖C̃ x‖₂ per vector: phase 1 only, norms summed on the host in a fixed order.
  bool half_norms(int count, const int* ids, const double* const* x, double* out) override;

  int64_t applications() const { return applications_; }  // vectors applied so far
  double bytes_per_round_estimate(int i) const;             // device bytes one G_i x reads

 private:
  // Packs x and the task table into the pinned stage and uploads it; returns (xlen, tlen).
  void stage(int count, const int* ids, const double* const* x, int64_t* xlen, int64_t* tlen);
  void launch(int phase, int count);

  std::vector<DeviceGramProblem> host_;
  size_t meta_bytes_ = 0;
  int64_t w1_ = 0, w2_ = 0;
  DeviceBuffer probs_;     // DeviceGramProblem[size()]
  DeviceBuffer stage_;     // meta (int64) + x (double), uploaded in one copy
  DeviceBuffer tmp_;       // phase-1 results
  DeviceBuffer yd_;        // outputs
  PinnedBuffer hstage_, hy_;
  std::vector<int64_t> xoff_, toff_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::string route_name_;
  int64_t applications_ = 0;
};

}  // namespace cuda
}  // namespace fspai
