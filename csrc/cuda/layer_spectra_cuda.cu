// Device layers -> device CSR -> batched Gram step operator -> the shared Lanczos driver.
//
// Pipeline for a batch of dense strided device masks (and optional weights), all in few launches
// for the whole batch:
//  1. count_kernel: one warp per mask row; checks that entries are 0/1 and weights finite, counts
//     row and column degrees (pattern, and nonzero |W ⊙ M|). Only these counts go to the host.
//  2. Host: CSR row pointers from the counts; degree groups (the regular decomposition: input
//     columns grouped by exact degree, groups of >= min_nodes) and a column order B' = B[:, perm]
//     that makes every group a contiguous column range.
//  3. fill_rows_kernel (warp per row, ballot compaction) writes CSR(B'); fill_cols_kernel (lane
//     per column) writes CSR(B'ᵀ) with rows ascending. Both are deterministic.
//  4. group_bounds_kernel: for each row and group, where the group's entries start in the row,
//     so a subgraph is a slice of CSR(B') with no copy; and each group's touched-output count.
//  5. One CudaGramStepBatch holding every problem (layer pattern, layer |W|, each subgraph's
//     pattern and |W|), solved by lanczos_topk_batch: one launch pair per Lanczos round.
#include "layer_spectra_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "gram_step.h"
#include "gram_plan.h"
#include "gram_step_cuda.cuh"

#ifndef FSPAI_CUDA_ARCHS
#define FSPAI_CUDA_ARCHS "unknown"
#endif

