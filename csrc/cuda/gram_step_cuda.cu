// Batched Gram step kernels (y = CᵀC x for many problems in one launch pair). See
// gram_step_cuda.cuh for the data layout and the determinism argument.
#include "gram_step_cuda.cuh"
#include "gram_lane.h"

#include <chrono>
#include <mutex>

#include "layer_spectra_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fspai {
namespace cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a sticky-free error so the next call starts clean
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
  }
}

void DeviceBuffer::resize(size_t bytes) {
  if (bytes <= n_) return;
  release();
  check(cudaMalloc(&p_, std::max<size_t>(bytes, 256)), "cudaMalloc");
  n_ = std::max<size_t>(bytes, 256);
}

void DeviceBuffer::release() noexcept {
  if (p_) cudaFree(p_);
  p_ = nullptr;
  n_ = 0;
}

PinnedBuffer::~PinnedBuffer() {
  if (p_) cudaFreeHost(p_);
}

void PinnedBuffer::reserve(size_t bytes) {
  if (bytes <= n_) return;
  if (p_) cudaFreeHost(p_);
  p_ = nullptr;
  n_ = 0;
  const size_t want = std::max<size_t>(bytes + bytes / 2, 4096);  // amortise growth
  check(cudaMallocHost(&p_, want), "cudaMallocHost");
  n_ = want;
}

namespace {

constexpr int kBlock = 256;
constexpr unsigned kFull = 0xffffffffu;

// One warp per warp slice of a task (gram_lane.h): task lookup, lane partial sums, and a
// fixed-order shuffle reduction within each row's lanes. meta: see gram_lane.h.
template <int Phase>
__global__ void __launch_bounds__(kBlock) gram_phase(const DeviceGramProblem* __restrict__ probs,
                                                     const int64_t* __restrict__ meta, int count,
                                                     const double* __restrict__ x, double* __restrict__ tmp,
                                                     double* __restrict__ y, int64_t total_warps) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= total_warps) return;  // uniform per warp
  const int64_t* woff = meta + (Phase == 1 ? 0 : count + 1);
  const int64_t* prob = meta + 2 * (count + 1);
  const int64_t* xoff = prob + count;
  const int64_t* toff = xoff + count;
  const int t = find_task(woff, count, warp);
  const DeviceGramProblem& P = probs[__ldg(prob + t)];
  const int64_t wl = warp - __ldg(woff + t);
  const double* in = Phase == 1 ? x + __ldg(xoff + t) : tmp + __ldg(toff + t);
  double* out = Phase == 1 ? tmp + __ldg(toff + t) : y + __ldg(xoff + t);
  LanePart lp = lane_partial(P, Phase, in, wl, lane);
  const int width = reduce_width(P, Phase);
  for (int o = width >> 1; o > 0; o >>= 1) lp.acc += __shfl_down_sync(kFull, lp.acc, o, width);
  if ((lane & (width - 1)) == 0 && lp.row >= 0) out[lp.row] = lp.acc;
}

__global__ void bitmap_kernel(const int64_t* __restrict__ rb, const int64_t* __restrict__ re,
                              const int32_t* __restrict__ idx, int32_t c0, int64_t rows, int64_t nw,
                              uint32_t* __restrict__ out) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  uint32_t* row = out + warp * nw;
  const int64_t b = rb[warp], e = re[warp];
  for (int64_t p = b + lane; p < e; p += 32) {
    const int64_t c = idx[p] - c0;
    atomicOr(row + (c >> 5), 1u << (c & 31));  // OR is order-independent: deterministic
  }
}

inline unsigned grid_for(int64_t warps) {
  const int64_t blocks = (warps * 32 + kBlock - 1) / kBlock;
  if (blocks > 0x7fffffffLL) throw std::runtime_error("CUDA Gram step: batch too large for one launch");
  return static_cast<unsigned>(std::max<int64_t>(blocks, 1));
}

}  // namespace

