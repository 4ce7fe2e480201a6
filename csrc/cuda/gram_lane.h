// The per-lane work of the GPU Gram step, shared verbatim by the CUDA kernel
// (csrc/cuda/gram_step_cuda.cu) and its host emulation (csrc/cuda_plan.cpp), so the CPU test suite
// runs the same task lookup, row/lane mapping and summation order as the device; only the warp
// shuffle is emulated on the host (gram_warp_reduce_host).
//
// A step over `count` vectors runs, per phase, one warp per "warp slice" of every task: the task
// table (meta, built by build_step_meta) holds, as int64:
//   w1off[count+1] | w2off[count+1] | prob[count] | xoff[count] | toff[count]
// (warp prefixes of phase 1 and 2, problem id, offsets of the vector in the packed x/y and t
// buffers). CSR slices: `lanes` lanes per row, 32/lanes rows per warp; bitmap: one row per warp.
#pragma once
#include <cstdint>
#include <vector>

#include "gram_plan.h"

#if defined(__CUDACC__)
#define FSPAI_HD __host__ __device__ __forceinline__
#else
#define FSPAI_HD inline
#endif

namespace fspai {
namespace cuda {

FSPAI_HD int lane_ffs(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __ffs(static_cast<int>(b));
#else
  return __builtin_ffs(static_cast<int>(b));
#endif
}

// Read-only loads (the read-only data cache on the device).
template <typename T>
FSPAI_HD T lane_load(const T* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

FSPAI_HD double lane_value(const void* v, int32_t vtype, int64_t p) {
  if (vtype == kValF32) return static_cast<double>(lane_load(static_cast<const float*>(v) + p));
  if (vtype == kValF64) return lane_load(static_cast<const double*>(v) + p);
  return 1.0;
}

// Largest t with off[t] <= w (off[0] = 0, off non-decreasing, w < off[count]).
FSPAI_HD int find_task(const int64_t* off, int count, int64_t w) {
  int lo = 0, hi = count;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (lane_load(off + mid) <= w) lo = mid;
    else hi = mid;
  }
  return lo;
}

// Warp slices of one phase of a problem.
FSPAI_HD int64_t warps_for(const DeviceGramProblem& P, int phase) {
  const int64_t rows = phase == 1 ? P.L : P.s;
  if (P.route == kRouteBitmap) return rows;
  const int64_t per = 32 / (phase == 1 ? P.lanes1 : P.lanes2);
  return (rows + per - 1) / per;
}

// Lanes that reduce together (a power of two): the whole warp for bitmap rows.
FSPAI_HD int reduce_width(const DeviceGramProblem& P, int phase) {
  return P.route == kRouteBitmap ? 32 : (phase == 1 ? P.lanes1 : P.lanes2);
}

struct LanePart {
  int64_t row;  // output row of this lane's segment (−1: past the end)
  double acc;   // this lane's partial sum
};

// One lane's partial sum for warp slice `wl` of phase `phase` of problem P:
// phase 1 reads x (length s) and produces t (length L); phase 2 reads t and produces y.
FSPAI_HD LanePart lane_partial(const DeviceGramProblem& P, int phase, const double* in, int64_t wl, int lane) {
  const bool one = phase == 1;
  const int64_t rows = one ? P.L : P.s;
  if (P.route == kRouteBitmap) {
    const int64_t nw = one ? P.nw1 : P.nw2;
    const uint32_t* row = (one ? P.bm1 : P.bm2) + wl * nw;
    double acc = 0.0;
    for (int64_t w = lane; w < nw; w += 32) {
      const double* xb = in + w * 32;
      for (uint32_t b = lane_load(row + w); b; b &= b - 1) acc += lane_load(xb + (lane_ffs(b) - 1));
    }
    return {wl, acc};
  }
  const int lanes = one ? P.lanes1 : P.lanes2;
  const int64_t r = wl * (32 / lanes) + lane / lanes;
  const int sub = lane & (lanes - 1);
  double acc = 0.0;
  if (r >= rows) return {-1, acc};
  const int64_t* rb = one ? P.p1b : P.p2b;
  const int64_t* re = one ? P.p1e : P.p2e;
  const int32_t* ri = one ? P.p1i : P.p2i;
  const void* rv = one ? P.p1v : P.p2v;
  const int32_t c0 = one ? P.p1c0 : P.p2c0;
  const int64_t b = lane_load(rb + r), e = lane_load(re + r);
  if (P.vtype == kValNone) {
    for (int64_t p = b + sub; p < e; p += lanes) acc += lane_load(in + (lane_load(ri + p) - c0));
  } else {
    const double c = P.vscale;
    for (int64_t p = b + sub; p < e; p += lanes)
      acc += (lane_value(rv, P.vtype, p) * c) * lane_load(in + (lane_load(ri + p) - c0));
  }
  return {r, acc};
}

// Host emulation of `for (o = width/2; o > 0; o /= 2) acc += __shfl_down_sync(full, acc, o, width)`
// over the 32 lanes of a warp (lanes whose source is outside their segment read their own value).
inline void gram_warp_reduce_host(double* acc, int width) {
  for (int o = width >> 1; o > 0; o >>= 1) {
    double next[32];
    for (int l = 0; l < 32; ++l) next[l] = acc[l] + ((l % width) + o < width ? acc[l + o] : acc[l]);
    for (int l = 0; l < 32; ++l) acc[l] = next[l];
  }
}

// The task table of one step (layout above) and the packed offsets; returns the total x and t
// lengths and the warp totals of both phases.
struct StepMeta {
  std::vector<int64_t> meta;
  int64_t xlen = 0, tlen = 0, w1 = 0, w2 = 0;
};
StepMeta build_step_meta(const std::vector<DeviceGramProblem>& problems, int count, const int* ids);

}  // namespace cuda
}  // namespace fspai