namespace fspai {
namespace cuda {

namespace {

std::mutex g_route_mutex;
std::string g_route = "auto";

constexpr int kBlock = 256;
constexpr unsigned kFull = 0xffffffffu;
enum : int32_t { kBadMask = 1, kBadWeight = 2 };

struct ConvLayer {
  const void* m;
  const void* w;  // nullptr: no weight
  int64_t msr, msc, wsr, wsc;
  int64_t n_rows, n_cols;
  int32_t mt, wt;
  // counts (step 1)
  uint32_t* rowcnt;
  uint32_t* colcnt;
  uint32_t* wrowcnt;
  uint32_t* wcolcnt;
  int32_t* flags;
  unsigned long long* wmax;  // bits of max |W| on the mask's support (nonnegative doubles order as integers)
  // CSR (step 3)
  const int32_t* perm;  // column order of B' (nullptr: identity)
  const int64_t* ptr;
  int32_t* idx;
  void* val;
  const int64_t* ptrT;
  int32_t* idxT;
  void* valT;
  int32_t vtype;
  // groups (step 4)
  int32_t n_groups;
  const int32_t* gstart;  // n_groups + 1 column starts in B'
  int64_t* bnd;           // (n_groups + 1) × n_rows
  uint32_t* nout;         // n_groups
};

__device__ __forceinline__ double load_elem(const void* p, int32_t dt, int64_t off) {
  switch (static_cast<DType>(dt)) {
    case DType::Bool:
    case DType::UInt8: return static_cast<const uint8_t*>(p)[off];
    case DType::Int8: return static_cast<const int8_t*>(p)[off];
    case DType::Int16: return static_cast<const int16_t*>(p)[off];
    case DType::Int32: return static_cast<const int32_t*>(p)[off];
    case DType::Int64: return static_cast<double>(static_cast<const long long*>(p)[off]);
    case DType::Float16: return __half2float(static_cast<const __half*>(p)[off]);
    case DType::BFloat16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[off]);
    case DType::Float32: return static_cast<const float*>(p)[off];
    case DType::Float64: return static_cast<const double*>(p)[off];
  }
  return 0.0;
}

__device__ __forceinline__ int find_layer(const int64_t* off, int count, int64_t w) {
  int lo = 0, hi = count;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (off[mid] <= w) lo = mid;
    else hi = mid;
  }
  return lo;
}

__device__ __forceinline__ unsigned lanes_below(int lane) { return (1u << lane) - 1u; }

// Warp per row of B (unpermuted), rows of all layers flattened (row_off: prefix of n_rows).
__global__ void count_kernel(const ConvLayer* __restrict__ layers, const int64_t* __restrict__ row_off, int nl,
                             int64_t total) {
  const int64_t g = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (g >= total) return;
  const int li = find_layer(row_off, nl, g);
  const ConvLayer& Lr = layers[li];
  const int64_t r = g - row_off[li];
  uint32_t cnt = 0, wcnt = 0;
  bool bad_m = false, bad_w = false;
  for (int64_t c0 = 0; c0 < Lr.n_cols; c0 += 32) {
    const int64_t c = c0 + lane;
    bool nz = false, wnz = false;
    if (c < Lr.n_cols) {
      const double v = load_elem(Lr.m, Lr.mt, r * Lr.msr + c * Lr.msc);
      if (!(v == 0.0 || v == 1.0)) bad_m = true;
      nz = v != 0.0;
      if (Lr.w) {
        const double wv = load_elem(Lr.w, Lr.wt, r * Lr.wsr + c * Lr.wsc);
        if (!isfinite(wv)) bad_w = true;
        wnz = nz && wv != 0.0;
        if (wnz) {
          atomicAdd(Lr.wcolcnt + c, 1u);
          if (isfinite(wv)) atomicMax(Lr.wmax, static_cast<unsigned long long>(__double_as_longlong(fabs(wv))));
        }
      }
      if (nz) atomicAdd(Lr.colcnt + c, 1u);  // integer atomics: exact, order-free
    }
    cnt += __popc(__ballot_sync(kFull, nz));
    wcnt += __popc(__ballot_sync(kFull, wnz));
  }
  const unsigned bm = __ballot_sync(kFull, bad_m), bw = __ballot_sync(kFull, bad_w);
  if (lane == 0) {
    Lr.rowcnt[r] = cnt;
    if (Lr.w) Lr.wrowcnt[r] = wcnt;
    if (bm || bw) atomicOr(Lr.flags, (bm ? kBadMask : 0) | (bw ? kBadWeight : 0));
  }
}

__device__ __forceinline__ void store_val(void* v, int32_t vtype, int64_t p, double x) {
  if (vtype == kValF32) static_cast<float*>(v)[p] = static_cast<float>(fabs(x));
  else if (vtype == kValF64) static_cast<double*>(v)[p] = fabs(x);
}

// Warp per row of B': entries in ascending permuted-column order (ballot + prefix popcount).
__global__ void fill_rows_kernel(const ConvLayer* __restrict__ layers, const int64_t* __restrict__ row_off, int nl,
                                 int64_t total) {
  const int64_t g = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (g >= total) return;
  const int li = find_layer(row_off, nl, g);
  const ConvLayer& Lr = layers[li];
  const int64_t r = g - row_off[li];
  int64_t pos = Lr.ptr[r];
  for (int64_t c0 = 0; c0 < Lr.n_cols; c0 += 32) {
    const int64_t cp = c0 + lane;
    bool nz = false;
    int64_t c = 0;
    if (cp < Lr.n_cols) {
      c = Lr.perm ? Lr.perm[cp] : cp;
      nz = load_elem(Lr.m, Lr.mt, r * Lr.msr + c * Lr.msc) != 0.0;
    }
    const unsigned b = __ballot_sync(kFull, nz);
    if (nz) {
      const int64_t p = pos + __popc(b & lanes_below(lane));
      Lr.idx[p] = static_cast<int32_t>(cp);
      if (Lr.vtype != kValNone) store_val(Lr.val, Lr.vtype, p, load_elem(Lr.w, Lr.wt, r * Lr.wsr + c * Lr.wsc));
    }
    pos += __popc(b);
  }
}

// Lane per column of B' (32 consecutive permuted columns per warp), rows ascending.
// col_off: prefix over layers of ceil(n_cols / 32).
__global__ void fill_cols_kernel(const ConvLayer* __restrict__ layers, const int64_t* __restrict__ col_off, int nl,
                                 int64_t total) {
  const int64_t g = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (g >= total) return;
  const int li = find_layer(col_off, nl, g);
  const ConvLayer& Lr = layers[li];
  const int64_t cp = (g - col_off[li]) * 32 + lane;
  if (cp >= Lr.n_cols) return;  // no warp collectives below
  const int64_t c = Lr.perm ? Lr.perm[cp] : cp;
  int64_t pos = Lr.ptrT[cp];
  const int64_t end = Lr.ptrT[cp + 1];
  constexpr int U = 8;  // independent loads in flight
  for (int64_t r0 = 0; r0 < Lr.n_rows && pos < end; r0 += U) {
    double v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = r0 + u < Lr.n_rows ? load_elem(Lr.m, Lr.mt, (r0 + u) * Lr.msr + c * Lr.msc) : 0.0;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (v[u] != 0.0) {
        const int64_t r = r0 + u;
        Lr.idxT[pos] = static_cast<int32_t>(r);
        if (Lr.vtype != kValNone) store_val(Lr.valT, Lr.vtype, pos, load_elem(Lr.w, Lr.wt, r * Lr.wsr + c * Lr.wsc));
        ++pos;
      }
    }
  }
}

