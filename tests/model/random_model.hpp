// A tiny-preset GLM-4 with random F32 weights held in memory, in any layout: for tests that need
// more layers or heads than the transformers fixtures have (sharding, pipelines), where the
// reference is the same model run whole.
#pragma once

#include <cstdint>

#include "model/model_config.hpp"
#include "model/model_weights.hpp"

namespace glm4::test {

struct random_model {
  model::model_config config;
  model::model_weights weights;  // host tensors owning their memory
};

/// make-model's "tiny" preset (4 layers, 8 query and 2 KV heads, FFN 704, vocabulary 1024).
random_model make_random_model(model::checkpoint_layout layout, std::uint64_t seed = 7);

}  // namespace glm4::test
