// CSR views and validation shared by every op.
//
// Convention: a layer is the matrix B = X.reshape(out, -1); rows = outputs, columns = inputs.
// The core never sees torch or numpy: it receives raw CSR buffers (int64 indptr, int32 indices,
// optional float32/float64 values) and throws std::invalid_argument on malformed input.
//
// Values are read as |v| everywhere (CsrView::value, the step kernels, every owned copy): the
// weighted graph is |W ⊙ M|, and taking |·| where a value is loaded lets callers pass the signed
// weights they already hold instead of materialising an |W| copy (one float per nonzero).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fspai {

enum class ValueType { None, Float32, Float64 };

struct CsrView {
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  const int64_t* indptr = nullptr;   // n_rows + 1
  const int32_t* indices = nullptr;  // nnz, sorted and unique within each row
  const void* values = nullptr;      // nnz of float or double (read as |v|), or nullptr (pattern-only: all ones)
  ValueType vtype = ValueType::None;

  int64_t nnz() const { return indptr ? indptr[n_rows] : 0; }
  bool weighted() const { return vtype != ValueType::None; }
  double value(int64_t p) const {  // |v_p|
    if (vtype == ValueType::Float32) return std::fabs(static_cast<double>(static_cast<const float*>(values)[p]));
    if (vtype == ValueType::Float64) return std::fabs(static_cast<const double*>(values)[p]);
    return 1.0;
  }
};

// Owning CSR (used for transposes and extracted subgraphs); values keep the source's width and are
// stored as |v|.
struct CsrOwned {
  int64_t n_rows = 0, n_cols = 0;
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<double> values;   // float64 values (empty if none)
  std::vector<float> values32;  // float32 values (kept narrow: fewer bytes per Lanczos step)
  bool weighted() const { return !values.empty() || !values32.empty(); }
  void push_value(const CsrView& src, int64_t p) {
    if (src.vtype == ValueType::Float32) values32.push_back(std::fabs(static_cast<const float*>(src.values)[p]));
    else if (src.vtype == ValueType::Float64) values.push_back(std::fabs(static_cast<const double*>(src.values)[p]));
  }
  CsrView view() const {
    CsrView v;
    v.n_rows = n_rows;
    v.n_cols = n_cols;
    v.indptr = indptr.data();
    v.indices = indices.data();
    if (!values32.empty()) {
      v.values = values32.data();
      v.vtype = ValueType::Float32;
    } else if (!values.empty()) {
      v.values = values.data();
      v.vtype = ValueType::Float64;
    }
    return v;
  }
};

// Throws std::invalid_argument naming `what` if the CSR is malformed: negative sizes, indptr not
// starting at 0 / not non-decreasing / not ending at nnz, column index out of range, or indices not
// strictly increasing within a row (unsorted or duplicate), or non-finite values (signs are allowed:
// values are read as |v|).
void validate_csr(const CsrView& a, const std::string& what);

// Transpose (CSR of Aᵀ), values |v| of the same type. O(nnz). Written in cache-sized bands of
// columns, on `threads` threads from kParallelTransposeNnz entries; the result is the same for any
// thread count.
constexpr int64_t kTransposeBandBytes = 256 * 1024;
constexpr int64_t kParallelTransposeNnz = 1 << 16;
CsrOwned transpose(const CsrView& a, int threads = 1);

}  // namespace fspai