// Thread per row of B': bnd[g * n_rows + r] = first entry of row r with column >= gstart[g].
__global__ void group_bounds_kernel(const ConvLayer* __restrict__ layers, const int64_t* __restrict__ row_off,
                                    int nl, int64_t total) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  if (g >= total) return;
  const int li = find_layer(row_off, nl, g);
  const ConvLayer& Lr = layers[li];
  if (Lr.n_groups == 0) return;
  const int64_t r = g - row_off[li];
  int64_t p = Lr.ptr[r];
  const int64_t e = Lr.ptr[r + 1];
  int64_t prev = 0;
  for (int32_t q = 0; q <= Lr.n_groups; ++q) {
    const int32_t lim = Lr.gstart[q];
    while (p < e && Lr.idx[p] < lim) ++p;
    Lr.bnd[static_cast<int64_t>(q) * Lr.n_rows + r] = p;
    if (q > 0 && p > prev) atomicAdd(Lr.nout + (q - 1), 1u);
    prev = p;
  }
}

// Warp per row: edges of the nonzero pattern of |W ⊙ M| inside each column group (group_of[c],
// −1: none), and which rows / columns they touch (byte flags; equal-value races are benign).
__global__ void weighted_groups_kernel(ConvLayer L, const int32_t* __restrict__ group_of,
                                       unsigned long long* __restrict__ edges, uint8_t* __restrict__ rowflag,
                                       uint8_t* __restrict__ colflag) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= L.n_rows) return;
  for (int64_t c = lane; c < L.n_cols; c += 32) {
    const int32_t g = group_of[c];
    if (g < 0) continue;
    if (load_elem(L.m, L.mt, r * L.msr + c * L.msc) == 0.0) continue;
    if (load_elem(L.w, L.wt, r * L.wsr + c * L.wsc) == 0.0) continue;
    atomicAdd(edges + g, 1ull);
    rowflag[static_cast<int64_t>(g) * L.n_rows + r] = 1;
    colflag[c] = 1;
  }
}

unsigned grid_threads(int64_t threads) {
  const int64_t blocks = (threads + kBlock - 1) / kBlock;
  if (blocks > 0x7fffffffLL) throw std::runtime_error("fspai CUDA: batch too large for one launch");
  return static_cast<unsigned>(std::max<int64_t>(blocks, 1));
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  void create() { check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
};

// Bump allocator over one host-side layout; offsets are 256-byte aligned.
struct Layout {
  size_t bytes = 0;
  size_t take(size_t n) {
    const size_t off = bytes;
    bytes += (n + 255) / 256 * 256;
    return off;
  }
};

int value_bytes(int32_t vtype) { return vtype == kValF64 ? 8 : vtype == kValF32 ? 4 : 0; }

}  // namespace
CudaInfo cuda_info();
namespace {

int common_device(const std::vector<DeviceLayer>& layers) {
  const int dev = layers.front().mask.device;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].mask.device != dev || (layers[i].has_weight && layers[i].weight.device != dev))
      throw std::invalid_argument("layer " + std::to_string(i) + ": all masks and weights must be on one CUDA device (cuda:" +
                                  std::to_string(dev) + ")");
  }
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    throw std::runtime_error("fspai CUDA path: " + cuda_info().status + " on this machine");
  }
  if (dev < 0 || dev >= n)
    throw std::invalid_argument("CUDA device " + std::to_string(dev) + " does not exist (" + std::to_string(n) +
                                " visible)");
  return dev;
}

void check_shapes(const std::vector<DeviceLayer>& layers) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const DeviceLayer& L = layers[i];
    const std::string what = "layer " + std::to_string(i);
    if (L.mask.n_rows < 0 || L.mask.n_cols < 0 || L.mask.n_cols > 0x7fffffffLL || L.mask.n_rows > 0x7fffffffLL)
      throw std::invalid_argument(what + ": mask shape out of range (int32 indices)");
    if (L.mask.data == 0 && L.mask.n_rows * L.mask.n_cols > 0) throw std::invalid_argument(what + ": null mask pointer");
    if (L.has_weight) {
      if (L.weight.n_rows != L.mask.n_rows || L.weight.n_cols != L.mask.n_cols)
        throw std::invalid_argument(what + ": mask and weight shapes differ");
      const DType t = L.weight.dtype;
      if (!(t == DType::Float16 || t == DType::BFloat16 || t == DType::Float32 || t == DType::Float64))
        throw std::invalid_argument(what + ": weights must be float16, bfloat16, float32 or float64");
    }
  }
}

// Counts of every layer: device pass + download. On return `dl` holds device layer descriptors
// whose count pointers are valid in `counts`.
struct CountResult {
  std::vector<ConvLayer> conv;
  std::vector<DeviceDegrees> deg;
  std::vector<double> wmax;  // max |W| on the support (0 without weight)
};

