// make-model: writes a complete random-weight GLM-4 checkpoint (config, generation config,
// safetensors, tokenizer) of a preset size in any of the three layouts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.hpp"
#include "model/model_config.hpp"

namespace glm4::model {

/// Real downloads split at about this size; make-model does too.
constexpr std::uint64_t default_max_shard_bytes = std::uint64_t{2} << 30;

struct make_model_options {
  std::string preset = "tiny";
  checkpoint_layout layout = checkpoint_layout::glm;
  kernels::dtype dtype = kernels::dtype::bf16;  // F32, F16 or BF16
  std::uint64_t seed = 0;
  std::filesystem::path out_dir;
  /// Weights above this go into model-0000N-of-0000M.safetensors shards plus an index.
  std::uint64_t max_shard_bytes = default_max_shard_bytes;
};

/// "tiny", "glm-4-1b", "glm-4-9b".
std::vector<std::string> preset_names();

/// The preset's config in `layout`, stored as `dtype`; nullopt for an unknown preset.
std::optional<model_config> preset_config(std::string_view preset, checkpoint_layout layout,
                                          kernels::dtype dtype = kernels::dtype::bf16);

/// Bytes of weights the preset writes (what the loader will map).
std::uint64_t preset_weight_bytes(const model_config& config);

/// Writes the checkpoint into options.out_dir (created if needed; weight files of an earlier
/// run there are replaced). The same seed gives the same canonical weights in every layout.
/// Weights above large_checkpoint_bytes report per-shard progress on stderr. Throws
/// checkpoint_error (unknown preset, bad dtype, missing embedded tokenizer, I/O errors).
void make_model(const make_model_options& options);

}  // namespace glm4::model
