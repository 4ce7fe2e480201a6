// Op family "layer_spectra", CUDA half: the host-side API of csrc/cuda/layer_spectra_cuda.cu.
//
// Plain C++ (no CUDA syntax): included by the g++-compiled dispatch file
// csrc/layer_spectra_cuda_dispatch.cpp, which holds the Python bindings, and compiled only when
// FSPAI_WITH_CUDA is defined.
//
// Inputs are dense, strided 2-D arrays that live on a CUDA device (a torch CUDA tensor or a CuPy
// array, described by DLPack or __cuda_array_interface__ on the Python side). They are converted
// to CSR on the device (the mask never visits the host); only per-row/per-column degree counts
// and the Lanczos s-length vectors cross the bus. The eigen-solver is the shared CPU driver
// (lanczos_topk_batch); this file supplies its step operator (a GramStepBatch).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/gram_plan.h"
#include "layer_spectra.h"

namespace fspai {
namespace cuda {

// Element types of device arrays (the Python side maps DLPack / typestr codes onto these).
enum class DType : int { Bool = 0, UInt8 = 1, Int8 = 2, Int16 = 3, Int32 = 4, Int64 = 5, Float16 = 6,
                         BFloat16 = 7, Float32 = 8, Float64 = 9 };

// A strided 2-D view B[r, c] = data[r * stride_row + c * stride_col] (strides in elements) on
// device `device`. n-D tensors are flattened to (shape[0], prod(shape[1:])) by the caller, which
// only works for views whose trailing dims are mergeable; the Python side checks that.
struct DeviceMatrix {
  uintptr_t data = 0;
  DType dtype = DType::Float32;
  int64_t n_rows = 0, n_cols = 0;
  int64_t stride_row = 0, stride_col = 1;
  int device = 0;
};

struct DeviceLayer {
  DeviceMatrix mask;      // entries must be exactly 0 or 1 (checked on the device)
  bool has_weight = false;
  DeviceMatrix weight;    // same shape; |W| on the mask's support is the weighted matrix
};

// Degree counts (the only per-layer data the host reads back, besides results).
struct DeviceDegrees {
  std::vector<int64_t> row, col;    // of the 0/1 pattern
  std::vector<int64_t> wrow, wcol;  // of the nonzero pattern of |W ⊙ M| (empty without weight)
};

// Route of the pattern Gram steps: "auto" (cost model), "csr" or "bitmap". Weighted problems
// always use CSR. Process-wide; used by the GPU benchmark to measure both routes.
void set_route(const std::string& route);
std::string get_route();

struct CudaInfo {
  bool compiled = true;
  int runtime_version = 0;   // CUDA runtime the extension was built with (e.g. 13000)
  int driver_version = 0;    // 0 when no driver is installed
  int device_count = 0;      // 0 when no device / no driver
  std::string status;        // "ok", or why no device can be used ("no CUDA driver", ...)
  std::vector<std::string> devices;  // "NVIDIA H200 (sm_90, 139 GiB)"
};
// Never throws: a machine without a driver or device reports it in `status`.
CudaInfo cuda_info();

// Degrees of each layer (one batched device pass). Throws std::invalid_argument naming the layer
// when a mask is not 0/1 or a weight is NaN/Inf, std::runtime_error on CUDA errors.
std::vector<DeviceDegrees> device_degrees(const std::vector<DeviceLayer>& layers);

// Same contract and result layout as fspai::layer_spectra on host CSR, for device layers. The
// weighted spectra are computed for layers with a weight (unless none has one). All layers must
// live on one device.
std::vector<LayerSpectra> layer_spectra_cuda(const std::vector<DeviceLayer>& layers, const LayerSpectraOptions& opt);

// Per column group (original column ids): (edges, inputs touched, outputs touched) of the nonzero
// pattern of |W ⊙ M| restricted to the group's columns: the weighted-IMDB validity counts, on the
// device (the host path computes them from its CSR). One dense pass over the layer.
std::vector<std::array<int64_t, 3>> weighted_group_degrees(const DeviceLayer& layer,
                                                          const std::vector<std::vector<int32_t>>& groups);

// Diagnostics for the one-shot GPU check (DebugApply: gram_plan.h).
std::vector<DebugApply> debug_apply(const std::vector<DeviceLayer>& layers, const LayerSpectraOptions& opt,
                                    uint64_t seed);

}  // namespace cuda
}  // namespace fspai