CountResult count_layers(const std::vector<DeviceLayer>& layers, cudaStream_t stream, DeviceBuffer& counts) {
  const int nl = static_cast<int>(layers.size());
  CountResult R;
  R.conv.resize(nl);
  Layout lay;
  std::vector<size_t> o_row(nl), o_col(nl), o_wrow(nl), o_wcol(nl), o_flag(nl), o_wmax(nl);
  for (int i = 0; i < nl; ++i) {
    const DeviceLayer& L = layers[i];
    o_row[i] = lay.take(L.mask.n_rows * 4);
    o_col[i] = lay.take(L.mask.n_cols * 4);
    o_wrow[i] = L.has_weight ? lay.take(L.mask.n_rows * 4) : 0;
    o_wcol[i] = L.has_weight ? lay.take(L.mask.n_cols * 4) : 0;
    o_flag[i] = lay.take(4);
    o_wmax[i] = lay.take(8);
  }
  const size_t count_bytes = lay.bytes;
  const size_t o_desc = lay.take(nl * sizeof(ConvLayer));
  const size_t o_off = lay.take((nl + 1) * sizeof(int64_t));
  counts.resize(lay.bytes);
  char* base = counts.as<char>();
  std::vector<int64_t> row_off(nl + 1, 0);
  for (int i = 0; i < nl; ++i) {
    const DeviceLayer& L = layers[i];
    ConvLayer& C = R.conv[i];
    std::memset(&C, 0, sizeof(C));
    C.m = reinterpret_cast<const void*>(L.mask.data);
    C.mt = static_cast<int32_t>(L.mask.dtype);
    C.msr = L.mask.stride_row;
    C.msc = L.mask.stride_col;
    C.n_rows = L.mask.n_rows;
    C.n_cols = L.mask.n_cols;
    if (L.has_weight) {
      C.w = reinterpret_cast<const void*>(L.weight.data);
      C.wt = static_cast<int32_t>(L.weight.dtype);
      C.wsr = L.weight.stride_row;
      C.wsc = L.weight.stride_col;
      C.wrowcnt = reinterpret_cast<uint32_t*>(base + o_wrow[i]);
      C.wcolcnt = reinterpret_cast<uint32_t*>(base + o_wcol[i]);
    }
    C.rowcnt = reinterpret_cast<uint32_t*>(base + o_row[i]);
    C.colcnt = reinterpret_cast<uint32_t*>(base + o_col[i]);
    C.flags = reinterpret_cast<int32_t*>(base + o_flag[i]);
    C.wmax = reinterpret_cast<unsigned long long*>(base + o_wmax[i]);
    row_off[i + 1] = row_off[i] + L.mask.n_rows;
  }
  check(cudaMemsetAsync(base, 0, count_bytes, stream), "memset counts");
  check(cudaMemcpyAsync(base + o_desc, R.conv.data(), nl * sizeof(ConvLayer), cudaMemcpyHostToDevice, stream),
        "upload layers");
  check(cudaMemcpyAsync(base + o_off, row_off.data(), (nl + 1) * sizeof(int64_t), cudaMemcpyHostToDevice, stream),
        "upload offsets");
  const int64_t total = row_off[nl];
  if (total > 0) {
    count_kernel<<<grid_threads(total * 32), kBlock, 0, stream>>>(reinterpret_cast<const ConvLayer*>(base + o_desc),
                                                                   reinterpret_cast<const int64_t*>(base + o_off), nl,
                                                                   total);
    check(cudaGetLastError(), "count kernel launch");
  }
  std::vector<char> host(count_bytes);
  if (count_bytes) check(cudaMemcpyAsync(host.data(), base, count_bytes, cudaMemcpyDeviceToHost, stream), "download counts");
  check(cudaStreamSynchronize(stream), "count kernel");
  R.deg.resize(nl);
  R.wmax.assign(nl, 0.0);
  for (int i = 0; i < nl; ++i) {
    const DeviceLayer& L = layers[i];
    int32_t flags;
    std::memcpy(&flags, host.data() + o_flag[i], 4);
    const std::string what = "layer " + std::to_string(i);
    if (flags & kBadMask)
      throw std::invalid_argument(what + ": mask of shape (" + std::to_string(L.mask.n_rows) + ", " +
                                  std::to_string(L.mask.n_cols) + ") is not binary (entries other than 0 and 1)");
    if (flags & kBadWeight) throw std::invalid_argument(what + ": weight contains NaN or Inf");
    auto get = [&](size_t off, int64_t n) {
      std::vector<int64_t> v(n);
      const uint32_t* p = reinterpret_cast<const uint32_t*>(host.data() + off);
      for (int64_t j = 0; j < n; ++j) v[j] = p[j];
      return v;
    };
    R.deg[i].row = get(o_row[i], L.mask.n_rows);
    R.deg[i].col = get(o_col[i], L.mask.n_cols);
    std::memcpy(&R.wmax[i], host.data() + o_wmax[i], 8);
    if (L.has_weight) {
      R.deg[i].wrow = get(o_wrow[i], L.mask.n_rows);
      R.deg[i].wcol = get(o_wcol[i], L.mask.n_cols);
    }
  }
  return R;
}

}  // namespace