void build_bitmap(const int64_t* rb, const int64_t* re, const int32_t* idx, int32_t c0, int64_t rows, int64_t nw,
                  uint32_t* out, cudaStream_t stream) {
  if (rows <= 0 || nw <= 0) return;
  check(cudaMemsetAsync(out, 0, static_cast<size_t>(rows) * nw * sizeof(uint32_t), stream), "bitmap memset");
  bitmap_kernel<<<grid_for(rows), kBlock, 0, stream>>>(rb, re, idx, c0, rows, nw, out);
  check(cudaGetLastError(), "bitmap kernel launch");
}

CudaGramStepBatch::CudaGramStepBatch(std::vector<DeviceGramProblem> problems, int device, cudaStream_t stream)
    : host_(std::move(problems)), device_(device), stream_(stream) {
  for (const DeviceGramProblem& P : host_) {
    if (P.lanes1 < 1 || P.lanes1 > 32 || (P.lanes1 & (P.lanes1 - 1)) || P.lanes2 < 1 || P.lanes2 > 32 ||
        (P.lanes2 & (P.lanes2 - 1)))
      throw std::invalid_argument("CudaGramStepBatch: lanes per row must be a power of two in [1, 32]");
    if (P.route == kRouteBitmap && P.vtype != kValNone)
      throw std::invalid_argument("CudaGramStepBatch: the bitmap route is for pattern problems only");
  }
  bool any_csr = false, any_bitmap = false;
  for (const DeviceGramProblem& P : host_) (P.route == kRouteBitmap ? any_bitmap : any_csr) = true;
  route_name_ = any_bitmap && any_csr ? "cuda_mixed" : any_bitmap ? "cuda_bitmap" : "cuda_csr";
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (!host_.empty()) {
    probs_.resize(host_.size() * sizeof(DeviceGramProblem));
    check(cudaMemcpyAsync(probs_.as<void>(), host_.data(), host_.size() * sizeof(DeviceGramProblem),
                          cudaMemcpyHostToDevice, stream_),
          "upload problems");
    check(cudaStreamSynchronize(stream_), "upload problems");
  }
}

CudaGramStepBatch::~CudaGramStepBatch() = default;

double CudaGramStepBatch::bytes_per_round_estimate(int i) const {
  const DeviceGramProblem& P = host_.at(static_cast<size_t>(i));
  if (P.route == kRouteBitmap) return 4.0 * static_cast<double>(P.L * P.nw1 + P.s * P.nw2);
  return -1.0;  // CSR: depends on nnz, which the caller knows
}

void CudaGramStepBatch::stage(int count, const int* ids, const double* const* x, int64_t* xlen_out,
                              int64_t* tlen_out) {
  for (int t = 0; t < count; ++t)
    if (ids[t] < 0 || ids[t] >= size()) throw std::out_of_range("CudaGramStepBatch: problem id out of range");
  const StepMeta M = build_step_meta(host_, count, ids);  // task table shared with the host emulation
  meta_bytes_ = (M.meta.size() * sizeof(int64_t) + 15) / 16 * 16;
  const size_t stage_bytes = meta_bytes_ + static_cast<size_t>(M.xlen) * sizeof(double);
  hstage_.reserve(stage_bytes);
  int64_t* meta = hstage_.as<int64_t>();
  std::memcpy(meta, M.meta.data(), M.meta.size() * sizeof(int64_t));
  const int64_t* xoff = meta + 2 * (count + 1) + count;
  const int64_t* toff = xoff + count;
  double* xs = reinterpret_cast<double*>(reinterpret_cast<char*>(meta) + meta_bytes_);
  xoff_.assign(xoff, xoff + count);
  toff_.assign(toff, toff + count);
  for (int t = 0; t < count; ++t)
    std::memcpy(xs + xoff[t], x[t], static_cast<size_t>(host_[ids[t]].s) * sizeof(double));
  w1_ = M.w1;
  w2_ = M.w2;
  check(cudaSetDevice(device_), "cudaSetDevice");
  stage_.resize(stage_bytes);
  tmp_.resize(static_cast<size_t>(std::max<int64_t>(M.tlen, 1)) * sizeof(double));
  yd_.resize(static_cast<size_t>(std::max<int64_t>(M.xlen, 1)) * sizeof(double));
  check(cudaMemcpyAsync(stage_.as<void>(), meta, stage_bytes, cudaMemcpyHostToDevice, stream_), "upload x");
  *xlen_out = M.xlen;
  *tlen_out = M.tlen;
}

