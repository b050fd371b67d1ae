// The CUDA RMSNorm against a double-precision CPU reference, over shapes and weight types.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "kernels/cuda/rms_norm.cuh"
#include "tests/kernels/cuda/gpu_test_support.hpp"

namespace {

using glm4::kernels::dtype;

std::vector<std::uint16_t> encode_weights(const std::vector<float>& values, dtype type) {
  std::vector<std::uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    bits[i] = type == dtype::bf16 ? glm4::kernels::f32_to_bf16(values[i]) : glm4::kernels::f32_to_f16(values[i]);
  return bits;
}

float decode_weight(float value, dtype type) {
  if (type == dtype::bf16) return glm4::kernels::bf16_to_f32(glm4::kernels::f32_to_bf16(value));
  if (type == dtype::f16) return glm4::kernels::f16_to_f32(glm4::kernels::f32_to_f16(value));
  return value;
}

}  // namespace

TEST_CASE("cuda rms_norm matches the CPU reference", "[cuda][rms_norm]") {
  if (!glm4::test::have_gpu_or_skip()) return;
  const auto rows = GENERATE(1, 7, 64);
  const auto hidden = GENERATE(64, 1000, 4096);
  const auto weight_type = GENERATE(dtype::f32, dtype::bf16, dtype::f16);
  CAPTURE(rows, hidden, glm4::kernels::dtype_name(weight_type));

  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * hidden)), weight(static_cast<std::size_t>(hidden));
  for (auto& v : x) v = normal(rng);
  for (auto& v : weight) v = 1.0f + 0.1f * normal(rng);

  glm4::test::device_vector<float> d_x(x), d_out(x.size());
  std::vector<float> out;
  if (weight_type == dtype::f32) {
    glm4::test::device_vector<float> d_w(weight);
    glm4::kernels::cuda::launch_rms_norm(d_out.get(), d_x.get(), d_w.get(), weight_type, rows, hidden, 1e-6f, nullptr);
    out = d_out.to_host();
  } else {
    glm4::test::device_vector<std::uint16_t> d_w(encode_weights(weight, weight_type));
    glm4::kernels::cuda::launch_rms_norm(d_out.get(), d_x.get(), d_w.get(), weight_type, rows, hidden, 1e-6f, nullptr);
    out = d_out.to_host();
  }

  for (std::int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::int64_t i = 0; i < hidden; ++i) sum += double(x[r * hidden + i]) * x[r * hidden + i];
    const double inv_rms = 1.0 / std::sqrt(sum / hidden + 1e-6);
    for (std::int64_t i = 0; i < hidden; ++i) {
      const double expected = x[r * hidden + i] * inv_rms * decode_weight(weight[i], weight_type);
      const float got = out[r * hidden + i];
      REQUIRE(std::isfinite(got));
      REQUIRE(std::abs(got - expected) <= 1e-5 + 1e-5 * std::abs(expected));
    }
  }
}