void set_route(const std::string& route) {
  if (route != "auto" && route != "csr" && route != "bitmap")
    throw std::invalid_argument("route must be 'auto', 'csr' or 'bitmap', got '" + route + "'");
  std::lock_guard<std::mutex> lock(g_route_mutex);
  g_route = route;
}

std::string get_route() {
  std::lock_guard<std::mutex> lock(g_route_mutex);
  return g_route;
}

CudaInfo cuda_info() {
  CudaInfo I;
  cudaRuntimeGetVersion(&I.runtime_version);
  if (cudaDriverGetVersion(&I.driver_version) != cudaSuccess) I.driver_version = 0;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    I.device_count = 0;
    I.status = e == cudaErrorNoDevice ? "no CUDA device"
               : e == cudaErrorInsufficientDriver
                   ? (I.driver_version == 0 ? "no CUDA driver" : "CUDA driver older than the runtime")
                   : std::string("CUDA unavailable: ") + cudaGetErrorString(e);
    return I;
  }
  I.device_count = n;
  I.status = n > 0 ? "ok" : "no CUDA device";
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    I.devices.push_back(std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
                        std::to_string(p.totalGlobalMem >> 30) + " GiB)");
  }
  return I;
}

std::vector<DeviceDegrees> device_degrees(const std::vector<DeviceLayer>& layers) {
  if (layers.empty()) return {};
  check_shapes(layers);
  const int dev = common_device(layers);
  check(cudaSetDevice(dev), "cudaSetDevice");
  check(cudaDeviceSynchronize(), "wait for the producer of the inputs");  // inputs may be in flight elsewhere
  Stream st;
  st.create();
  DeviceBuffer counts;
  return count_layers(layers, st.s, counts).deg;
}

