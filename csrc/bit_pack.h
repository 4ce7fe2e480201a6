// Byte masks to bit masks: one owner for the 64-bytes-at-a-time test used by the popcount Gram
// build (gram_dense_cpu.cpp) and the dense-mask scan (dense_to_csr_cpu.cpp).
#pragma once
#include <cstdint>

#if defined(__AVX512BW__)
#include <immintrin.h>
#endif

namespace fspai {

// Bit k of the result = (bytes[k] != 0), k < 64.
inline uint64_t pack_bytes64(const uint8_t* bytes) {
#if defined(__AVX512BW__)
  const __m512i v = _mm512_loadu_si512(bytes);
  return _mm512_test_epi8_mask(v, v);
#else
  uint64_t out = 0;
  for (int k = 0; k < 64; ++k) out |= static_cast<uint64_t>(bytes[k] != 0) << k;
  return out;
#endif
}

}  // namespace fspai
