// Route "dense_gram": for layers whose Gram side s is small, build G = CᵀC once and run every
// Lanczos step as a dense symmetric mat-vec (s² multiply-adds, no pass over the nonzeros).
//  * 0/1 patterns: G by AND+popcount over bit-packed rows (cost s²/2 · ⌈L/64⌉ word operations for
//    L rows — independent of density), in column tiles that stay in the L2 cache. Storage: the
//    counts are integers ≤ L, held exactly by float32 (L < 2^24; full s×s) and, for large s, by
//    uint16 (L < 2^16; pattern_gram_uint16 in gram_routes.h) as the packed lower triangle: a
//    quarter of the float32 bytes, each entry read once per mat-vec for y_i and y_j.
//  * weighted problems (|W|, pre-scaled by the power of two c of GramStepBatch::scale): G̃ =
//    Σ_rows c²|w_r||w_r|ᵀ accumulated in float64 from the long-side rows (csr_gram_dense below,
//    shared with the exact dense path), float64 storage: Σ deg²/2 scattered updates by bands of
//    G rows on the threads, or, for rows with many entries (gram_tiles_pay), 64×64 tiles fed by
//    dense 64-wide slices of the rows, by column blocks on the threads.
//
// Determinism: G is built in a fixed order (every entry adds its row terms in row order, with
// fmadd, whichever build and split); each y_i = Σ_j G_ij x_j is computed by one thread
// with a fixed (compile-time) vector-lane order, so y is bit-identical for any thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "bit_pack.h"
#include "fmadd.h"
#include "gram_routes.h"
#include "parallel.h"


namespace fspai {
namespace {

inline int popcount64(uint64_t x) { return __builtin_popcountll(x); }


// Symmetric s×s row-major G from its filled upper triangle, by 16×16 tiles copied through a local
// buffer: each tile's 16 source rows are read, then its 16 destination rows written, each as one
// contiguous run. (Writing a tile column by column keeps 16 lines 's' entries apart in flight;
// for power-of-two s they share an L1 set, and at s = 4096 they exceeded its ways: the mirror was
// a fifth of the build.)
constexpr int64_t kMirrorTile = 16;
template <typename T>
inline void mirror_tile(T* G, int64_t s, int64_t ib, int64_t jb) {
  // Source tile rows ib.. (columns jb.., jb ≥ ib) → destination rows jb.. (columns ib..).
  T buf[kMirrorTile][kMirrorTile];
  const int64_t ni = std::min(kMirrorTile, s - ib), nj = std::min(kMirrorTile, s - jb);
  for (int64_t a = 0; a < ni; ++a)
    for (int64_t b = 0; b < nj; ++b) buf[a][b] = G[(ib + a) * s + jb + b];
  for (int64_t b = 0; b < nj; ++b)
    for (int64_t a = 0; a < ni; ++a)
      if (jb + b > ib + a) G[(jb + b) * s + ib + a] = buf[a][b];  // the strict lower triangle only
}
template <typename T>
void mirror_upper_to_lower(T* G, int64_t s) {
  for (int64_t ib = 0; ib < s; ib += kMirrorTile)
    for (int64_t jb = ib; jb < s; jb += kMirrorTile) mirror_tile(G, s, ib, jb);
}

// An allocator that leaves trivial elements uninitialised: for storage written in full before it
// is read (the pattern Gram: zeroing a 1 MiB float32 G that the build then overwrites was ~2 % of
// a ResNet-34 512×4608 solve).
template <typename T>
struct NoZero {
  using value_type = T;
  NoZero() = default;
  template <typename U>
  NoZero(const NoZero<U>&) {}
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) { std::allocator<T>().deallocate(p, n); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
  template <typename U>
  bool operator==(const NoZero<U>&) const { return true; }
  template <typename U>
  bool operator!=(const NoZero<U>&) const { return false; }
};
template <typename T>
using Unzeroed = std::vector<T, NoZero<T>>;

// One problem of the batch (a part's pattern or its |W|) with its dense Gram.
struct DenseProblem {
  CsrView c;  // kept for half_norms
  int64_t s = 0;
  bool weighted = false;
  double scale = 1.0;       // c of GramStepBatch::scale (weighted problems)
  Unzeroed<float> G;         // pattern: s×s row-major counts (one of G, G16 is used)
  Unzeroed<uint16_t> G16;    // pattern counts where pattern_gram_uint16 (gram_routes.h): packed lower triangle
  std::vector<double> Gd;    // weighted: s×s row-major c²·CᵀC
};

// Popcount build: the Gram's columns j go in tiles whose bit rows b_j stay in the L2 cache while
// every row block passes over them (for s = 4096 the bit rows take 5.6 MB; untiled, each row block re-read them
// from memory and the build ran at a third of its compute speed).
constexpr int64_t kBuildTileBytes = 512 * 1024;

#if defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__)
// [Σ v0, Σ v1, Σ v2, Σ v3] of four vectors of 8 int64 (exact integer sums, any order).
inline __m256i reduce4_epi64(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
  // Pairwise lane sums: a holds (v0, v1) partials per 128-bit lane, b (v2, v3).
  const __m512i a = _mm512_add_epi64(_mm512_unpacklo_epi64(v0, v1), _mm512_unpackhi_epi64(v0, v1));
  const __m512i b = _mm512_add_epi64(_mm512_unpacklo_epi64(v2, v3), _mm512_unpackhi_epi64(v2, v3));
  // Lanes [a0+a1, a2+a3, b0+b1, b2+b3] (128-bit lanes), then the two halves of each pair.
  const __m512i c = _mm512_add_epi64(_mm512_shuffle_i64x2(a, b, 0x88), _mm512_shuffle_i64x2(a, b, 0xDD));
  const __m512i d = _mm512_add_epi64(c, _mm512_shuffle_i64x2(c, c, 0xB1));
  return _mm512_castsi512_si256(_mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 0, 1, 4, 5), d));
}
#endif

