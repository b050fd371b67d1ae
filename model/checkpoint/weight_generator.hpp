// Deterministic random weights for make-model: element i of a canonical tensor depends only on
// (seed, canonical name, i), so every layout and every shard split writes the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/dtype.hpp"
#include "model/checkpoint/weight_layout.hpp"

namespace glm4::model {

struct weight_distribution {
  float mean = 0.0f;
  float stddev = 1.0f;
};

/// Embeddings ~N(0, 1); linear weights ~N(0, 1/fan_in) so activations keep their scale through
/// any depth; norms near 1; biases small.
weight_distribution distribution_of(const canonical_tensor& tensor);

/// Fills `out` (whole elements of `type`) with elements [first_element, ...) of `tensor`,
/// using every core. The values are approximately normal: a sum of four uniforms, so bounded
/// by about 3.5 standard deviations.
void generate_weights(std::uint64_t seed, const canonical_tensor& tensor, kernels::dtype type, std::size_t first_element,
                      std::span<std::byte> out);

}  // namespace glm4::model
