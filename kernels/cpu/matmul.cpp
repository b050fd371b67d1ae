// out (T, N) = x (T, K) . w (N, K)^T (+ bias): register-tiled, weights widened to F32 in registers.
//
// Work is split over blocks of weight rows (one OpenMP iteration each), so every thread streams
// its own slice of w from memory once per block of up to token_block tokens. x is first packed
// into K slices ([slice][token][k], contiguous); a group of row_group weight rows meets every
// token of the block from L2 before the next group is read. A tile of R weight rows x C tokens
// keeps its R*C dot products in registers (4x3, 6x2, 8x1), so each widened weight vector feeds C
// FMAs. T == 1 is a GEMV over whole rows; it runs at memory bandwidth. With AVX-512 the lanes
// and the tiles double (16 lanes; up to 4 x 6 tiles in 32 registers).
// Measured on one Zen 3 core at 2.45 GHz (peak 78 GFLOP/s), BF16 4096x4096: 72 GFLOP/s at
// T = 128, 62 at T = 16, 47 at T = 4; GEMV streams weights at ~22 GB/s (the core's bandwidth).
#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/cpu/simd.hpp"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wuninitialized and
// -Wmaybe-uninitialized report once inlined here (GCC bug 105593); nothing of ours is uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace glm4::kernels::cpu {
namespace {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(GLM4_CPU_AVX2)
// Sixteen-lane vectors and 32 registers: bigger tiles, so each widened weight vector feeds up to
// six FMAs and each token vector up to four.
struct lanes {
  using vec = __m512;
  static constexpr int width = 16;
  static vec zero() { return _mm512_setzero_ps(); }
  static vec load(const float* p) { return _mm512_loadu_ps(p); }
  static vec load(const bf16_bits* p) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  static vec load(const f16_bits* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  // Both halves through extractf32x8: GCC 12's _mm512_castps512_ps256 trips -Wuninitialized.
  static float sum(vec v) { return hsum8(_mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1))); }
  static void keep_in_register(vec& v) { __asm__("" : "+v"(v)); }
};
// Token tiles, largest first; C * R accumulators + C token vectors + 1 weight vector <= 32.
constexpr int token_tiles[] = {6, 4, 2, 1};
template <int C> constexpr int tile_rows = C == 6 ? 4 : C == 4 ? 6 : 8;
#else
struct lanes {
  using vec = vec8;
  static constexpr int width = 8;
  static vec zero() { return zero8(); }
  template <class W> static vec load(const W* p) { return load8(p); }
  static vec fma(vec a, vec b, vec c) { return fma8(a, b, c); }
  static float sum(vec v) { return hsum8(v); }
  static void keep_in_register(vec& v) { cpu::keep_in_register(v); }
};
// Token tiles, largest first; C * R accumulators + C token vectors + 1 weight vector fit the 16
// registers, and C == 1 still has 8 independent FMA chains.
constexpr int token_tiles[] = {3, 2, 1};
template <int C> constexpr int tile_rows = C == 1 ? 8 : C == 2 ? 6 : 4;
#endif
// Rows that meet every token of a block before the next rows are read (a multiple of each R).
constexpr std::int64_t row_group = 24;
constexpr std::int64_t k_slice = 4096;
constexpr std::int64_t token_block = 24;
constexpr std::int64_t max_rows_per_block = 4 * row_group;

struct matmul_args {
  const float* x;     // (T, K), or packed [slice][T][k_slice] when num_tokens > 1
  const void* w;      // (N, K)
  const float* bias;  // (N) or nullptr
  float* out;         // (T, N)
  std::int64_t num_tokens, n, k;
};