namespace {

// Everything a batch needs on the device, ready for the step operator (the members own the
// device memory the problem descriptors point into).
struct Prepared {
  Stream st;  // declared first: destroyed last
  DeviceBuffer counts, arena;
  std::vector<DeviceBuffer> bitmaps;
  std::vector<LayerPlan> plans;
  std::vector<DeviceGramProblem> probs;
  std::vector<ProblemSlot> slots;
  std::vector<LayerSpectra> res;
  int dev = 0;
};

void prepare(const std::vector<DeviceLayer>& layers, const LayerSpectraOptions& opt, Prepared& PB) {
  const int nl = static_cast<int>(layers.size());
  if (opt.solve.k < 1) throw std::invalid_argument("k must be >= 1");
  if (opt.subgraphs && opt.min_nodes < 1) throw std::invalid_argument("min_nodes must be >= 1");
  check_shapes(layers);
  const int dev = common_device(layers);
  PB.dev = dev;
  check(cudaSetDevice(dev), "cudaSetDevice");
  check(cudaDeviceSynchronize(), "wait for the producer of the inputs");
  PB.st.create();
  Stream& st = PB.st;
  DeviceBuffer& counts = PB.counts;
  CountResult CR = count_layers(layers, st.s, counts);
  std::vector<ConvLayer>& conv = CR.conv;

  // ---- plans (host, gram_plan.h) and one device arena: the uploaded part first
  std::vector<LayerPlan>& plans = PB.plans;
  plans.resize(nl);
  for (int i = 0; i < nl; ++i) plans[i] = make_plan(CR.deg[i].row, CR.deg[i].col, opt.subgraphs, opt.min_nodes);
  Layout lay;
  struct Off { size_t ptr, ptrT, perm, gstart, idx, idxT, val, valT, bnd, nout; };
  std::vector<Off> off(nl);
  for (int i = 0; i < nl; ++i) {
    const LayerPlan& P = plans[i];
    off[i].ptr = lay.take(P.ptr.size() * 8);
    off[i].ptrT = lay.take(P.ptrT.size() * 8);
    off[i].perm = lay.take(P.perm.size() * 4);
    off[i].gstart = lay.take(P.gstart.size() * 4);
  }
  const size_t o_desc = lay.take(nl * sizeof(ConvLayer));
  const size_t o_roff = lay.take((nl + 1) * 8), o_coff = lay.take((nl + 1) * 8);
  const size_t upload_end = lay.bytes;
  for (int i = 0; i < nl; ++i) {
    const LayerPlan& P = plans[i];
    const int32_t vt = !layers[i].has_weight ? kValNone
                       : layers[i].weight.dtype == DType::Float64 ? kValF64 : kValF32;
    conv[i].vtype = vt;
    off[i].idx = lay.take(P.nnz * 4);
    off[i].idxT = lay.take(P.nnz * 4);
    off[i].val = lay.take(P.nnz * value_bytes(vt));
    off[i].valT = lay.take(P.nnz * value_bytes(vt));
    off[i].bnd = lay.take(P.groups.empty() ? 0 : P.gstart.size() * layers[i].mask.n_rows * 8);
  }
  // touched-output counts of every group of every layer: one contiguous block, one download
  std::vector<size_t> group_off(nl + 1, 0);
  for (int i = 0; i < nl; ++i) group_off[i + 1] = group_off[i] + plans[i].groups.size();
  const size_t o_nout = lay.take(group_off[nl] * 4);
  for (int i = 0; i < nl; ++i) off[i].nout = o_nout + group_off[i] * 4;
  PB.arena.resize(lay.bytes);
  char* base = PB.arena.as<char>();
  std::vector<char> up(upload_end, 0);
  std::vector<int64_t> row_off(nl + 1, 0), col_off(nl + 1, 0);
  std::vector<LayerArrays> arrays(nl);
  for (int i = 0; i < nl; ++i) {
    const LayerPlan& P = plans[i];
    ConvLayer& C = conv[i];
    std::memcpy(up.data() + off[i].ptr, P.ptr.data(), P.ptr.size() * 8);
    std::memcpy(up.data() + off[i].ptrT, P.ptrT.data(), P.ptrT.size() * 8);
    if (!P.perm.empty()) std::memcpy(up.data() + off[i].perm, P.perm.data(), P.perm.size() * 4);
    std::memcpy(up.data() + off[i].gstart, P.gstart.data(), P.gstart.size() * 4);
    C.perm = P.perm.empty() ? nullptr : reinterpret_cast<const int32_t*>(base + off[i].perm);
    C.ptr = reinterpret_cast<const int64_t*>(base + off[i].ptr);
    C.ptrT = reinterpret_cast<const int64_t*>(base + off[i].ptrT);
    C.idx = reinterpret_cast<int32_t*>(base + off[i].idx);
    C.idxT = reinterpret_cast<int32_t*>(base + off[i].idxT);
    C.val = base + off[i].val;
    C.valT = base + off[i].valT;
    C.n_groups = static_cast<int32_t>(P.groups.size());
    C.gstart = reinterpret_cast<const int32_t*>(base + off[i].gstart);
    C.bnd = reinterpret_cast<int64_t*>(base + off[i].bnd);
    C.nout = reinterpret_cast<uint32_t*>(base + off[i].nout);
    row_off[i + 1] = row_off[i] + layers[i].mask.n_rows;
    col_off[i + 1] = col_off[i] + (layers[i].mask.n_cols + 31) / 32;
    LayerArrays& A = arrays[i];
    A.n_rows = C.n_rows;
    A.n_cols = C.n_cols;
    A.ptr = C.ptr;
    A.idx = C.idx;
    A.val = C.val;
    A.ptrT = C.ptrT;
    A.idxT = C.idxT;
    A.valT = C.valT;
    A.bnd = C.bnd;
    A.vtype = C.vtype;
    A.wmax = CR.wmax[i];
  }
  std::memcpy(up.data() + o_desc, conv.data(), nl * sizeof(ConvLayer));
  std::memcpy(up.data() + o_roff, row_off.data(), (nl + 1) * 8);
  std::memcpy(up.data() + o_coff, col_off.data(), (nl + 1) * 8);
  check(cudaMemcpyAsync(base, up.data(), upload_end, cudaMemcpyHostToDevice, st.s), "upload CSR pointers");
  if (group_off[nl]) check(cudaMemsetAsync(base + o_nout, 0, group_off[nl] * 4, st.s), "memset group counts");
  const ConvLayer* dconv = reinterpret_cast<const ConvLayer*>(base + o_desc);
  const int64_t* droff = reinterpret_cast<const int64_t*>(base + o_roff);
  const int64_t* dcoff = reinterpret_cast<const int64_t*>(base + o_coff);
  if (row_off[nl] > 0) {
    fill_rows_kernel<<<grid_threads(row_off[nl] * 32), kBlock, 0, st.s>>>(dconv, droff, nl, row_off[nl]);
    check(cudaGetLastError(), "fill rows launch");
    group_bounds_kernel<<<grid_threads(row_off[nl]), kBlock, 0, st.s>>>(dconv, droff, nl, row_off[nl]);
    check(cudaGetLastError(), "group bounds launch");
  }
  if (col_off[nl] > 0) {
    fill_cols_kernel<<<grid_threads(col_off[nl] * 32), kBlock, 0, st.s>>>(dconv, dcoff, nl, col_off[nl]);
    check(cudaGetLastError(), "fill cols launch");
  }

  // ---- problems (shared host logic), bitmaps for the whole-layer pattern problems that want them
  std::vector<DeviceGramProblem>& probs = PB.probs;
  std::vector<ProblemSlot>& slots = PB.slots;
  std::vector<LayerSpectra>& res = PB.res;
  build_problems(arrays, plans, opt, &probs, &slots, &res);
  const std::string route = get_route();
  std::vector<DeviceBuffer>& bitmaps = PB.bitmaps;
  for (size_t j = 0; j < probs.size(); ++j) {
    DeviceGramProblem& G = probs[j];
    if (!slots[j].whole_layer_pattern() || !take_bitmap_route(route, G)) continue;
    bitmaps.emplace_back(static_cast<size_t>(G.L * G.nw1 + G.s * G.nw2) * 4);
    uint32_t* bm = bitmaps.back().as<uint32_t>();
    G.bm1 = bm;
    G.bm2 = bm + G.L * G.nw1;
    build_bitmap(G.p1b, G.p1e, G.p1i, 0, G.L, G.nw1, bm, st.s);
    build_bitmap(G.p2b, G.p2e, G.p2i, 0, G.s, G.nw2, bm + G.L * G.nw1, st.s);
  }
  std::vector<uint32_t> nout(group_off[nl]);
  if (!nout.empty())
    check(cudaMemcpyAsync(nout.data(), base + o_nout, nout.size() * 4, cudaMemcpyDeviceToHost, st.s), "download n_out");
  check(cudaStreamSynchronize(st.s), "CSR conversion");
  for (int i = 0; i < nl; ++i)
    for (size_t q = 0; q < plans[i].groups.size(); ++q) res[i].subgraphs[q].n_out = nout[group_off[i] + q];
  drop_skipped_groups(opt, &probs, &slots, &res);  // whole-layer problems (the only bitmap ones) stay
}

}  // namespace

