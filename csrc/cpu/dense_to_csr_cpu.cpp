// Dense bool mask -> CSR: 64 mask bytes at a time. A 64-byte block becomes one bit mask (one
// compare per block with AVX-512, csrc/bit_pack.h); an all-zero block (most of them at
// the 1–10 % densities of pruning masks) costs that one test, and the kept columns of the others
// are read off the set bits. Two passes (counts, then fill at known offsets), so the output is
// allocated once at its exact size and both passes split rows across threads.
#include "bit_pack.h"
#include "dense_to_csr.h"
#include "parallel.h"

namespace fspai {
namespace {

// Rows per parallel task: ~1 MiB of mask bytes (enough work to outweigh a task switch).
int64_t row_block(int64_t n_cols) {
  const int64_t per = (int64_t(1) << 20) / (n_cols > 0 ? n_cols : 1);
  return per > 0 ? per : 1;
}

template <typename F>
void for_row_blocks(const DenseRows& m, int threads, F&& body) {
  const int64_t rb = row_block(m.n_cols);
  const int64_t blocks = (m.n_rows + rb - 1) / rb;
  for_each_index(0, blocks, threads > 1 && blocks > 1, threads, [&](int64_t b) {
    const int64_t lo = b * rb, hi = lo + rb < m.n_rows ? lo + rb : m.n_rows;
    for (int64_t r = lo; r < hi; ++r) body(r);
  });
}

template <typename V>
void fill_rows(const DenseRows& m, const int64_t* indptr, int32_t* indices, const DenseRows* w, V* values,
               int threads) {
  for_row_blocks(m, threads, [&](int64_t r) {
    const uint8_t* row = static_cast<const uint8_t*>(m.data) + r * m.row_stride;
    const V* wrow = w ? static_cast<const V*>(w->data) + r * w->row_stride : nullptr;
    int64_t pos = indptr[r];
    int64_t c = 0;
    for (; c + 64 <= m.n_cols; c += 64) {
      uint64_t bits = pack_bytes64(row + c);
      while (bits) {
        const int64_t j = c + __builtin_ctzll(bits);
        bits &= bits - 1;
        indices[pos] = static_cast<int32_t>(j);
        if (wrow) values[pos] = wrow[j];
        ++pos;
      }
    }
    for (; c < m.n_cols; ++c)
      if (row[c]) {
        indices[pos] = static_cast<int32_t>(c);
        if (wrow) values[pos] = wrow[c];
        ++pos;
      }
  });
}

}  // namespace

void dense_mask_row_counts_cpu(const DenseRows& m, int64_t* counts, int threads) {
  for_row_blocks(m, threads, [&](int64_t r) {
    const uint8_t* row = static_cast<const uint8_t*>(m.data) + r * m.row_stride;
    int64_t n = 0, c = 0;
    for (; c + 64 <= m.n_cols; c += 64) n += __builtin_popcountll(pack_bytes64(row + c));
    for (; c < m.n_cols; ++c) n += row[c] != 0;
    counts[r] = n;
  });
}

void dense_mask_fill_csr_cpu(const DenseRows& m, const int64_t* indptr, int32_t* indices, const DenseRows* w,
                             ValueType vtype, void* values, int threads) {
  if (w && vtype == ValueType::Float64)
    fill_rows<double>(m, indptr, indices, w, static_cast<double*>(values), threads);
  else if (w)
    fill_rows<float>(m, indptr, indices, w, static_cast<float*>(values), threads);
  else
    fill_rows<float>(m, indptr, indices, nullptr, nullptr, threads);
}

}  // namespace fspai