// out[u][q] = popcount(bi[q] AND bj[u]) over nw words, for 4 rows bi and NJ = 1 or 2 columns bj.
// 8 words per step with VPOPCNTQ (built with -march=native on a CPU that has it); the last 1–7
// words by masked loads (a scalar tail cost as much as the vector part at 36 words), and each
// column's four sums reduced together. Exact integer counts: any order gives the same result.
template <int NJ>
inline void popcount_block(const uint64_t* const* bi, const uint64_t* const* bj, int64_t nw, int64_t (*out)[4]) {
  int64_t w = 0;
  for (int u = 0; u < NJ; ++u)
    for (int q = 0; q < 4; ++q) out[u][q] = 0;
#if defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__)
  __m512i v[NJ][4];
  for (int u = 0; u < NJ; ++u)
    for (int q = 0; q < 4; ++q) v[u][q] = _mm512_setzero_si512();
  for (; w + 8 <= nw; w += 8) {
    __m512i x[NJ];
    for (int u = 0; u < NJ; ++u) x[u] = _mm512_loadu_si512(bj[u] + w);
    for (int q = 0; q < 4; ++q) {
      const __m512i b = _mm512_loadu_si512(bi[q] + w);
      for (int u = 0; u < NJ; ++u) v[u][q] = _mm512_add_epi64(v[u][q], _mm512_popcnt_epi64(_mm512_and_si512(x[u], b)));
    }
  }
  if (w < nw) {
    const __mmask8 m = static_cast<__mmask8>((1u << (nw - w)) - 1);
    __m512i x[NJ];
    for (int u = 0; u < NJ; ++u) x[u] = _mm512_maskz_loadu_epi64(m, bj[u] + w);
    for (int q = 0; q < 4; ++q) {
      const __m512i b = _mm512_maskz_loadu_epi64(m, bi[q] + w);
      for (int u = 0; u < NJ; ++u) v[u][q] = _mm512_add_epi64(v[u][q], _mm512_popcnt_epi64(_mm512_and_si512(x[u], b)));
    }
    w = nw;
  }
  for (int u = 0; u < NJ; ++u) {
    alignas(32) int64_t c4[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(c4), reduce4_epi64(v[u][0], v[u][1], v[u][2], v[u][3]));
    for (int q = 0; q < 4; ++q) out[u][q] = c4[q];
  }
#endif
  for (; w < nw; ++w)
    for (int u = 0; u < NJ; ++u) {
      const uint64_t x = bj[u][w];
      for (int q = 0; q < 4; ++q) out[u][q] += popcount64(x & bi[q][w]);
    }
}