namespace {

// Host memory the driver's Lanczos bases may take for one layer (an upper estimate: every
// problem's dimension, two starts, 64 basis vectors): the batch is cut into chunks under a
// budget so that thousands of candidate networks never exhaust host memory.
double host_estimate(const DeviceLayer& L, const LayerSpectraOptions& opt) {
  const double dims = static_cast<double>(std::min(L.mask.n_rows, L.mask.n_cols)) +
                      (opt.subgraphs ? static_cast<double>(L.mask.n_cols) : 0.0);
  const double starts = std::max(2, std::max(opt.solve.starts, opt.solve.k));
  return dims * starts * 64.0 * 8.0 * (L.has_weight ? 2.0 : 1.0);
}

constexpr double kHostBudget = 2.0 * 1024 * 1024 * 1024;

std::vector<LayerSpectra> solve_chunk(const std::vector<DeviceLayer>& layers, const LayerSpectraOptions& opt) {
  Prepared PB;
  prepare(layers, opt, PB);
  if (PB.probs.empty()) return std::move(PB.res);
  CudaGramStepBatch op(PB.probs, PB.dev, PB.st.s);
  std::vector<SolveInfo> infos;
  // The shared driver returns σ of the unscaled problems (it undoes scale()), descending.
  const std::vector<std::vector<double>> sig = lanczos_topk_sv_batch(op, opt.solve, &infos);
  assemble(PB.slots, sig, infos, opt.solve.k, &PB.res);
  return std::move(PB.res);
}

}  // namespace

std::vector<LayerSpectra> layer_spectra_cuda(const std::vector<DeviceLayer>& layers, const LayerSpectraOptions& opt) {
  std::vector<LayerSpectra> out;
  out.reserve(layers.size());
  size_t i = 0;
  while (i < layers.size()) {  // consecutive chunks under the host-memory budget (one launch pair per round each)
    size_t j = i + 1;
    double est = host_estimate(layers[i], opt);
    while (j < layers.size() && est + host_estimate(layers[j], opt) <= kHostBudget) est += host_estimate(layers[j++], opt);
    const std::vector<DeviceLayer> chunk(layers.begin() + static_cast<std::ptrdiff_t>(i),
                                         layers.begin() + static_cast<std::ptrdiff_t>(j));
    std::vector<LayerSpectra> r = solve_chunk(chunk, opt);
    for (LayerSpectra& x : r) out.push_back(std::move(x));
    i = j;
  }
  return out;
}