void CudaGramStepBatch::launch(int phase, int count) {
  const int64_t* dmeta = stage_.as<int64_t>();
  const double* dx = reinterpret_cast<const double*>(stage_.as<char>() + meta_bytes_);
  const DeviceGramProblem* dp = probs_.as<DeviceGramProblem>();
  const int64_t w = phase == 1 ? w1_ : w2_;
  if (w <= 0) return;
  if (phase == 1)
    gram_phase<1><<<grid_for(w), kBlock, 0, stream_>>>(dp, dmeta, count, dx, tmp_.as<double>(), yd_.as<double>(), w);
  else
    gram_phase<2><<<grid_for(w), kBlock, 0, stream_>>>(dp, dmeta, count, dx, tmp_.as<double>(), yd_.as<double>(), w);
  check(cudaGetLastError(), phase == 1 ? "Gram phase 1 launch" : "Gram phase 2 launch");
}

void CudaGramStepBatch::apply(int count, const int* ids, const double* const* x, double* const* y) {
  if (count <= 0) return;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t xlen = 0, tlen = 0;
  stage(count, ids, x, &xlen, &tlen);
  launch(1, count);
  launch(2, count);
  hy_.reserve(static_cast<size_t>(xlen) * sizeof(double));
  check(cudaMemcpyAsync(hy_.as<void>(), yd_.as<void>(), static_cast<size_t>(xlen) * sizeof(double),
                        cudaMemcpyDeviceToHost, stream_),
        "download y");
  check(cudaStreamSynchronize(stream_), "Gram step");
  const double* ys = hy_.as<double>();
  for (int t = 0; t < count; ++t)
    std::memcpy(y[t], ys + xoff_[t], static_cast<size_t>(host_[ids[t]].s) * sizeof(double));
  applications_ += count;
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  record_step(count, sec, static_cast<int64_t>(meta_bytes_) + xlen * 8, xlen * 8);
}

bool CudaGramStepBatch::half_norms(int count, const int* ids, const double* const* x, double* out) {
  if (count <= 0) return true;
  int64_t xlen = 0, tlen = 0;
  stage(count, ids, x, &xlen, &tlen);
  launch(1, count);
  hy_.reserve(static_cast<size_t>(tlen) * sizeof(double));
  check(cudaMemcpyAsync(hy_.as<void>(), tmp_.as<void>(), static_cast<size_t>(tlen) * sizeof(double),
                        cudaMemcpyDeviceToHost, stream_),
        "download C x");
  check(cudaStreamSynchronize(stream_), "half norms");
  const double* ts = hy_.as<double>();
  for (int t = 0; t < count; ++t) {
    const double* v = ts + toff_[t];
    const int64_t L = host_[ids[t]].L;
    double amax = 0.0;  // scaled sum of squares: no overflow whatever the magnitude
    for (int64_t r = 0; r < L; ++r) amax = std::max(amax, std::fabs(v[r]));
    double ss = 0.0;
    if (amax > 0.0)
      for (int64_t r = 0; r < L; ++r) ss += (v[r] / amax) * (v[r] / amax);
    out[t] = amax * std::sqrt(ss);
  }
  return true;
}

}  // namespace cuda
}  // namespace fspai