// Gram of the 0/1 pattern of c on its smaller side s: one bitset per small-side node over the
// L nodes of the other side, G_ij = popcount(b_i AND b_j), stored as T (float or uint16_t; the
// caller checks that T holds L exactly).
// packed: only the lower triangle, row i at offset i(i+1)/2 (no mirror; see sym_packed).
template <typename T>
Unzeroed<T> popcount_gram(const CsrView& c, int threads, bool packed = false) {
  const bool rows_small = c.n_rows < c.n_cols;
  const int64_t s = rows_small ? c.n_rows : c.n_cols, L = rows_small ? c.n_cols : c.n_rows;
  const int64_t nw = (L + 63) / 64;
  std::vector<uint64_t> B(static_cast<size_t>(s) * nw, 0);
  // ≥ 2^20 word operations (~0.3 ms): e.g. 256×2304 builds on both threads.
  const bool par = threads > 1 && s * s * nw >= (int64_t(1) << 20);
  if (rows_small) {
    // Row r's bits are its column indices: one byte store per entry into a 0/1 byte row (no
    // dependency between entries; an |= into the bit word chains every entry of a word through a
    // store-to-load round trip), then 64 bytes → one word. Rows are independent: blocks of rows
    // go to the threads, each with its own byte row.
    const int64_t row_block = 32;
    for_each_index(0, (s + row_block - 1) / row_block, par, threads, [&](int64_t rb) {
      std::vector<uint8_t> bytes(static_cast<size_t>(nw) * 64);
      for (int64_t r = rb * row_block; r < std::min(s, (rb + 1) * row_block); ++r) {
        const int64_t b = c.indptr[r], e = c.indptr[r + 1];
        if (b == e) continue;
        std::fill(bytes.begin(), bytes.end(), uint8_t(0));
        flag_indices(bytes.data(), c.indices, b, e);
        uint64_t* row = B.data() + r * nw;
        for (int64_t w = 0; w < nw; ++w) row[w] = pack_bytes64(bytes.data() + 64 * w);
      }
    });
  } else {
    for (int64_t r = 0; r < c.n_rows; ++r) {  // column bitsets: entries of a row go to different rows of B
      const uint64_t bit = uint64_t(1) << (r & 63);
      const int64_t word = r >> 6;
      for (int64_t p = c.indptr[r]; p < c.indptr[r + 1]; ++p) B[c.indices[p] * nw + word] |= bit;
    }
  }
  // Every entry of the lower triangle is written below (and of the upper one, when full): no zeroing.
  Unzeroed<T> G(packed ? static_cast<size_t>(s) * (s + 1) / 2 : static_cast<size_t>(s) * s);
  auto row = [&](int64_t i) { return packed ? i * (i + 1) / 2 : i * s; };
  const int64_t nblk = (s + 3) / 4;
  const int64_t tile = std::max<int64_t>(4, kBuildTileBytes / (nw * 8) / 4 * 4);
  for (int64_t j0 = 0; j0 < s; j0 += tile) {
    const int64_t j1 = std::min(s, j0 + tile);
    for_each_index_dynamic(j0 / 4, nblk, par, threads, [&](int64_t ib) {
      const int64_t i0 = ib * 4, ni = std::min<int64_t>(4, s - i0);
      const uint64_t* bi[4];
      for (int q = 0; q < 4; ++q) bi[q] = B.data() + (i0 + std::min<int64_t>(q, ni - 1)) * nw;
      const int64_t jmax = std::min(j1, i0 + ni);  // j < i0 + ni covers j ≤ i for every i in the block
      // Columns in pairs (each bit row b_i loaded once for two columns: ~10 % fewer cycles per
      // word at s = 4096), the last one alone.
      for (int64_t j = j0; j < jmax; j += 2) {
        const int nj = j + 1 < jmax ? 2 : 1;
        const uint64_t* bj[2] = {B.data() + j * nw, B.data() + (j + nj - 1) * nw};
        int64_t cs[2][4];
        if (nj == 2)
          popcount_block<2>(bi, bj, nw, cs);
        else
          popcount_block<1>(bi, bj, nw, cs);
        for (int u = 0; u < nj; ++u)
          for (int q = 0; q < ni; ++q) {
            const int64_t i = i0 + q, jj = j + u;
            if (jj > i) continue;
            G[static_cast<size_t>(row(i) + jj)] = static_cast<T>(cs[u][q]);  // lower triangle, row-contiguous
            // The full Gram's upper triangle in the same visit (4 adjacent entries of row jj): no
            // mirror pass over G afterwards (it was ~4 % of a 512×4608 solve at 10 %).
            if (!packed && jj < i) G[static_cast<size_t>(jj * s + i)] = static_cast<T>(cs[u][q]);
          }
      }
    });
  }
  return G;
}

class GramDenseCpu final : public GramStepBatch {
 public:
  GramDenseCpu(const std::vector<CsrView>& parts, bool want_pattern, bool want_weighted, int threads)
      : threads_(threads) {
    for (const GramProblem& g : gram_problems(parts, want_pattern, want_weighted)) {
      const CsrView& c = parts[g.part];
      DenseProblem P;
      P.c = c;
      P.s = gram_dim(c);
      P.weighted = g.weighted;
      if (!g.weighted) {
        if (std::max(c.n_rows, c.n_cols) >= (int64_t(1) << 24))
          throw std::invalid_argument("dense_gram route: more than 2^24 rows (float32 counts would not be exact)");
        if (pattern_gram_uint16(P.s, std::max(c.n_rows, c.n_cols)))
          P.G16 = popcount_gram<uint16_t>(c, threads, true);
        else
          P.G = popcount_gram<float>(c, threads);
      } else {
        P.scale = value_scale(c);
        if (c.n_rows >= c.n_cols) {
          P.Gd = csr_gram_dense(c, true, P.scale, threads);
        } else {
          const CsrOwned t = transpose(c, threads);  // rows must be the long side; freed after the build
          P.Gd = csr_gram_dense(t.view(), true, P.scale, threads);
        }
      }
      problems_.push_back(std::move(P));
    }
  }
  int size() const override { return static_cast<int>(problems_.size()); }
  int64_t dim(int i) const override { return problems_[i].s; }
  double scale(int i) const override { return problems_[i].scale; }
  const char* route() const override { return "dense_gram"; }

