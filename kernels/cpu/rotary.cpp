// GLM-4 rotary embedding: interleaved pairs (2i, 2i+1) of the first rotary_dim dims of every head,
// rotated by position * theta^(-2i / rotary_dim). Frequencies and angles are rounded to F32 the
// way transformers computes them, so positions far from 0 agree with the reference.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.hpp"

namespace glm4::kernels::cpu {

void rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta, int num_threads) {
  expect_rank(x, dtype::f32, 3, "rotary x");
  expect_rank(positions, dtype::i32, 1, "rotary positions");
  const std::int64_t num_tokens = x.dim(0), num_heads = x.dim(1), head_dim = x.dim(2);
  if (positions.dim(0) != num_tokens)
    throw std::invalid_argument("rotary: positions " + describe(positions) + " do not match x " + describe(x));
  if (rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim)
    throw std::invalid_argument("rotary: rotary_dim " + std::to_string(rotary_dim) + " must be even and in (0, " +
                                std::to_string(head_dim) + "]");
  if (!(theta > 0.0f)) throw std::invalid_argument("rotary: theta must be positive");

  const std::int64_t num_pairs = rotary_dim / 2;
  std::vector<float> inv_freq(static_cast<std::size_t>(num_pairs));
  for (std::int64_t i = 0; i < num_pairs; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    inv_freq[static_cast<std::size_t>(i)] = 1.0f / std::pow(theta, exponent);
  }
  const std::int32_t* pos = positions.as<std::int32_t>();
  float* data = x.as<float>();
  const bool parallel = num_tokens > 1 && num_tokens * num_heads * rotary_dim >= min_parallel_elements;
#pragma omp parallel num_threads(num_threads) if (parallel)
  {
    std::vector<float> cosines(static_cast<std::size_t>(num_pairs)), sines(static_cast<std::size_t>(num_pairs));
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < num_tokens; ++t) {
      for (std::int64_t i = 0; i < num_pairs; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv_freq[static_cast<std::size_t>(i)];
        cosines[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sines[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      for (std::int64_t h = 0; h < num_heads; ++h) {
        float* head = data + (t * num_heads + h) * head_dim;
        for (std::int64_t i = 0; i < num_pairs; ++i) {
          const float c = cosines[static_cast<std::size_t>(i)], s = sines[static_cast<std::size_t>(i)];
          const float x0 = head[2 * i], x1 = head[2 * i + 1];
          head[2 * i] = x0 * c - x1 * s;
          head[2 * i + 1] = x1 * c + x0 * s;
        }
      }
    }
  }
}

}  // namespace glm4::kernels::cpu