// Dot products of R weight rows (stride k) with C token rows (stride ldx) over length len; the
// first slice (k0 == 0) adds the bias, later slices accumulate into out (stride n).
template <class W, int R, int C>
inline void tile(const float* x, std::int64_t ldx, const W* w, std::int64_t k, std::int64_t len, float* out,
                 std::int64_t n, const float* bias, bool first) {
  constexpr int width = lanes::width;
  typename lanes::vec acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = lanes::zero();
  std::int64_t i = 0;
  for (; i + width <= len; i += width) {
    typename lanes::vec xv[C];
    for (int c = 0; c < C; ++c) {
      xv[c] = lanes::load(x + c * ldx + i);
      lanes::keep_in_register(xv[c]);
    }
    for (int r = 0; r < R; ++r) {
      const auto wv = lanes::load(w + r * k + i);
      for (int c = 0; c < C; ++c) acc[r][c] = lanes::fma(wv, xv[c], acc[r][c]);
    }
  }
  float sums[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) sums[r][c] = lanes::sum(acc[r][c]);
  for (; i < len; ++i)
    for (int r = 0; r < R; ++r) {
      const float wi = to_f32(w[r * k + i]);
      for (int c = 0; c < C; ++c) sums[r][c] += wi * x[c * ldx + i];
    }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) {
      float& dst = out[c * n + r];
      dst = first ? sums[r][c] + (bias ? bias[r] : 0.0f) : dst + sums[r][c];
    }
}

// Weight rows [n0, n1) against C tokens, all within one K slice.
template <class W, int C>
void row_range(const matmul_args& a, const float* x, std::int64_t ldx, std::int64_t t0, std::int64_t n0,
               std::int64_t n1, std::int64_t k0, std::int64_t len) {
  const W* w = static_cast<const W*>(a.w) + k0;
  float* out = a.out + t0 * a.n;
  const float* bias = a.bias;
  constexpr int R = tile_rows<C>;
  std::int64_t j = n0;
  for (; j + R <= n1; j += R)
    tile<W, R, C>(x, ldx, w + j * a.k, a.k, len, out + j, a.n, bias ? bias + j : nullptr, k0 == 0);
  for (; j < n1; ++j) tile<W, 1, C>(x, ldx, w + j * a.k, a.k, len, out + j, a.n, bias ? bias + j : nullptr, k0 == 0);
}

template <class W>
void gemv_block(const matmul_args& a, std::int64_t n0, std::int64_t n1) {
  row_range<W, 1>(a, a.x, a.k, 0, n0, n1, 0, a.k);
}

// Tokens [t, t_end) of a packed K slice in tiles of token_tiles[I...], largest first.
template <class W, std::size_t I = 0>
void token_tiles_over(const matmul_args& a, const float* slice, std::int64_t len, std::int64_t t, std::int64_t t_end,
                      std::int64_t j, std::int64_t j1, std::int64_t k0) {
  constexpr int C = token_tiles[I];
  // A lone token is a GEMV tile: end in 2 + 2 rather than 3 + 1.
  constexpr bool avoid_lone = C == 3;
  for (; t + C <= t_end && !(avoid_lone && t_end - t == 4); t += C)
    row_range<W, C>(a, slice + t * len, len, t, j, j1, k0, len);
  if constexpr (I + 1 < std::size(token_tiles)) token_tiles_over<W, I + 1>(a, slice, len, t, t_end, j, j1, k0);
}

// Weight rows [n0, n1) against every token, x packed by packed_x().
template <class W>
void gemm_block(const matmul_args& a, std::int64_t n0, std::int64_t n1) {
  for (std::int64_t tb = 0; tb < a.num_tokens; tb += token_block) {
    const std::int64_t tb_end = std::min(a.num_tokens, tb + token_block);
    for (std::int64_t k0 = 0; k0 < a.k; k0 += k_slice) {
      const std::int64_t len = std::min(k_slice, a.k - k0);
      const float* slice = a.x + a.num_tokens * k0;  // (T, len)
      for (std::int64_t j = n0; j < n1; j += row_group) {
        const std::int64_t j1 = std::min(n1, j + row_group);
        token_tiles_over<W>(a, slice, len, tb, tb_end, j, j1, k0);
      }
    }
  }
}