  void apply(int count, const int* ids, const double* const* x, double* const* y) override {
    int t = 0;
    // Consecutive vectors of the same problem go in pairs: one read of G serves two vectors.
    while (t < count) {
      if (t + 1 < count && ids[t + 1] == ids[t]) {
        matvec2(problems_[ids[t]], x[t], x[t + 1], y[t], y[t + 1]);
        t += 2;
      } else {
        matvec2(problems_[ids[t]], x[t], nullptr, y[t], nullptr);
        t += 1;
      }
    }
  }

  bool half_norms(int count, const int* ids, const double* const* x, double* out) override {
    for (int t = 0; t < count; ++t) {
      const DenseProblem& P = problems_[ids[t]];
      out[t] = csr_half_norm(P.c, P.weighted, P.scale, x[t]);
    }
    return true;
  }

 private:
  // y = G x for one or two vectors (xb, yb null for one). Rows go in fixed blocks of 4 (the last
  // block clamps its row pointers), so one read of a column chunk of x serves 4 rows and one read
  // of G serves both vectors; each y_i's summation order depends only on i, never on threads.
  void matvec2(const DenseProblem& P, const double* xa, const double* xb, double* ya, double* yb) {
    if (!P.G16.empty()) {
      if (xb)
        sym_packed<2>(P.G16.data(), P.s, xa, xb, ya, yb);
      else
        sym_packed<1>(P.G16.data(), P.s, xa, xa, ya, ya);
      return;
    }
    const int64_t s = P.s;
    // Blocks of 8 rows (one read of x per 8 rows of G; a y_i does not depend on the blocking).
    constexpr int R = 8;
    const int64_t nblk = (s + R - 1) / R;
    // From s = 256 (a ~7 µs product) the row split beats the cost of the parallel region.
    const bool par = threads_ > 1 && s >= 256;
    for_each_index(0, nblk, par, threads_, [&](int64_t ib) {
      if (P.weighted) {
        if (xb)
          rows_block<2, R>(P.Gd.data(), s, ib * R, xa, xb, ya, yb);
        else
          rows_block<1, R>(P.Gd.data(), s, ib * R, xa, xa, ya, ya);
      } else {
        if (xb)
          rows_block<2, R>(P.G.data(), s, ib * R, xa, xb, ya, yb);
        else
          rows_block<1, R>(P.G.data(), s, ib * R, xa, xa, ya, ya);
      }
    });
  }

  // y = G x from the packed lower triangle L of G (G = L + Lᵀ − D): each stored entry is read
  // once and used twice, y_i += G_ij x_j (row dots) and y_j += G_ij x_i (scatter), so a large Gram
  // that streams from memory moves half the bytes. Rows go in blocks of 4 and in kSymChunks fixed
  // chunks of about equal work; a chunk scatters into its own buffer, and y_i = (row i's dot) +
  // Σ_chunks buffer_c[i] in chunk order: the summation order depends only on s, never on threads.
  static constexpr int kSymChunks = 8;
  template <int NV>
  void sym_packed(const uint16_t* G, int64_t s, const double* xa, const double* xb, double* ya, double* yb) {
    // Chunk c covers row blocks [cb[c], cb[c+1]); block b holds rows 4b..4b+3 (work ∝ row index).
    const int64_t nblk = (s + 3) / 4;
    int64_t cb[kSymChunks + 1];
    for (int c = 0; c <= kSymChunks; ++c)
      cb[c] = std::min(nblk, static_cast<int64_t>(std::ceil(nblk * std::sqrt(static_cast<double>(c) / kSymChunks))));
    sym_buf_.resize(static_cast<size_t>(kSymChunks) * NV * s);
    const bool par = threads_ > 1;
    for_each_index_dynamic(0, kSymChunks, par, threads_, [&](int64_t c) {
      double* ba = sym_buf_.data() + static_cast<size_t>(c) * NV * s;
      double* bb = ba + (NV == 2 ? s : 0);
      const int64_t hi_row = std::min(s, cb[c + 1] * 4);
      std::fill(ba, ba + hi_row, 0.0);
      if (NV == 2) std::fill(bb, bb + hi_row, 0.0);
      // 8-row blocks start at multiples of 8 rows (so each row's vectorised columns are those of
      // its 4-row block); an odd 4-row block at either end of the chunk goes alone.
      int64_t b = cb[c];
      if (b % 2 && b < cb[c + 1]) sym_block<NV, 4>(G, s, 4 * b++, xa, xb, ya, yb, ba, bb);
      for (; b + 2 <= cb[c + 1]; b += 2) sym_block<NV, 8>(G, s, b * 4, xa, xb, ya, yb, ba, bb);
      if (b < cb[c + 1]) sym_block<NV, 4>(G, s, b * 4, xa, xb, ya, yb, ba, bb);
    });
    const int64_t block = 2048;
    for_each_index(0, (s + block - 1) / block, par && s >= 2 * block, threads_, [&](int64_t t) {
      const int64_t lo = t * block, hi = std::min(s, lo + block);
      for (int c = 0; c < kSymChunks; ++c) {
        const int64_t hi_row = std::min(s, cb[c + 1] * 4);  // a chunk's buffer is written below hi_row only
        const double* ba = sym_buf_.data() + static_cast<size_t>(c) * NV * s;
        for (int64_t i = lo; i < std::min(hi, hi_row); ++i) {
          ya[i] += ba[i];
          if (NV == 2) yb[i] += ba[s + i];
        }
      }
    });
  }

