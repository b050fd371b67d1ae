// RMSNorm over the last axis: out (T, H) = x / sqrt(mean(x^2) + eps) * weight, statistics in FP32.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/cpu/simd.hpp"

namespace glm4::kernels::cpu {
namespace {

template <class W>
void norm_rows(float* out, const float* x, const W* weight, float eps, std::int64_t num_rows, std::int64_t hidden,
               int num_threads) {
  const bool parallel = num_rows > 1 && num_rows * hidden >= min_parallel_elements;
#pragma omp parallel for schedule(static) num_threads(num_threads) if (parallel)
  for (std::int64_t t = 0; t < num_rows; ++t) {
    const float* row = x + t * hidden;
    float* dst = out + t * hidden;
    const float mean_square = dot_f32(row, row, hidden) / static_cast<float>(hidden);
    const float inv_rms = 1.0f / std::sqrt(mean_square + eps);
    // (x * inv_rms) * weight, in the order transformers' RMSNorm rounds.
    const vec8 scale = splat8(inv_rms);
    std::int64_t i = 0;
    for (; i + 8 <= hidden; i += 8) store8(dst + i, mul8(mul8(load8(row + i), scale), load8(weight + i)));
    for (; i < hidden; ++i) dst[i] = row[i] * inv_rms * to_f32(weight[i]);
  }
}

}  // namespace

void rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps, int num_threads) {
  expect_rank(x, dtype::f32, 2, "rms_norm x");
  expect_float_type(weight, "rms_norm weight");
  const std::int64_t num_rows = x.dim(0), hidden = x.dim(1);
  if (weight.rank() != 1 || weight.dim(0) != hidden)
    throw std::invalid_argument("rms_norm: weight " + describe(weight) + " does not match x " + describe(x));
  expect_shape(out, dtype::f32, x.shape, "rms_norm out");
  visit_float_type(weight.type, [&]<class W>(type_tag<W>) {
    norm_rows(out.as<float>(), x.as<float>(), weight.as<W>(), eps, num_rows, hidden, num_threads);
  });
}

}  // namespace glm4::kernels::cpu
