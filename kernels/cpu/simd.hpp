// Eight-lane F32 vectors for the CPU kernels, and the loads that widen F16/BF16 weights into them.
// AVX2+FMA+F16C when the compiler targets it; otherwise a plain array the optimiser vectorises.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/dtype.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define GLM4_CPU_AVX2 1
#endif

namespace glm4::kernels::cpu {

/// Storage types of 16-bit weights; distinct so overloads can tell them apart.
struct bf16_bits {
  std::uint16_t bits;
};
struct f16_bits {
  std::uint16_t bits;
};

template <class W> struct type_tag {
  using type = W;
};

/// Calls fn(type_tag<W>{}) with W the storage type of `type` (float, f16_bits or bf16_bits);
/// false when `type` is not a float type.
template <class Fn> bool visit_float_type(dtype type, Fn&& fn) {
  switch (type) {
    case dtype::f32: fn(type_tag<float>{}); return true;
    case dtype::f16: fn(type_tag<f16_bits>{}); return true;
    case dtype::bf16: fn(type_tag<bf16_bits>{}); return true;
    case dtype::i32: return false;
  }
  return false;
}

inline float to_f32(float value) { return value; }
inline float to_f32(bf16_bits value) { return bf16_to_f32(value.bits); }
inline float to_f32(f16_bits value) {
#ifdef GLM4_CPU_AVX2
  return _cvtsh_ss(value.bits);
#else
  return f16_to_f32(value.bits);
#endif
}

/// Stores value in the storage type of *dst, rounding to nearest even; F16 clamps to
/// [-f16_max, f16_max] first (kernels/dtype.hpp).
inline void narrow_to(float* dst, float value) { *dst = value; }
inline void narrow_to(bf16_bits* dst, float value) { dst->bits = f32_to_bf16(value); }
inline void narrow_to(f16_bits* dst, float value) {
  dst->bits = f32_to_f16(value > f16_max ? f16_max : (value < -f16_max ? -f16_max : value));
}

#ifdef GLM4_CPU_AVX2

using vec8 = __m256;

inline vec8 zero8() { return _mm256_setzero_ps(); }
inline vec8 splat8(float value) { return _mm256_set1_ps(value); }
inline vec8 load8(const float* p) { return _mm256_loadu_ps(p); }
inline vec8 load8(const bf16_bits* p) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}
inline vec8 load8(const f16_bits* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline void store8(float* p, vec8 v) { _mm256_storeu_ps(p, v); }
/// a * b + c, one rounding.
inline vec8 fma8(vec8 a, vec8 b, vec8 c) { return _mm256_fmadd_ps(a, b, c); }
inline vec8 add8(vec8 a, vec8 b) { return _mm256_add_ps(a, b); }
inline vec8 mul8(vec8 a, vec8 b) { return _mm256_mul_ps(a, b); }
inline vec8 max8(vec8 a, vec8 b) { return _mm256_max_ps(a, b); }
/// Stops the compiler from folding the load of v into every FMA that uses it (it otherwise
/// reloads a tile's token vectors once per weight row, and loads become the bottleneck).
inline void keep_in_register(vec8& v) { __asm__("" : "+x"(v)); }
inline float hsum8(vec8 v) {
  __m128 low = _mm256_castps256_ps128(v);
  const __m128 high = _mm256_extractf128_ps(v, 1);
  low = _mm_add_ps(low, high);
  __m128 shuffled = _mm_movehdup_ps(low);
  low = _mm_add_ps(low, shuffled);
  shuffled = _mm_movehl_ps(shuffled, low);
  return _mm_cvtss_f32(_mm_add_ss(low, shuffled));
}

#else

struct vec8 {
  float lane[8];
};

inline vec8 zero8() { return vec8{}; }
inline vec8 splat8(float value) {
  vec8 v;
  for (float& lane : v.lane) lane = value;
  return v;
}
template <class W> inline vec8 load8(const W* p) {
  vec8 v;
  for (int i = 0; i < 8; ++i) v.lane[i] = to_f32(p[i]);
  return v;
}
inline void store8(float* p, vec8 v) { std::memcpy(p, v.lane, sizeof v.lane); }
inline vec8 fma8(vec8 a, vec8 b, vec8 c) {
  for (int i = 0; i < 8; ++i) c.lane[i] += a.lane[i] * b.lane[i];
  return c;
}
inline vec8 add8(vec8 a, vec8 b) {
  for (int i = 0; i < 8; ++i) a.lane[i] += b.lane[i];
  return a;
}
inline vec8 mul8(vec8 a, vec8 b) {
  for (int i = 0; i < 8; ++i) a.lane[i] *= b.lane[i];
  return a;
}
inline vec8 max8(vec8 a, vec8 b) {
  for (int i = 0; i < 8; ++i) a.lane[i] = a.lane[i] > b.lane[i] ? a.lane[i] : b.lane[i];
  return a;
}
inline void keep_in_register(vec8&) {}
inline float hsum8(vec8 v) {
  float sum = 0.0f;
  for (float lane : v.lane) sum += lane;
  return sum;
}

#endif

/// Dot product of n floats with n stored elements of b (F32, F16 or BF16 widened), FP32
/// accumulation in eight lanes.
template <class W> inline float dot_f32(const float* a, const W* b, std::int64_t n) {
  vec8 acc0 = zero8(), acc1 = zero8();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = fma8(load8(a + i), load8(b + i), acc0);
    acc1 = fma8(load8(a + i + 8), load8(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = fma8(load8(a + i), load8(b + i), acc0);
  float sum = hsum8(add8(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * to_f32(b[i]);
  return sum;
}

/// y[i] += a * x[i] for n floats; x stored as F32, F16 or BF16.
template <class W> inline void axpy_f32(float* y, float a, const W* x, std::int64_t n) {
  const vec8 scale = splat8(a);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(y + i, fma8(scale, load8(x + i), load8(y + i)));
  for (; i < n; ++i) y[i] += a * to_f32(x[i]);
}

}  // namespace glm4::kernels::cpu