  // Rows i0..i0+R-1 (clamped): their dots over the packed rows (written to y) and their scatter
  // G_ij x_i into the chunk buffers ba/bb for j < i. R = 8 reads x and the buffers once per 8
  // rows of G (R = 4 for a chunk's last odd 4 rows); either way each buffer entry adds its rows
  // in ascending order and each dot runs over j in order, so the blocking does not change a bit.
  template <int NV, int R>
  static void sym_block(const uint16_t* G, int64_t s, int64_t i0, const double* xa, const double* xb, double* ya,
                        double* yb, double* ba, double* bb) {
    const int64_t ni = std::min<int64_t>(R, s - i0);
    const uint16_t* g[R];
    double xi[R][2];
    for (int q = 0; q < R; ++q) {
      const int64_t i = i0 + std::min<int64_t>(q, ni - 1);
      g[q] = G + i * (i + 1) / 2;
      // A clamped duplicate row scatters nothing: its multiplier is 0.
      xi[q][0] = q < ni ? xa[i] : 0.0;
      xi[q][1] = q < ni ? xb[i] : 0.0;
    }
    double acc[R][2] = {};
    int64_t j = 0;  // the full-block part: columns j < i0 (below every row of the block)
#if defined(__AVX512F__)
    {
      __m512d a[R][NV];
      for (int q = 0; q < R; ++q)
        for (int v = 0; v < NV; ++v) a[q][v] = _mm512_setzero_pd();
      for (; j + 8 <= i0; j += 8) {
        const __m512d x0 = _mm512_loadu_pd(xa + j);
        const __m512d x1 = NV == 2 ? _mm512_loadu_pd(xb + j) : x0;
        __m512d s0 = _mm512_loadu_pd(ba + j);
        __m512d s1 = NV == 2 ? _mm512_loadu_pd(bb + j) : s0;
        for (int q = 0; q < R; ++q) {
          const __m512d gq = load8(g[q] + j);
          a[q][0] = _mm512_fmadd_pd(gq, x0, a[q][0]);
          s0 = _mm512_fmadd_pd(gq, _mm512_set1_pd(xi[q][0]), s0);
          if (NV == 2) {
            a[q][NV - 1] = _mm512_fmadd_pd(gq, x1, a[q][NV - 1]);
            s1 = _mm512_fmadd_pd(gq, _mm512_set1_pd(xi[q][NV - 1]), s1);
          }
        }
        _mm512_storeu_pd(ba + j, s0);
        if (NV == 2) _mm512_storeu_pd(bb + j, s1);
      }
      for (int q = 0; q < R; ++q)
        for (int v = 0; v < NV; ++v) acc[q][v] = _mm512_reduce_add_pd(a[q][v]);
    }
#endif
    for (; j < i0; ++j) {  // tail of the full-block part (all of it in a portable build), fixed order
      double sa = ba[j], sb = NV == 2 ? bb[j] : 0.0;
      for (int q = 0; q < R; ++q) {
        const double gq = static_cast<double>(g[q][j]);
        acc[q][0] = fmadd(gq, xa[j], acc[q][0]);
        sa = fmadd(gq, xi[q][0], sa);
        if (NV == 2) {
          acc[q][1] = fmadd(gq, xb[j], acc[q][1]);
          sb = fmadd(gq, xi[q][1], sb);
        }
      }
      ba[j] = sa;
      if (NV == 2) bb[j] = sb;
    }
    // The block's own triangle: row i0+q holds columns i0..i0+q (diagonal included).
    for (int q = 0; q < ni; ++q) {
      const int64_t i = i0 + q;
      for (int64_t jj = i0; jj <= i; ++jj) {
        const double gq = static_cast<double>(g[q][jj]);
        acc[q][0] = fmadd(gq, xa[jj], acc[q][0]);
        if (NV == 2) acc[q][1] = fmadd(gq, xb[jj], acc[q][1]);
        if (jj < i) {  // the mirrored entry G_{jj,i}
          ba[jj] = fmadd(gq, xi[q][0], ba[jj]);
          if (NV == 2) bb[jj] = fmadd(gq, xi[q][1], bb[jj]);
        }
      }
    }
    for (int q = 0; q < ni; ++q) {
      ya[i0 + q] = acc[q][0];
      if (NV == 2) yb[i0 + q] = acc[q][1];
    }
  }

#if defined(__AVX512F__)
  static inline __m512d load8(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  static inline __m512d load8(const double* p) { return _mm512_loadu_pd(p); }
  static inline __m512d load8(const uint16_t* p) {
    return _mm512_cvtepi32_pd(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  static inline __m256d load4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  static inline __m256d load4(const double* p) { return _mm256_loadu_pd(p); }
  static inline __m256d load4(const uint16_t* p) {
    return _mm256_cvtepi32_pd(_mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
#endif

  // Rows i0..i0+R-1 (clamped) of a full row-major G: y_i = Σ_j G_ij x_j, j in order (8 lanes, a
  // fixed reduction, then the scalar tail), the same for any R and any split of the rows.
  template <int NV, int R, typename T>
  static void rows_block(const T* G, int64_t s, int64_t i0, const double* xa, const double* xb, double* ya,
                         double* yb) {
    const int64_t ni = std::min<int64_t>(R, s - i0);
    const T* g[R];
    for (int q = 0; q < R; ++q) g[q] = G + (i0 + std::min<int64_t>(q, ni - 1)) * s;
    double acc[R][2] = {};
    int64_t j = 0;
#if defined(__AVX512F__)
    {
      __m512d a[R][NV];
      for (int q = 0; q < R; ++q)
        for (int v = 0; v < NV; ++v) a[q][v] = _mm512_setzero_pd();
      for (; j + 8 <= s; j += 8) {
        const __m512d x0 = _mm512_loadu_pd(xa + j);
        const __m512d x1 = NV == 2 ? _mm512_loadu_pd(xb + j) : x0;
        for (int q = 0; q < R; ++q) {
          const __m512d gq = load8(g[q] + j);
          a[q][0] = _mm512_fmadd_pd(gq, x0, a[q][0]);
          if (NV == 2) a[q][NV - 1] = _mm512_fmadd_pd(gq, x1, a[q][NV - 1]);
        }
      }
      for (int q = 0; q < R; ++q)
        for (int v = 0; v < NV; ++v) acc[q][v] = _mm512_reduce_add_pd(a[q][v]);
    }
#elif defined(__AVX2__) && defined(__FMA__)
    {
      __m256d a[R][NV];
      for (int q = 0; q < R; ++q)
        for (int v = 0; v < NV; ++v) a[q][v] = _mm256_setzero_pd();
      for (; j + 4 <= s; j += 4) {
        const __m256d x0 = _mm256_loadu_pd(xa + j);
        const __m256d x1 = NV == 2 ? _mm256_loadu_pd(xb + j) : x0;
        for (int q = 0; q < R; ++q) {
          const __m256d gq = load4(g[q] + j);
          a[q][0] = _mm256_fmadd_pd(gq, x0, a[q][0]);
          if (NV == 2) a[q][NV - 1] = _mm256_fmadd_pd(gq, x1, a[q][NV - 1]);
        }
      }
      for (int q = 0; q < R; ++q)
        for (int v = 0; v < NV; ++v) {
          alignas(32) double t[4];
          _mm256_store_pd(t, a[q][v]);
          acc[q][v] = (t[0] + t[1]) + (t[2] + t[3]);
        }
    }
#endif
    // Scalar tails use fmadd (fmadd.h): left to the compiler, the inlined serial and OpenMP copies
    // of this loop contracted a*b+c differently (results differed in the last bit between thread
    // counts).
    for (; j < s; ++j) {  // tail (the whole row in a portable build), fixed order
      const double x0 = xa[j], x1 = xb[j];
      for (int q = 0; q < R; ++q) {
        const double gq = static_cast<double>(g[q][j]);
        acc[q][0] = fmadd(gq, x0, acc[q][0]);
        if (NV == 2) acc[q][1] = fmadd(gq, x1, acc[q][1]);
      }
    }
    for (int q = 0; q < ni; ++q) {
      ya[i0 + q] = acc[q][0];
      if (NV == 2) yb[i0 + q] = acc[q][1];
    }
  }

  int threads_;
  std::vector<DenseProblem> problems_;
  std::vector<double> sym_buf_;  // sym_packed's chunk buffers
};

}  // namespace

namespace {

#if defined(__AVX512F__) && defined(__FMA__)  // FMA: the scattered build must fuse alike (fmadd.h)
// Tiled build of the upper block triangle of G = C̃ᵀC̃ for rows of many entries. For each column
// block J of 64 Gram-side nodes, the rows' J slices are expanded into dense 64-vectors (a chunk of
// rows at a time, Wd), then every tile (I ≤ J) of 64×64 is accumulated in an L1 buffer: an entry
// a of row r in block I adds v_a · Wd[r] to tile row idx_a (8 vector FMAs). Work ∝ entries ×
// blocks instead of Σ deg², so it wins once rows are dense (2.1–2.9× faster than the scattered
// updates at 50 %, break-even near 15 %). Each G entry still adds its
// row terms in row order, fma(v_i, v_j, acc) with the same operands, and a zero slot adds exactly
// nothing, so the result is bit-identical to the scattered build.
constexpr int64_t kGramTileStride = kGramTile + 8;  // padded: tile rows 512 B apart would alias in L1
constexpr int64_t kGramTileRows = 4096;         // rows per Wd chunk (2 MiB)

// 64-byte aligned view into a buffer with 8 spare doubles (a vector row split over two cache
// lines costs two accesses: unaligned tile rows ran the build at half speed).
inline double* align64(std::vector<double>& v) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((64 - p % 64) % 64) / sizeof(double);
}

void gram_tiles_block(const CsrView& c, bool weighted, double scale, int64_t J, double* g, double* wd, int64_t* pos,
                      double* tile) {
  const int64_t s = c.n_cols, T = kGramTile, TS = kGramTileStride;
  const int64_t J0 = J * T, J1 = std::min(s, J0 + T);
  auto val = [&](int64_t p) { return weighted ? scale * c.value(p) : 1.0; };
  for (int64_t R0 = 0; R0 < c.n_rows; R0 += kGramTileRows) {
    const int64_t R1 = std::min(c.n_rows, R0 + kGramTileRows);
    for (int64_t r = R0; r < R1; ++r) {  // Wd[r] = row r on columns J0..J1 (zeros elsewhere)
      const int32_t* first = c.indices + c.indptr[r];
      const int32_t* last = c.indices + c.indptr[r + 1];
      double* w = wd + (r - R0) * T;
      std::fill(w, w + T, 0.0);
      for (const int32_t* q = std::lower_bound(first, last, static_cast<int32_t>(J0)); q != last && *q < J1; ++q)
        w[*q - J0] = val(q - c.indices);
      pos[r - R0] = c.indptr[r];
    }
    for (int64_t I = 0; I <= J; ++I) {
      const int64_t I0 = I * T, I1 = std::min(s, I0 + T), ni = I1 - I0, nj = J1 - J0;
      for (int64_t i = 0; i < T; ++i)  // resume from G (earlier row chunks) or start at 0
        for (int64_t j = 0; j < T; ++j)
          tile[i * TS + j] = (R0 > 0 && i < ni && j < nj) ? g[(I0 + i) * s + J0 + j] : 0.0;
      for (int64_t r = R0; r < R1; ++r) {
        int64_t a = pos[r - R0];
        const int64_t e = c.indptr[r + 1];
        if (a == e || c.indices[a] >= I1) continue;
        const double* w = wd + (r - R0) * T;
        __m512d wv[kGramTile / 8];
        for (int q = 0; q < T / 8; ++q) wv[q] = _mm512_load_pd(w + 8 * q);
        for (; a < e && c.indices[a] < I1; ++a) {
          const __m512d va = _mm512_set1_pd(val(a));
          double* t = tile + (c.indices[a] - I0) * TS;
          for (int q = 0; q < T / 8; ++q) _mm512_store_pd(t + 8 * q, _mm512_fmadd_pd(va, wv[q], _mm512_load_pd(t + 8 * q)));
        }
        pos[r - R0] = a;  // the next block I starts here
      }
      for (int64_t i = 0; i < ni; ++i) std::copy(&tile[i * TS], &tile[i * TS] + nj, g + (I0 + i) * s + J0);
    }
  }
}
#endif

}  // namespace

bool gram_tiles_pay(double updates, double nnz, int64_t s) {
#if defined(__AVX512F__) && defined(__FMA__)
  // Measured (one thread): a tile visit ~11 ns; a scattered update ~0.9-1.1 ns while G (float64,
  // s²·8 bytes) stays in the L2 cache, ~1.9 ns at s = 1024 (8 MiB). Break-even ~12 and ~7 updates
  // per visit.
  const double per_visit = static_cast<double>(s) * static_cast<double>(s) * 8.0 <= 4194304.0 ? 12.0 : 7.0;
  return s >= kGramTile && updates > 0.0 && updates >= per_visit * gram_tile_visits(nnz, s);
#else
  (void)updates, (void)nnz, (void)s;
  return false;
#endif
}

double gram_row_updates(const CsrView& c) {
  double total = 0.0;
  for (int64_t r = 0; r < c.n_rows; ++r) {
    const double d = static_cast<double>(c.indptr[r + 1] - c.indptr[r]);
    total += d * (d + 1.0);
  }
  return 0.5 * total;
}

std::vector<double> csr_gram_dense(const CsrView& c, bool weighted, double scale, int threads, GramBuild build) {
  // Upper triangle only (indices ascend within a row, so j > i lands above the diagonal), then
  // mirrored: half the scattered updates. Every entry sums its terms in row order, however the
  // work is split, so the result is the same for any thread count (and either build).
  const int64_t s = c.n_cols, nnz = c.nnz();
  std::vector<double> g(static_cast<size_t>(s) * s, 0.0);
  const double updates = gram_row_updates(c);
  const bool parallel = threads > 1 && updates >= kParallelGramUpdates;
#if defined(__AVX512F__) && defined(__FMA__)
  {
    const int64_t nb = (s + kGramTile - 1) / kGramTile;
    if (build == GramBuild::Tiles || (build == GramBuild::Auto && gram_tiles_pay(updates, static_cast<double>(nnz), s))) {
      // Column blocks J are independent (block J fills tiles (I ≤ J, J)); larger J first.
      for_each_index_dynamic(0, nb, parallel, threads, [&](int64_t k) {
        std::vector<double> wd(static_cast<size_t>(std::min(c.n_rows, kGramTileRows)) * kGramTile + 8);
        std::vector<int64_t> pos(static_cast<size_t>(std::min(c.n_rows, kGramTileRows)));
        std::vector<double> tile(static_cast<size_t>(kGramTile) * kGramTileStride + 8);
        gram_tiles_block(c, weighted, scale, nb - 1 - k, g.data(), align64(wd), pos.data(), align64(tile));
      });
      mirror_upper_to_lower(g.data(), s);
      return g;
    }
  }
#endif
  // Scattered updates.
  // Parallel: G is cut into bands of consecutive rows with equal work, each band filled by one
  // thread that scans every long row for its own indices (a row's band segment by binary search).
  auto fill_band = [&](int32_t lo, int32_t hi, bool whole) {
    std::vector<double> rv;
    for (int64_t r = 0; r < c.n_rows; ++r) {
      const int32_t* first = c.indices + c.indptr[r];
      const int32_t* last = c.indices + c.indptr[r + 1];
      const int32_t* a0 = whole ? first : std::lower_bound(first, last, lo);
      if (a0 == last || *a0 >= hi) continue;
      const int32_t* a1 = whole ? last : std::lower_bound(a0, last, hi);
      const int64_t base = a0 - c.indices, d = last - a0, na = a1 - a0;  // values from a0 to the row's end
      rv.resize(static_cast<size_t>(d));
      for (int64_t q = 0; q < d; ++q) rv[q] = weighted ? scale * c.value(base + q) : 1.0;
      for (int64_t i = 0; i < na; ++i) {
        const double vi = rv[i];
        double* row = g.data() + static_cast<int64_t>(a0[i]) * s;
        int64_t j = i;
#if defined(__AVX512F__)
        // 8 updates per gather/FMA/scatter (a row's indices are distinct, so no lanes collide):
        // 1.15-1.3× the scalar loop from ~5 % density, the same operations lane by lane.
        const __m512d vv = _mm512_set1_pd(vi);
        for (; j + 8 <= d; j += 8) {
          const __m256i ix = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a0 + j));
          const __m512d gv = _mm512_i32gather_pd(ix, row, 8);
          _mm512_i32scatter_pd(row, ix, _mm512_fmadd_pd(vv, _mm512_loadu_pd(rv.data() + j), gv), 8);
        }
#endif
        // fmadd: the serial and OpenMP copies of this loop must round alike (fmadd.h).
        for (; j < d; ++j) row[a0[j]] = fmadd(vi, rv[j], row[a0[j]]);
      }
    }
  };
  if (!parallel) {
    fill_band(0, static_cast<int32_t>(s), true);
  } else {
    // Updates landing in G row idx[a] of one long row: everything from a to the row's end (they
    // sum to `updates`).
    std::vector<double> work(static_cast<size_t>(s), 0.0);
    for (int64_t r = 0; r < c.n_rows; ++r)
      for (int64_t p = c.indptr[r], e = c.indptr[r + 1]; p < e; ++p) work[c.indices[p]] += static_cast<double>(e - p);
    const int nband = 4 * threads;
    std::vector<int64_t> band{0};
    double acc = 0.0;
    for (int64_t i = 0; i < s && static_cast<int>(band.size()) < nband; ++i) {
      acc += work[i];
      if (acc >= updates * static_cast<double>(band.size()) / nband) band.push_back(i + 1);
    }
    if (band.back() != s) band.push_back(s);
    for_each_index_dynamic(0, static_cast<int64_t>(band.size()) - 1, true, threads, [&](int64_t k) {
      fill_band(static_cast<int32_t>(band[k]), static_cast<int32_t>(band[k + 1]), false);
    });
  }
  mirror_upper_to_lower(g.data(), s);
  return g;
}

std::unique_ptr<GramStepBatch> make_gram_dense_cpu(const std::vector<CsrView>& parts, bool want_pattern,
                                                   bool want_weighted, int threads) {
  return std::make_unique<GramDenseCpu>(parts, want_pattern, want_weighted, threads);
}

}  // namespace fspai
