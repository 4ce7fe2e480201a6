// Op family "dense_to_csr": the CSR structure of a dense 0/1 mask (and the weights at its
// nonzeros), the conversion step of fspai._convert for C-contiguous-row bool masks.
// csrc/dense_to_csr.cpp validates and dispatches; csrc/cpu/dense_to_csr_cpu.cpp is the kernel.
#pragma once
#include <cstdint>

#include "csr.h"

namespace fspai {

// A dense row-major matrix whose rows may be padded: element (r, c) at base + r·row_stride + c
// (strides in elements, row_stride ≥ n_cols; unit stride within a row).
struct DenseRows {
  const void* data = nullptr;
  int64_t n_rows = 0, n_cols = 0, row_stride = 0;
};

// Pass 1: counts[r] = number of nonzero bytes of mask row r (bool masks: entries kept).
void dense_mask_row_counts(const DenseRows& mask, int64_t* counts, int threads);
// Pass 2, given indptr from the counts: column indices of every nonzero byte (ascending within a
// row) and, when `weight` is given (same shape, float32 or float64 as `vtype`), the weight at each
// of them, signed, in the weight's own type. Results do not depend on `threads`.
void dense_mask_fill_csr(const DenseRows& mask, const int64_t* indptr, int32_t* indices, const DenseRows* weight,
                         ValueType vtype, void* values, int threads);

// Kernels (csrc/cpu/dense_to_csr_cpu.cpp).
void dense_mask_row_counts_cpu(const DenseRows& mask, int64_t* counts, int threads);
void dense_mask_fill_csr_cpu(const DenseRows& mask, const int64_t* indptr, int32_t* indices, const DenseRows* weight,
                             ValueType vtype, void* values, int threads);

}  // namespace fspai
