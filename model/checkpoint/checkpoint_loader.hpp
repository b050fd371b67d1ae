// Loads a GLM-4 checkpoint directory (any of the three layouts) into the canonical weights.
#pragma once

#include <filesystem>
#include <string>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/model_config.hpp"
#include "model/model_weights.hpp"

namespace glm4::model {

struct checkpoint {
  std::filesystem::path dir;
  model_config config;
  generation_config generation;
  /// Host views into the memory-mapped safetensors files (read-only memory); each view's owner
  /// keeps its file mapped. chatglm's q, k, v are row views of the fused tensor; a tied
  /// lm_head is the embedding itself.
  model_weights weights;
};

/// Reads config.json, generation_config.json and the safetensors weights of `dir`, checking every
/// tensor's shape against the config. Throws checkpoint_error naming the file and the key or
/// tensor. Tensors the layout does not use are reported on stderr, not refused. A checkpoint
/// above 1 GiB reports per-file progress and a memory summary on stderr.
checkpoint load_checkpoint(const std::filesystem::path& dir);

/// "weights: 283 tensors, 17.56 GiB (BF16 17.56 GiB)": distinct memory only, so fused views and a
/// tied head count once.
std::string weights_summary(const model_config& config, const model_weights& weights);

}  // namespace glm4::model