std::vector<std::array<int64_t, 3>> weighted_group_degrees(const DeviceLayer& layer,
                                                          const std::vector<std::vector<int32_t>>& groups) {
  const std::vector<DeviceLayer> one{layer};
  check_shapes(one);
  if (!layer.has_weight) throw std::invalid_argument("weighted_group_degrees needs a weight");
  const int dev = common_device(one);
  check(cudaSetDevice(dev), "cudaSetDevice");
  check(cudaDeviceSynchronize(), "wait for the producer of the inputs");
  const int64_t n_rows = layer.mask.n_rows, n_cols = layer.mask.n_cols;
  const size_t G = groups.size();
  std::vector<int32_t> group_of(n_cols, -1);
  for (size_t g = 0; g < G; ++g)
    for (int32_t c : groups[g]) {
      if (c < 0 || c >= n_cols) throw std::invalid_argument("group column out of range");
      group_of[c] = static_cast<int32_t>(g);
    }
  Stream st;
  st.create();
  Layout lay;
  const size_t o_g = lay.take(n_cols * 4), o_e = lay.take(G * 8), o_r = lay.take(G * n_rows), o_c = lay.take(n_cols);
  DeviceBuffer buf(lay.bytes);
  char* base = buf.as<char>();
  check(cudaMemsetAsync(base + o_e, 0, lay.bytes - o_e, st.s), "memset");
  if (n_cols) check(cudaMemcpyAsync(base + o_g, group_of.data(), n_cols * 4, cudaMemcpyHostToDevice, st.s), "upload");
  ConvLayer C;
  std::memset(&C, 0, sizeof(C));
  C.m = reinterpret_cast<const void*>(layer.mask.data);
  C.mt = static_cast<int32_t>(layer.mask.dtype);
  C.msr = layer.mask.stride_row;
  C.msc = layer.mask.stride_col;
  C.w = reinterpret_cast<const void*>(layer.weight.data);
  C.wt = static_cast<int32_t>(layer.weight.dtype);
  C.wsr = layer.weight.stride_row;
  C.wsc = layer.weight.stride_col;
  C.n_rows = n_rows;
  C.n_cols = n_cols;
  if (n_rows > 0 && G > 0) {
    weighted_groups_kernel<<<grid_threads(n_rows * 32), kBlock, 0, st.s>>>(
        C, reinterpret_cast<const int32_t*>(base + o_g), reinterpret_cast<unsigned long long*>(base + o_e),
        reinterpret_cast<uint8_t*>(base + o_r), reinterpret_cast<uint8_t*>(base + o_c));
    check(cudaGetLastError(), "weighted groups launch");
  }
  std::vector<unsigned long long> e(G);
  std::vector<uint8_t> rf(G * n_rows), cf(n_cols);
  if (G) check(cudaMemcpyAsync(e.data(), base + o_e, G * 8, cudaMemcpyDeviceToHost, st.s), "download");
  if (!rf.empty()) check(cudaMemcpyAsync(rf.data(), base + o_r, rf.size(), cudaMemcpyDeviceToHost, st.s), "download");
  if (n_cols) check(cudaMemcpyAsync(cf.data(), base + o_c, n_cols, cudaMemcpyDeviceToHost, st.s), "download");
  check(cudaStreamSynchronize(st.s), "weighted group degrees");
  std::vector<std::array<int64_t, 3>> out(G);
  for (size_t g = 0; g < G; ++g) {
    int64_t n_in = 0, n_out = 0;
    for (int32_t c : groups[g]) n_in += cf[c];
    for (int64_t r = 0; r < n_rows; ++r) n_out += rf[g * n_rows + r];
    out[g] = {static_cast<int64_t>(e[g]), n_in, n_out};
  }
  return out;
}

std::vector<DebugApply> debug_apply(const std::vector<DeviceLayer>& layers, const LayerSpectraOptions& opt,
                                    uint64_t seed) {
  if (layers.empty()) return {};
  Prepared PB;
  prepare(layers, opt, PB);
  if (PB.probs.empty()) return {};
  CudaGramStepBatch op(PB.probs, PB.dev, PB.st.s);
  return debug_apply_op(op, PB.slots, PB.probs, seed);
}

}  // namespace cuda
}  // namespace fspai