// x (T, K) rearranged as [slice][T][len]: slice rows are contiguous, so neither the packed rows
// nor the weight rows (strides of whole KiB) fight over the same L1 sets.
const float* packed_x(const float* x, std::int64_t num_tokens, std::int64_t k) {
  thread_local std::vector<float> packed;
  packed.resize(static_cast<std::size_t>(num_tokens * k));
  for (std::int64_t k0 = 0; k0 < k; k0 += k_slice) {
    const std::int64_t len = std::min(k_slice, k - k0);
    for (std::int64_t t = 0; t < num_tokens; ++t)
      std::memcpy(packed.data() + num_tokens * k0 + t * len, x + t * k + k0, static_cast<std::size_t>(len) * sizeof(float));
  }
  return packed.data();
}

template <class W>
void run(matmul_args a, int num_threads) {
  const std::int64_t per_thread = (a.n + num_threads * 4 - 1) / (num_threads * 4);
  const std::int64_t block = std::clamp<std::int64_t>((per_thread + row_group - 1) / row_group * row_group, row_group,
                                                      max_rows_per_block);
  const std::int64_t num_blocks = (a.n + block - 1) / block;
  const bool parallel = a.num_tokens * a.n * a.k >= min_parallel_elements * 4;
  if (a.num_tokens == 1) {
#pragma omp parallel for schedule(static) num_threads(num_threads) if (parallel)
    for (std::int64_t b = 0; b < num_blocks; ++b) gemv_block<W>(a, b * block, std::min(a.n, (b + 1) * block));
    return;
  }
  a.x = packed_x(a.x, a.num_tokens, a.k);
#pragma omp parallel for schedule(static) num_threads(num_threads) if (parallel)
  for (std::int64_t b = 0; b < num_blocks; ++b) gemm_block<W>(a, b * block, std::min(a.n, (b + 1) * block));
}

}  // namespace

void matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias, int num_threads) {
  expect_rank(x, dtype::f32, 2, "matmul x");
  expect_float_type(w, "matmul w");
  if (w.rank() != 2 || w.dim(1) != x.dim(1))
    throw std::invalid_argument("matmul: w " + describe(w) + " does not match x " + describe(x));
  const std::int64_t num_tokens = x.dim(0), n = w.dim(0), k = x.dim(1);
  expect_shape(out, dtype::f32, {num_tokens, n}, "matmul out");
  if (out.data == x.data && num_tokens > 0) throw std::invalid_argument("matmul: out must not alias x");

  std::vector<float> bias_f32;
  if (bias != nullptr) {
    expect_float_type(*bias, "matmul bias");
    if (bias->rank() != 1 || bias->dim(0) != n)
      throw std::invalid_argument("matmul: bias " + describe(*bias) + " does not match w " + describe(w));
    bias_f32.resize(static_cast<std::size_t>(n));
    visit_float_type(bias->type, [&]<class B>(type_tag<B>) {
      const B* values = bias->as<B>();
      for (std::int64_t i = 0; i < n; ++i) bias_f32[static_cast<std::size_t>(i)] = to_f32(values[i]);
    });
  }
  if (num_tokens == 0 || n == 0) return;
  if (k == 0) {
    for (std::int64_t t = 0; t < num_tokens; ++t)
      for (std::int64_t j = 0; j < n; ++j) out.as<float>()[t * n + j] = bias ? bias_f32[static_cast<std::size_t>(j)] : 0.0f;
    return;
  }
  const matmul_args args{x.as<float>(), w.data, bias ? bias_f32.data() : nullptr, out.as<float>(), num_tokens, n, k};
  visit_float_type(w.type, [&]<class W>(type_tag<W>) { run<W>(args, num_threads); });
}

}  // namespace glm4::kernels::cpu
