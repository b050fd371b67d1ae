// The transformers reference logits of tests/data/reference (see tests/data/README.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"
#include "model/checkpoint/safetensors_file.hpp"

namespace glm4::test {

struct reference_prompt {
  std::string name;
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> greedy_ids;
  kernels::tensor prefill_logits;  // F32 (T, V): every prompt position in one forward
  kernels::tensor decode_logits;   // F32 (num_decode_rows, V): row i after feeding greedy_ids[i - 1]
};

struct reference_set {
  std::string name;  // "glm-f32"
  std::vector<std::string> model_dirs;
  double logit_scale = 0.0;
  bool bf16_weights = false;
  bool f32_compute = true;  // the reference ran in float32 (on BF16-rounded weights for bf16_weights)
  std::vector<reference_prompt> prompts;
  model::safetensors_file tensors;  // keeps the logits mapped
};

std::filesystem::path test_data_dir();

/// Reads reference/<name>.json and .safetensors.
reference_set load_reference(const std::string& name);

/// The reference whose model_dirs list `model_dir` (e.g. "chatglm-bf16" -> glm-bf16).
reference_set reference_for(const std::string& model_dir);

}  // namespace glm4::test
