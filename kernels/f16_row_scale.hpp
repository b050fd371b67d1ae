// How a row of F32 activations is narrowed to F16 for a GEMM without overflowing: F16 tops out at
// 65504, and GLM-4's activations (the SwiGLU output feeding the down projection above all) can pass
// that, which FP16 arithmetic turns into inf and then NaN. A row whose largest magnitude exceeds
// f16_row_limit is scaled down by a power of two (exact: only the exponent moves), multiplied, and
// its output row scaled back up by the same power, which the FP32 accumulation holds. Rows within
// the limit are not touched. BF16 has F32's range and needs none of this. C++17, host and device.
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define GLM4_F16_HOST_DEVICE __host__ __device__
#else
#define GLM4_F16_HOST_DEVICE
#endif

namespace glm4::kernels {

/// The largest magnitude a narrowed row keeps: a power of two, with room below 65504 for rounding.
inline constexpr float f16_row_limit = 32768.0f;

/// The e >= 0 to scale a row by 2^-e so its largest magnitude `absmax` is at most f16_row_limit;
/// 0 for rows within the limit and for inf/NaN (they stay what they are, as on the CPU).
GLM4_F16_HOST_DEVICE inline int f16_row_scale_exponent(float absmax) {
  if (!(absmax > f16_row_limit && absmax <= 3.402823466e38f)) return 0;  // within the limit, inf or NaN
  int exponent = 0;
  // absmax / limit = m * 2^exponent with m in [0.5, 1): scaling by 2^-exponent brings absmax to at
  // most the limit, and by one power less when m is exactly 0.5.
  const double mantissa = frexp(static_cast<double>(absmax) / f16_row_limit, &exponent);
  return mantissa == 0.5 ? exponent - 1 : exponent;
}

}  // namespace glm4::kernels
