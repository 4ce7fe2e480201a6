#include "dense_to_csr.h"

#include <stdexcept>
#include <string>

namespace fspai {

namespace {
void check_rows(const DenseRows& d, const char* what) {
  if (d.n_rows < 0 || d.n_cols < 0) throw std::invalid_argument(std::string(what) + ": negative shape");
  if (d.n_cols > INT32_MAX) throw std::invalid_argument(std::string(what) + ": more than 2^31-1 columns");
  if (d.n_rows > 1 && d.row_stride < d.n_cols)
    throw std::invalid_argument(std::string(what) + ": row stride " + std::to_string(d.row_stride) +
                                " is smaller than the row length " + std::to_string(d.n_cols));
  if (d.n_rows > 0 && d.n_cols > 0 && d.data == nullptr) throw std::invalid_argument(std::string(what) + ": no data");
}
}  // namespace

void dense_mask_row_counts(const DenseRows& mask, int64_t* counts, int threads) {
  check_rows(mask, "mask");
  dense_mask_row_counts_cpu(mask, counts, threads);
}

void dense_mask_fill_csr(const DenseRows& mask, const int64_t* indptr, int32_t* indices, const DenseRows* weight,
                         ValueType vtype, void* values, int threads) {
  check_rows(mask, "mask");
  if (weight) {
    check_rows(*weight, "weight");
    if (weight->n_rows != mask.n_rows || weight->n_cols != mask.n_cols)
      throw std::invalid_argument("weight shape differs from the mask's");
    if (vtype == ValueType::None || values == nullptr) throw std::invalid_argument("weight given without a value type");
  }
  dense_mask_fill_csr_cpu(mask, indptr, indices, weight, vtype, values, threads);
}

}  // namespace fspai
