// Stable counting sort of the indices 0..n-1 by a small non-negative integer key (row lengths,
// column degrees): O(n + max key), no comparisons.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace fspai {

struct KeyOrder {
  std::vector<int32_t> order;  // indices by ascending key, ascending within a key
  std::vector<int64_t> start;  // order[start[k] .. start[k+1]) are the indices with key k
  int64_t max_key = 0;
};

// key(i) must be in 0..n_max for every i < n (n ≤ 2^31 − 1).
template <typename Key>
KeyOrder order_by_key(int64_t n, Key key) {
  KeyOrder out;
  for (int64_t i = 0; i < n; ++i) out.max_key = std::max<int64_t>(out.max_key, key(i));
  out.start.assign(static_cast<size_t>(out.max_key) + 2, 0);
  for (int64_t i = 0; i < n; ++i) ++out.start[key(i) + 1];
  for (int64_t k = 0; k <= out.max_key; ++k) out.start[k + 1] += out.start[k];
  std::vector<int64_t> next(out.start.begin(), out.start.end() - 1);
  out.order.resize(n);
  for (int64_t i = 0; i < n; ++i) out.order[next[key(i)]++] = static_cast<int32_t>(i);
  return out;
}

}  // namespace fspai
