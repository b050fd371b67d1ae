// The safetensors files of a checkpoint directory: one model.safetensors, or the shards a
// model.safetensors.index.json names.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/checkpoint/safetensors_file.hpp"

namespace glm4::model {

struct checkpoint_files {
  std::vector<safetensors_file> files;
  /// Tensor name -> index into `files`.
  std::unordered_map<std::string, std::size_t> file_of;
  /// Set when the checkpoint is sharded.
  std::optional<std::filesystem::path> index_path;

  std::uint64_t total_bytes() const;
  const safetensors_file& file_holding(const std::string& tensor) const { return files.at(file_of.at(tensor)); }
};

/// Maps every safetensors file of `dir` and indexes its tensors. Throws checkpoint_error naming
/// the file at fault: no weights found, a bad index (missing weight_map, a shard that does not
/// exist, a tensor the index places in a shard that lacks it), or any safetensors_file error.
/// With more than large_checkpoint_bytes in all, prints one progress line per file on stderr.
checkpoint_files open_checkpoint_files(const std::filesystem::path& dir);

}  // namespace glm4::model
